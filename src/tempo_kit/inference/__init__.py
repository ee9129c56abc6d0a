"""Inference: answer questions about videos with a trained Tempo model."""

from tempo_kit.lazy import lazy_exports

#: name → the module that defines it, imported on first use
_EXPORTS = {
    "InferenceResult": "tempo_kit.inference.result",
    "TempoPipeline": "tempo_kit.inference.api",
    "plot_allocation": "tempo_kit.inference.plots",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
