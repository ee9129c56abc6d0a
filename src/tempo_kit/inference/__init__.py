"""Inference: answer questions about videos with a trained Tempo model."""

from tempo_kit.inference.api import TempoPipeline
from tempo_kit.inference.plots import plot_allocation
from tempo_kit.inference.result import InferenceResult

__all__ = ["InferenceResult", "TempoPipeline", "plot_allocation"]
