"""Conv2d and ConvTranspose2d: torch's arguments, weight shapes, default initialisation and repr.

The layers hold the parameters and check their configuration once, at construction; the work is
``functional.conv2d`` / ``functional.conv_transpose2d`` (each one the other's backward).

>>> from minitorch_seg import nn
>>> nn.Conv2d(3, 16, 3, padding=1)
Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
>>> up = nn.ConvTranspose2d(16, 8, kernel_size=4, stride=2, padding=1)   # exactly 2x larger
>>> up.weight.shape                                                       # (in, out/groups, kh, kw), as torch
(16, 8, 4, 4)
>>> import minitorch_seg as mt
>>> up(mt.zeros(1, 16, 5, 7)).shape
(1, 8, 10, 14)
"""
from .. import functional as F
from ..shapes import conv_transpose_output_size, pair
from . import init
from .layers import _parameter
from .module import Module


class _Conv(Module):
    """What both layers share: the argument checks, the parameters, torch's initialisation and repr."""

    transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                 output_padding=0, device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels={in_channels} and out_channels={out_channels} must both be "
                             f"divisible by groups={groups}.")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride = pair(kernel_size, "kernel_size"), pair(stride, "stride")
        self.dilation, self.output_padding = pair(dilation, "dilation"), pair(output_padding, "output_padding")
        self.padding = padding if isinstance(padding, str) else pair(padding, "padding")
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.dilation) < 1:
            raise ValueError(f"{name}: kernel_size, stride and dilation must be positive, got kernel_size="
                             f"{self.kernel_size}, stride={self.stride}, dilation={self.dilation}.")
        if isinstance(self.padding, str):
            if self.padding not in ("same", "valid"):
                raise ValueError(f"{name}: padding must be an int, a pair, 'valid' or 'same', got {padding!r}.")
            if self.padding == "same" and self.stride != (1, 1):
                raise ValueError(f"{name}: padding='same' is only supported with stride 1, as in torch, "
                                 f"got stride={self.stride}.")
        elif min(self.padding) < 0:
            raise ValueError(f"{name}: padding must be non-negative, got {self.padding}.")
        if self.transposed:   # torch's weight layout for the adjoint: (in, out/groups, kh, kw)
            shape = (in_channels, out_channels // groups, *self.kernel_size)
        else:
            shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight = _parameter(*shape)
        self.bias = _parameter(out_channels) if bias else None
        if device is not None or dtype is not None:
            self.to(device=device, dtype=dtype)      # before drawing: float64 weights get float64 draws
        # fan_in = weight.shape[1] * kh * kw, as torch: for ConvTranspose2d that is out/groups * kh * kw.
        init.default_weight_and_bias_(self.weight, self.bias)

    def extra_repr(self):
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding}"      # a string unquoted, as torch prints it
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.output_padding != (0, 0):
            text += f", output_padding={self.output_padding}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text


class Conv2d(_Conv):
    """2-D convolution, weight (out_channels, in_channels/groups, kh, kw); ``padding`` may be "same" or "valid".

    Output size: ``shapes.conv_output_size`` per axis; "same" keeps H and W (stride 1 only; an odd
    total padding d(k-1) puts the extra pixel on the right and bottom, as torch).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None):
        if padding_mode != "zeros":
            raise NotImplementedError(f"Conv2d: padding_mode {padding_mode!r} is not implemented; only 'zeros' "
                                      "(torch's default) is.")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         device=device, dtype=dtype)
        self.padding_mode = padding_mode

    def forward(self, input):
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class ConvTranspose2d(_Conv):
    """Transposed convolution (the adjoint of Conv2d), weight (in_channels, out_channels/groups, kh, kw).

    Output size: ``shapes.conv_transpose_output_size`` per axis. As in torch, ``forward`` may be
    given the wanted ``output_size`` (e.g. the skip connection's H, W in a U-Net); it then picks
    the output_padding in [0, stride) that gives it.
    """

    transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        if isinstance(padding, str):
            raise ValueError(f"ConvTranspose2d: padding must be an int or a pair, got {padding!r}.")
        if padding_mode != "zeros":
            raise ValueError(f"Only 'zeros' padding mode is supported for ConvTranspose2d, got {padding_mode!r}.")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         output_padding, device=device, dtype=dtype)
        self.padding_mode = padding_mode
        if any(op >= max(s, d) for op, s, d in zip(self.output_padding, self.stride, self.dilation)):
            raise ValueError(f"ConvTranspose2d: output_padding {self.output_padding} must be smaller than stride "
                             f"{self.stride} or dilation {self.dilation}.")

    def forward(self, input, output_size=None):
        output_padding = self.output_padding if output_size is None else self._output_padding(input, output_size)
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding, output_padding,
                                  self.groups, self.dilation)

    def _output_padding(self, input, output_size):
        """The output_padding that makes the output ``output_size`` ((H, W), or longer ending in H, W)."""
        wanted = tuple(output_size)[-2:]
        smallest = tuple(conv_transpose_output_size(n, k, s, p, 0, d) for n, k, s, p, d in
                         zip(input.shape[-2:], self.kernel_size, self.stride, self.padding, self.dilation))
        if len(wanted) != 2 or any(not 0 <= w - m < s for w, m, s in zip(wanted, smallest, self.stride)):
            largest = tuple(m + s - 1 for m, s in zip(smallest, self.stride))
            raise ValueError(f"ConvTranspose2d: requested output size {tuple(output_size)}, but for an input of "
                             f"shape {tuple(input.shape)} valid sizes range from {smallest} to {largest}.")
        return tuple(w - m for w, m in zip(wanted, smallest))
