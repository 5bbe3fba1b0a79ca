"""Wrong answers to lesson 6's exercises (see ``tests/mutants/__init__.py``)."""
CROP = "top, left = (skip.shape[2] - h) // 2, (skip.shape[3] - w) // 2"

MUTANTS = {
    "copy_and_crop": [
        ("the crop placed by halves, H_s // 2 - H // 2: the old exercise's bug, right at 8x10 -> 4x4, one pixel off "
         "when H_s is even and H odd",
         [(CROP, "top, left = skip.shape[2] // 2 - h // 2, skip.shape[3] // 2 - w // 2")]),
        ("the crop offset rounded up: one pixel off when the difference is odd",
         [(CROP, "top, left = (skip.shape[2] - h + 1) // 2, (skip.shape[3] - w + 1) // 2")]),
        ("the skip's gradient not padded back at the crop's offset: put in the top-left corner",
         [("grad_skip[:, :, ctx.top:ctx.top + h, ctx.left:ctx.left + w] = g[:, :c_skip]",
           "grad_skip[:, :, :h, :w] = g[:, :c_skip]")]),
        ("the gradient split by channels in the wrong order, as if y were [x, skip]",
         [("= g[:, :c_skip]", "= g[:, g.shape[1] - c_skip:]"),
          ("grad_x = g[:, c_skip:]", "grad_x = g[:, :g.shape[1] - c_skip]")]),
        ("x concatenated first in the forward",
         [("numpy.concatenate([cropped, x], axis=1)", "numpy.concatenate([x, cropped], axis=1)")]),
        ("the left offset computed from the heights (right for square maps only)",
         [(CROP, "top, left = (skip.shape[2] - h) // 2, (skip.shape[2] - h) // 2")]),
    ],
    "unet_up": [
        ("the ReLU forgotten",
         [("return F.relu(F.conv2d(joined, weight, bias, padding=padding))",
           "return F.conv2d(joined, weight, bias, padding=padding)")]),
        ("the transposed convolution with stride 1: it does not double the map",
         [("up_bias, stride=2)", "up_bias, stride=1)")]),
        ("the skip concatenated after the up-map",
         [("F.cat([skip[:, :, top:top + h, left:left + w], up], dim=1)",
           "F.cat([up, skip[:, :, top:top + h, left:left + w]], dim=1)")]),
        ("the crop offset rounded up: one pixel off on odd differences",
         [(CROP, "top, left = (skip.shape[2] - h + 1) // 2, (skip.shape[3] - w + 1) // 2")]),
        ("the skip cropped at its top-left corner, not its centre",
         [(CROP, "top, left = 0, 0")]),
        ("the padding argument ignored (always a valid convolution)",
         [("bias, padding=padding))", "bias))")]),
        ("the transposed convolution's bias forgotten",
         [("F.conv_transpose2d(x, up_weight, up_bias, stride=2)", "F.conv_transpose2d(x, up_weight, stride=2)")]),
    ],
}
