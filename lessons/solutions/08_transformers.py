# Solutions to lesson 8's exercises. Each cell replaces the stub cell of the same exercise
# (python lessons/build_notebooks.py --solved DIR writes the solved notebooks). Try first.

# %% {"exercise": "window_partition"}
def window_partition(x, window_size):
    """(B, H, W, C) -> (B*nW, Wh*Ww, C): split H as (H/Wh, Wh) and W as (W/Ww, Ww), bring the two
    window-grid axes before the two within-window axes, and flatten each group."""
    wh, ww = (window_size, window_size) if isinstance(window_size, int) else window_size
    b, h, w, c = x.shape
    x = x.reshape(b, h // wh, wh, w // ww, ww, c)          # (B, H/Wh, Wh, W/Ww, Ww, C)
    x = x.permute(0, 1, 3, 2, 4, 5)                        # (B, H/Wh, W/Ww, Wh, Ww, C)
    return x.reshape(-1, wh * ww, c)                       # (B*nW, Wh*Ww, C)

# %% {"exercise": "window_reverse"}
def window_reverse(windows, window_size, H, W):
    """(B*nW, Wh*Ww, C) -> (B, H, W, C): window_partition's movements, undone in reverse order
    (the permute swaps two axes, so it is its own inverse)."""
    wh, ww = (window_size, window_size) if isinstance(window_size, int) else window_size
    c = windows.shape[2]
    x = windows.reshape(-1, H // wh, W // ww, wh, ww, c)   # (B, H/Wh, W/Ww, Wh, Ww, C)
    x = x.permute(0, 1, 3, 2, 4, 5)                        # (B, H/Wh, Wh, W/Ww, Ww, C)
    return x.reshape(-1, H, W, c)                          # (B, H, W, C)
