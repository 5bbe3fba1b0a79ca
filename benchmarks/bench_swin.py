"""A Swin block's forward + backward, minitorch_seg (NumPy) against the same block in PyTorch ops.

The configuration is the issue's: B=4, a 32x64 token map, dim 64, 4 heads, window 8, MLP ratio 4,
float32, once without shift (W-MSA) and once shifted by 4 (SW-MSA). Both blocks start from the
same weights (ours' state_dict loaded into torch's by name). Each repetition times one of ours,
then one of torch's (interleaved, so drifts in clock and load hit both alike), after a warm-up;
medians are printed with their ratio.

Two clocks, clearly labelled:
- ``cpu``: ``time.process_time()``, the CPU seconds of this process. With one thread on both sides
  (OPENBLAS_NUM_THREADS=1, torch.set_num_threads(1)) it barely moves when other programs share
  the machine: the stable single-thread ratio.
- ``wall``: ``time.perf_counter()``, with each library at its default thread count (NumPy's
  OpenBLAS and torch both use every core): what a user waits for on an idle machine, noisy on a
  busy one.

OpenBLAS reads its thread count once, at import, so the script runs itself twice in child
processes, once per setting:

    python benchmarks/bench_swin.py [--repeats 30]

Timings live here and in the report, never in the tests. Measured 2026-11-24 on the 2-core AMD
EPYC (AVX-512) VM, numpy 2.4.6 + OpenBLAS 0.3.31, torch 2.13.0+cpu, while other jobs kept the load
average between 3 and 10 (so absolute times are inflated; the one-thread CPU-time ratio is the
number to trust; the wall-clock lines were dominated by the load and are not meaningful):

    cpu, 1 thread each   shift 0: minitorch_seg 79-85 ms   torch 62-64 ms   ratio 1.27-1.31
    cpu, 1 thread each   shift 4: minitorch_seg 81-88 ms   torch 64-71 ms   ratio 1.24-1.27

Where our time goes (shift 4, ``autograd.profile``): Linear 39%, GELU 26% (torch's GELU is
about 5x faster: its erf is vectorised and fused), WindowAttention 23%, LayerNorm 7%, the
shape ops (partition, roll, reverse, the q/k/v split) 5%.
"""
import argparse
import os
import subprocess
import sys
import time

import numpy

B, H, W, DIM, HEADS, WINDOW = 4, 32, 64, 64, 4, 8


def torch_block_class():
    """The block in PyTorch ops, as the official Swin code writes it (with the input size given)."""
    import torch
    from torch import nn

    def window_partition(x, ws):
        b, h, w, c = x.shape
        x = x.view(b, h // ws, ws, w // ws, ws, c)
        return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, ws * ws, c)

    def window_reverse(windows, ws, h, w):
        x = windows.view(-1, h // ws, w // ws, ws, ws, windows.shape[-1])
        return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, h, w, windows.shape[-1])

    class Attention(nn.Module):
        def __init__(self, dim, ws, heads):
            super().__init__()
            self.heads, self.ws, self.scale = heads, ws, (dim // heads) ** -0.5
            self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * ws - 1) ** 2, heads))
            coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
            rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (ws - 1)
            self.register_buffer("relative_position_index", rel[..., 0] * (2 * ws - 1) + rel[..., 1])
            self.qkv = nn.Linear(dim, 3 * dim)
            self.proj = nn.Linear(dim, dim)

        def forward(self, x, mask=None):
            bw, n, c = x.shape
            qkv = self.qkv(x).reshape(bw, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
            attn = q @ k.transpose(-2, -1)
            bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(n, n, -1)
            attn = attn + bias.permute(2, 0, 1).unsqueeze(0)
            if mask is not None:
                nw = mask.shape[0]
                attn = attn.view(bw // nw, nw, self.heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
                attn = attn.view(bw, self.heads, n, n)
            x = (attn.softmax(-1) @ v).transpose(1, 2).reshape(bw, n, c)
            return self.proj(x)

    class Mlp(nn.Module):
        def __init__(self, dim, hidden):
            super().__init__()
            self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x)))

    class Block(nn.Module):
        def __init__(self, dim, heads, ws, shift, resolution):
            super().__init__()
            self.ws, self.shift, self.resolution = ws, shift, resolution
            self.norm1 = nn.LayerNorm(dim)
            self.attn = Attention(dim, ws, heads)
            self.norm2 = nn.LayerNorm(dim)
            self.mlp = Mlp(dim, 4 * dim)
            mask = None
            if shift:
                h, w = resolution
                img = torch.zeros(1, h, w, 1)
                cuts = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None))
                for label, (hs, wsl) in enumerate((a, b) for a in cuts for b in cuts):
                    img[:, hs, wsl, :] = label
                mw = window_partition(img, ws).squeeze(-1)
                mask = (mw.unsqueeze(1) - mw.unsqueeze(2)) != 0
                mask = torch.zeros(mask.shape).masked_fill(mask, -100.0)
            self.register_buffer("attn_mask", mask)

        def forward(self, x):
            h, w = self.resolution
            b, _, c = x.shape
            shortcut = x
            x = self.norm1(x).view(b, h, w, c)
            if self.shift:
                x = torch.roll(x, (-self.shift, -self.shift), (1, 2))
            x = window_reverse(self.attn(window_partition(x, self.ws), self.attn_mask), self.ws, h, w)
            if self.shift:
                x = torch.roll(x, (self.shift, self.shift), (1, 2))
            x = shortcut + x.reshape(b, h * w, c)
            return x + self.mlp(self.norm2(x))

    return Block


def steps(shift, seed=0):
    """(ours, theirs): one forward + backward each, float32, same weights and data."""
    import torch

    import minitorch_seg as mt
    from minitorch_seg import nn

    mt.manual_seed(seed)
    rng = numpy.random.default_rng(seed)
    x_host = rng.standard_normal((B, H * W, DIM)).astype(numpy.float32)
    g_host = rng.standard_normal((B, H * W, DIM)).astype(numpy.float32)

    ours_block = nn.SwinTransformerBlock(DIM, HEADS, window_size=WINDOW, shift_size=shift)
    x, g = mt.Tensor(x_host, requires_grad=True), mt.Tensor(g_host)

    def ours():
        x.grad = None
        ours_block.zero_grad()
        ours_block(x, (H, W)).backward(g)

    theirs_block = torch_block_class()(DIM, HEADS, WINDOW, shift, (H, W))
    state = {k: torch.from_numpy(numpy.array(v.numpy())) for k, v in ours_block.state_dict().items()}
    missing, unexpected = theirs_block.load_state_dict(state, strict=False)
    assert not unexpected and set(missing) <= {"attn.relative_position_index", "attn_mask"}, (missing, unexpected)
    tx, tg = torch.from_numpy(x_host.copy()).requires_grad_(True), torch.from_numpy(g_host)

    def theirs():
        tx.grad = None
        theirs_block.zero_grad()
        theirs_block(tx).backward(tg)

    ours(), theirs()
    assert x.grad.dtype == numpy.float32, "float32 was upcast"
    numpy.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-3, atol=1e-3)  # the same block
    return ours, theirs


def compare(shift, repeats, clock, warmup=5):
    ours, theirs = steps(shift)
    for _ in range(warmup):
        ours(), theirs()
    ours_times, theirs_times = [], []
    for _ in range(repeats):
        for step, times in ((ours, ours_times), (theirs, theirs_times)):
            start = clock()
            step()
            times.append(clock() - start)
    return numpy.median(ours_times) * 1e3, numpy.median(theirs_times) * 1e3


def child(threads, repeats):
    import torch

    from minitorch_seg import backend
    backend.tune_host_allocator()   # as the CLI does for training: keep freed big blocks, no page faults each step
    if threads == 1:
        torch.set_num_threads(1)
        clock, label = time.process_time, "cpu (process_time), 1 thread each"
    else:
        clock, label = time.perf_counter, f"wall (perf_counter), default threads (torch {torch.get_num_threads()})"
    for shift in (0, WINDOW // 2):
        ours_ms, theirs_ms = compare(shift, repeats, clock)
        print(f"  {label:<48} shift {shift}: minitorch_seg {ours_ms:7.2f} ms   torch {theirs_ms:7.2f} ms   "
              f"ratio {ours_ms / theirs_ms:4.2f}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--child-threads", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_threads is not None:
        child(args.child_threads, args.repeats)
        return
    import torch
    print(f"Swin block forward + backward: B={B}, {H}x{W} tokens, dim {DIM}, {HEADS} heads, window {WINDOW}, "
          f"float32, median of {args.repeats} interleaved runs")
    print(f"numpy {numpy.__version__}, torch {torch.__version__}, {os.cpu_count()} CPUs")
    for threads in (1, 0):
        env = dict(os.environ)
        if threads == 1:
            env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        else:
            for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                env.pop(name, None)
        subprocess.run([sys.executable, __file__, "--repeats", str(args.repeats), "--child-threads", str(threads)],
                       env=env, check=True)


if __name__ == "__main__":
    main()
