"""The export package's error: a model, a layer or an option it cannot export."""


class ExportError(ValueError):
    """A model or layer that ``to_onnx`` or ``to_torch`` cannot export; one sentence naming it."""
