"""Evaluation: the multiple-choice benchmark harness, answer extraction and metrics."""
