"""Inference: answer questions about videos with a trained Tempo model."""

from tempo_kit.inference.api import InferenceResult, TempoPipeline
from tempo_kit.inference.plots import plot_allocation

__all__ = ["InferenceResult", "TempoPipeline", "plot_allocation"]
