"""tempo-kit: a modular PyTorch Lightning kit for Tempo (query-aware long-video compression).

The four swappable component kinds live in registries (:mod:`tempo_kit.registry`); the records
that cross them are in :mod:`tempo_kit.types`.
"""

from tempo_kit.registry import (
    ALLOCATORS,
    BENCHMARK_FORMATS,
    COMPRESSORS,
    DECODERS,
    PROJECTORS,
    REDUCTIONS,
    VIDEO_BACKENDS,
    Registry,
)

__version__ = "0.1.0"

__all__ = [
    "ALLOCATORS",
    "BENCHMARK_FORMATS",
    "COMPRESSORS",
    "DECODERS",
    "PROJECTORS",
    "REDUCTIONS",
    "VIDEO_BACKENDS",
    "Registry",
    "__version__",
]
