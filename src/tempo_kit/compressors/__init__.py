"""Compressors: turn video segments (and a query) into memory tokens."""

from tempo_kit.compressors.base import Compressor

__all__ = ["Compressor"]
