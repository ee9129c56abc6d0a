"""Released decoders of each family at their real shapes, as configs: built on the meta device,
they check that a recipe's decoder builds (widths, fused projections, tied heads) without weights.

:func:`write_real_shape_decoder` writes the config and the family's tiny tokenizer (its special
tokens and chat template; ids beyond its length are embedding rows never produced) in the
Hugging Face layout, with no weights: ``TempoModel.from_config(..., load_weights=False)`` reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tempo_kit.tiny.gemma3 import build_gemma3_tokenizer
from tempo_kit.tiny.llama import build_llama3_tokenizer, build_smollm2_tokenizer
from tempo_kit.tiny.mistral import build_mistral_tokenizer
from tempo_kit.tiny.phi3 import build_phi3_tokenizer
from tempo_kit.tiny.tokenizer import build_tokenizer

#: name → (transformers config class, the released config's sizes and switches, tokenizer builder,
#: parameter count of the released checkpoint).
REAL_DECODERS: dict[str, tuple[str, dict[str, Any], Any, int]] = {
    "SmolLM2-360M-Instruct": (
        "LlamaConfig",
        {"hidden_size": 960, "intermediate_size": 2560, "num_hidden_layers": 32, "num_attention_heads": 15,
         "num_key_value_heads": 5, "vocab_size": 49152, "tie_word_embeddings": True},
        build_smollm2_tokenizer,
        361_821_120,
    ),
    "Llama-3.2-3B-Instruct": (
        "LlamaConfig",
        {"hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 28, "num_attention_heads": 24,
         "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 128256, "tie_word_embeddings": True},
        build_llama3_tokenizer,
        3_212_749_824,
    ),
    "Qwen2.5-3B-Instruct": (
        "Qwen2Config",
        {"hidden_size": 2048, "intermediate_size": 11008, "num_hidden_layers": 36, "num_attention_heads": 16,
         "num_key_value_heads": 2, "vocab_size": 151936, "tie_word_embeddings": True},
        build_tokenizer,
        3_085_938_688,
    ),
    "gemma-3-1b-it": (
        "Gemma3TextConfig",
        {"hidden_size": 1152, "intermediate_size": 6912, "num_hidden_layers": 26, "num_attention_heads": 4,
         "num_key_value_heads": 1, "head_dim": 256, "query_pre_attn_scalar": 256, "sliding_window": 512,
         "vocab_size": 262144, "tie_word_embeddings": True},
        build_gemma3_tokenizer,
        999_885_952,
    ),
    "Mistral-7B-Instruct-v0.3": (
        "MistralConfig",
        {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
         "num_key_value_heads": 8, "vocab_size": 32768, "tie_word_embeddings": False, "sliding_window": None},
        build_mistral_tokenizer,
        7_248_023_552,
    ),
    "Phi-3.5-mini-instruct": (
        "Phi3Config",
        {"hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 32, "num_attention_heads": 32,
         "num_key_value_heads": 32, "vocab_size": 32064, "tie_word_embeddings": False},
        build_phi3_tokenizer,
        3_821_079_552,
    ),
}


def write_real_shape_decoder(name: str, out_dir: str | Path) -> Path:
    """``config.json`` of ``name`` at its real shape and the family's tiny tokenizer in ``out_dir``."""
    import transformers

    config_class, sizes, build, _ = REAL_DECODERS[name]
    tokenizer = build()
    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id}
    config = getattr(transformers, config_class)(**sizes, **ids)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out
