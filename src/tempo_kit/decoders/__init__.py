"""Decoders: the global LLM. Importing this package registers the built-in ``hf_causal_lm``."""

from tempo_kit.decoders.base import Decoder
from tempo_kit.decoders.hf_causal_lm import HFCausalLM

__all__ = ["Decoder", "HFCausalLM"]
