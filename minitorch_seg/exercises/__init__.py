"""The course's exercises: write a library function again, forward and backward, and check it.

>>> from minitorch_seg import exercises
>>> "cross_entropy" in exercises.names()
True
>>> import minitorch_seg.functional as F
>>> exercises.check("interpolate", F.interpolate)          # the library's own function passes
>>> def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
...     raise NotImplementedError
>>> exercises.check("interpolate", interpolate)             # doctest: +ELLIPSIS
Traceback (most recent call last):
  ...
minitorch_seg.exercises.registry.NotAttempted: interpolate: not attempted yet. Write interpolate(...

"Predict first" questions (``predictions``): the learner writes ``answer = ...``, then
``check_prediction`` prints whether it was right, and records it for ``minitorch-seg grade``:

>>> exercises.check_prediction("dilated_receptive_field", 15)
dilated_receptive_field: right. The true value is 15.
"""
from .registry import Exercise, ExerciseFailed, NotAttempted, attempted, check, describe, get, names, register
# each module registers one lesson's exercises
from . import autograd, losses, metrics, convolution, upsampling, unet, atrous, transformers, swin, hrnet, device  # noqa: E402,F401,I001
from . import predictions, course_predictions  # noqa: E402,F401,I001  the lessons' "predict first" questions
from .predictions import Prediction, check_prediction  # noqa: E402

__all__ = ["Exercise", "ExerciseFailed", "NotAttempted", "Prediction", "attempted", "check", "check_prediction", "describe", "get",
           "names", "predictions", "register"]
