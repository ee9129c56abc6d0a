"""Allocators (how many tokens each segment keeps) and intra-segment reductions (which ones)."""

from tempo_kit.allocators.base import Allocator

__all__ = ["Allocator"]
