"""What every tiny decoder checkpoint shares: its sizes and how it is written.

Each family file (``tiny/llama.py``, ``tiny/gemma3.py`` …) gives its config class, its switches
and its tokenizer; this writes the randomly initialised model, a generation config that stops
where the family's checkpoints stop, and the tokenizer, in the Hugging Face layout a downloaded
checkpoint has.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Sizes of every tiny decoder (a different width from the tiny SVLM, so projector shapes are exercised).
TINY_DECODER_SIZES: dict[str, Any] = {
    "hidden_size": 48,
    "intermediate_size": 96,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "max_position_embeddings": 4096,
}


def token_id(tokenizer, token: str | None) -> int | None:
    """The id of ``token`` (``None`` for no token)."""
    return None if token is None else int(tokenizer.convert_tokens_to_ids(token))


def save_tiny_causal_lm(
    model_factory: Callable[[Any], Any],
    config: Any,
    tokenizer,
    out_dir: str | Path,
    seed: int,
    stop_tokens: tuple[str, ...],
) -> Path:
    """Write ``model_factory(config)``, randomly initialised from ``seed``, with ``tokenizer``.

    The generation config stops at ``stop_tokens`` only (as the family's base checkpoints do: the
    kit adds the chat format's end-of-turn token itself) and pads with the tokenizer's pad token,
    if it has one.
    """
    import torch
    from transformers import GenerationConfig

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = model_factory(config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=[token_id(tokenizer, t) for t in stop_tokens],
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
    )
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


def special_ids(tokenizer) -> dict[str, int | None]:
    """``bos_token_id`` / ``eos_token_id`` / ``pad_token_id`` of ``tokenizer`` for a model config."""
    return {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
