"""Compressors: turn video segments (and a query) into memory tokens.

Importing this package registers the built-in compressors in
:data:`~tempo_kit.registry.COMPRESSORS`: ``qwen3_vl`` (Tempo's query-aware SVLM) and ``pooling``
(a query-agnostic baseline on the same vision tower).
"""

from tempo_kit.compressors.base import Compressor
from tempo_kit.compressors.pooling import PoolingCompressor
from tempo_kit.compressors.qwen3_vl import Qwen3VLCompressor

__all__ = ["Compressor", "PoolingCompressor", "Qwen3VLCompressor"]
