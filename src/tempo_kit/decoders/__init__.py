"""Decoders: the global LLM."""

from tempo_kit.decoders.base import Decoder

__all__ = ["Decoder"]
