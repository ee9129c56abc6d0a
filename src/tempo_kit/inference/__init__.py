"""Inference: answer questions about videos with a trained Tempo model."""
