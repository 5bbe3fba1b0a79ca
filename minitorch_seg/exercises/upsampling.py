"""Lesson 5's exercises: nearest-neighbour upsampling, max pooling with switches, max unpooling."""
from hypothesis import strategies as st

from .. import functional as F
from .. import shapes
from ..testing import arguments, pool_configs, tensors, upsample_configs
from ..testing.strategies import distinct
from .registry import Exercise, register


@st.composite
def _interpolate_inputs(draw):
    shape, (sh, sw) = draw(upsample_configs(max_batch=2, max_channels=3, max_side=5, max_scale=3))
    as_int = draw(st.booleans())          # drawn always: hypothesis shrinks toward fewer draws
    scale = sh if sh == sw and as_int else (sh, sw)
    return draw(arguments(tensors(shape), scale_factor=scale))


register(Exercise(
    name="interpolate", lesson="05_upsampling", reference=F.interpolate, inputs=_interpolate_inputs,
    task="Write interpolate(input, size=None, scale_factor=None, mode='nearest', align_corners=None) for "
         "mode='nearest' and integer scale factors (an int or a pair): each output pixel (u, v) copies input "
         "pixel (floor(u / sh), floor(v / sw)); and its backward, derived (which outputs does an input pixel reach?).",
    drawn="batches 1-2, channels 1-3, sides 1-5, integer factors 1-3 per side (equal or not, an int or a pair), "
          "mode 'nearest'."))


@st.composite
def _pooling(draw, overlap):
    """A pooling config (dilation 1, floor mode), and how its arguments are passed: (config, forms).

    ``forms`` says, independently per argument, whether a square value goes as an int, whether the
    stride is left to its default (None: the kernel size, which the config then takes) and whether
    a zero padding is left to its default. Every choice is drawn whatever the values (hypothesis
    shrinks toward fewer draws).
    """
    config = draw(pool_configs(max_batch=2, max_channels=3, max_side=7, max_kernel=3, max_stride=3,
                               dilation=False, ceil_mode=False, overlap=overlap))
    forms = {"int": {k: draw(st.booleans()) for k in ("kernel_size", "stride", "padding")},
             "stride_none": draw(st.booleans()), "padding_default": draw(st.booleans())}
    if forms["stride_none"]:
        config["stride"] = config["kernel_size"]      # always valid at dilation 1, floor mode
    return config, forms


def _pool_arguments(config, forms):
    """(kernel_size, {stride, padding}) as a caller would pass them: ints, pairs or defaults."""
    def given(key):
        value = config[key]
        return value[0] if forms["int"][key] and value[0] == value[1] else value
    kwargs = {} if forms["stride_none"] else {"stride": given("stride")}
    if not (forms["padding_default"] and config["padding"] == (0, 0)):
        kwargs["padding"] = given("padding")
    return given("kernel_size"), kwargs


@st.composite
def _max_pool_inputs(draw):
    config, forms = draw(_pooling(overlap=True))
    x = distinct(config["x_shape"], draw(st.integers(0, 2 ** 16)))
    kernel, kwargs = _pool_arguments(config, forms)
    return draw(arguments(x, kernel, return_indices=draw(st.booleans()), **kwargs))


register(Exercise(
    name="max_pool2d", lesson="05_upsampling", reference=F.max_pool2d, inputs=_max_pool_inputs,
    task="Write max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, "
         "return_indices=False) for dilation 1 and ceil_mode False: the maximum of each window (padding is "
         "-inf; stride None means the kernel size); with return_indices also the switches, each maximum's "
         "flat index h * W + w in its (H, W) input plane, as torch returns them; and its backward, derived "
         "(each output copies the input at its switch; mind windows that overlap).",
    drawn="batches 1-2, channels 1-3, sides 1-7, kernels 1-3 (non-square too), strides 1-3 (below, equal to "
          "and above the kernel; None), padding up to kernel // 2 (or left out), each passed as an int or a pair, "
          "with and without return_indices; all values distinct (no ties)."))


def _default_unpool_side(n, k, s, p):
    """The default unpooled side (h - 1) s - 2p + k of a side n pooled, if pooling that side gives h again
    with every window holding an input pixel; else None."""
    h = shapes.pool_output_size(n, k, s, p)
    d = shapes.conv_transpose_output_size(h, k, s, p)
    if d < 1 or shapes.pool_output_size(d, k, s, p) != h:
        return None
    return d if all(any(0 <= u * s - p + i < d for i in range(k)) for u in range(h)) else None


@st.composite
def _max_unpool_inputs(draw):
    config, forms = draw(_pooling(overlap=False))
    output_size = draw(st.sampled_from(["none", "none", "hw", "nchw"]))
    shape = config["x_shape"]
    if output_size == "none":   # pooled from the default size (the last rows no window reads dropped), if it can be
        default = tuple(_default_unpool_side(n, k, s, p) for n, k, s, p in
                        zip(shape[2:], config["kernel_size"], config["stride"], config["padding"]))
        if None in default:
            output_size = "hw"
        else:
            shape = shape[:2] + default
    output_size = {"none": None, "hw": shape[2:], "nchw": shape}[output_size]
    x = distinct(shape, draw(st.integers(0, 2 ** 16)))
    pooled, indices = F.max_pool2d(x, config["kernel_size"], config["stride"], config["padding"],
                                   return_indices=True)
    kernel, kwargs = _pool_arguments(config, forms)
    return draw(arguments(tensors(pooled.shape), indices, kernel, output_size=output_size, **kwargs))


register(Exercise(
    name="max_unpool2d", lesson="05_upsampling", reference=F.max_unpool2d, inputs=_max_unpool_inputs,
    task="Write max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None): a zero "
         "map of the pooled-from size ((H - 1) stride - 2 padding + kernel per side, or output_size: (H, W) "
         "or (N, C, H, W)) with each input value put at its switch; and its backward, derived (which output's "
         "gradient reaches each input value?).",
    drawn="the switches of a max pooling of distinct values (batches 1-2, channels 1-3, sides 1-7, kernels "
          "1-3, strides the kernel (or None) or one more, padding up to kernel // 2, each an int or a pair), "
          "output_size absent, (H, W) or (N, C, H, W)."))
