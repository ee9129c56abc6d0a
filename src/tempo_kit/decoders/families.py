"""The decoder families ``hf_causal_lm`` supports: one row per Hugging Face architecture.

open_clip's ``arch_dict`` in spirit: what differs between causal LMs and matters to Tempo is
written here once, keyed by the checkpoint config's ``model_type``. The chat template of the
decoder prompt is *not* in this table: it belongs to the tokenizer (SmolLM2 and Llama 3.x are both
``llama`` checkpoints, one ChatML, one Llama-3 headers), so :mod:`tempo_kit.model.prompts` reads it
from the tokenizer. The transformer blocks FSDP2 shards are read from the built model
(``_no_split_modules``); the table names them only so a test can check the model agrees.

A family not listed here is refused when the decoder is built, with the list of those that are:
a new one is one :class:`DecoderFamily` row plus a tiny checkpoint writer in ``tempo_kit.tiny``.
"""

from __future__ import annotations

from dataclasses import dataclass

from tempo_kit.errors import ConfigError

#: LoRA targets of a decoder layer with separate projections (Llama, Qwen, Mistral, Gemma).
SPLIT_PROJECTIONS: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
#: LoRA targets of a Phi-3 layer (fused ``qkv_proj`` and ``gate_up_proj``).
FUSED_PROJECTIONS: tuple[str, ...] = ("qkv_proj", "o_proj", "gate_up_proj", "down_proj")


@dataclass(frozen=True)
class DecoderFamily:
    """What Tempo must know of one causal-LM architecture.

    Attributes:
        name: the family's name in the kit (docs, ``make-tiny --llm``, the compatibility matrix).
        model_types: the ``model_type`` values of its checkpoint configs.
        block_class: the decoder-layer class (FSDP2 shard unit, activation-checkpoint unit).
        lora_targets: module names of its attention and MLP projections (LoRA's ``target_modules``).
        examples: released checkpoints of the family, for messages and docs.
    """

    name: str
    model_types: tuple[str, ...]
    block_class: str
    lora_targets: tuple[str, ...]
    examples: str


#: The supported families, in the order the docs list them.
DECODER_FAMILIES: tuple[DecoderFamily, ...] = (
    DecoderFamily("qwen3", ("qwen3",), "Qwen3DecoderLayer", SPLIT_PROJECTIONS, "Qwen3-0.6B … Qwen3-32B"),
    DecoderFamily("qwen2", ("qwen2",), "Qwen2DecoderLayer", SPLIT_PROJECTIONS, "Qwen2.5-0.5B … Qwen2.5-72B"),
    DecoderFamily("llama", ("llama",), "LlamaDecoderLayer", SPLIT_PROJECTIONS, "SmolLM2, Llama 3.x"),
    DecoderFamily("gemma3", ("gemma3_text",), "Gemma3DecoderLayer", SPLIT_PROJECTIONS, "Gemma 3 1B (text)"),
    DecoderFamily("mistral", ("mistral",), "MistralDecoderLayer", SPLIT_PROJECTIONS, "Mistral 7B v0.3"),
    DecoderFamily("phi3", ("phi3",), "Phi3DecoderLayer", FUSED_PROJECTIONS, "Phi-3 / Phi-3.5 / Phi-4-mini"),
)

#: ``model_type`` → family.
BY_MODEL_TYPE: dict[str, DecoderFamily] = {t: f for f in DECODER_FAMILIES for t in f.model_types}
#: family name → family.
BY_NAME: dict[str, DecoderFamily] = {f.name: f for f in DECODER_FAMILIES}


def supported_families() -> str:
    """``qwen3 (qwen3), llama (llama) …``: the families and the ``model_type`` each reads."""
    return ", ".join(f"{f.name} ({'/'.join(f.model_types)})" for f in DECODER_FAMILIES)


def family_of(model_type: str | None, where: str) -> DecoderFamily:
    """The family of a checkpoint config's ``model_type``; an unknown one is refused in one line."""
    family = BY_MODEL_TYPE.get(str(model_type))
    if family is None:
        raise ConfigError(
            f"{where}: model_type {model_type!r} is not a supported decoder family; supported: "
            f"{supported_families()}. To add one, write a DecoderFamily row in tempo_kit/decoders/families.py"
        )
    return family
