"""Compressors: turn video segments (and a query) into memory tokens.

Importing this package registers the built-in compressors in
:data:`~tempo_kit.registry.COMPRESSORS`: the memory-token families ``qwen3_vl`` (Tempo's
query-aware SVLM), ``qwen2_5_vl``, ``smolvlm``, ``internvl`` and ``llava_onevision``
(:mod:`tempo_kit.compressors.memory` with one adapter each), and ``pooling`` (a query-agnostic
baseline on Qwen3-VL's vision tower).
"""

from tempo_kit.compressors.base import Compressor
from tempo_kit.compressors.internvl import InternVLCompressor
from tempo_kit.compressors.llava_onevision import LlavaOnevisionCompressor
from tempo_kit.compressors.pooling import PoolingCompressor
from tempo_kit.compressors.qwen2_5_vl import Qwen25VLCompressor
from tempo_kit.compressors.qwen3_vl import Qwen3VLCompressor
from tempo_kit.compressors.smolvlm import SmolVLMCompressor

__all__ = [
    "Compressor",
    "InternVLCompressor",
    "LlavaOnevisionCompressor",
    "PoolingCompressor",
    "Qwen25VLCompressor",
    "Qwen3VLCompressor",
    "SmolVLMCompressor",
]
