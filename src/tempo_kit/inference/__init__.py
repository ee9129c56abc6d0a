"""Inference: answer questions about videos with a trained Tempo model."""

from tempo_kit.inference.api import TempoPipeline
from tempo_kit.inference.plots import plot_allocation
from tempo_kit.inference.result import InferenceResult
from tempo_kit.inference.session import VideoSession

__all__ = ["InferenceResult", "TempoPipeline", "VideoSession", "plot_allocation"]
