"""The released Tempo checkpoint layout (compatibility §6) and its mapping onto the kit's parameter names.

The released Tempo-6B (and its Stage 0–2 checkpoints) is one Qwen3 causal-LM checkpoint whose
``config.json`` says ``model_type: "tempo_qwen"`` and adds the multimodal fields below, and whose
state dict holds the LLM, the projector, the SVLM (without its LM head) and the memory tokens
under LLaVA-style names. The kit keeps the same tensors under its component names. This module
is only tables and pure functions over ``{key: tensor}`` dicts, so every key is accounted for:
a key no rule maps is an error, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from tempo_kit.compressors.qwen3_vl import relevance_direction as compressor_direction
from tempo_kit.errors import CheckpointError, ConfigError
from tempo_kit.hub import SVLM_HUB_NAME

#: ``model_type`` of the released config.
RELEASED_MODEL_TYPE = "tempo_qwen"

#: The SVLM the released weights were trained from (the value in ``mm_vision_tower_aux_list``).
DEFAULT_SVLM_NAME = SVLM_HUB_NAME

#: Multimodal fields the released config adds to a Qwen3 config (compatibility §6).
RELEASED_MM_FIELDS = (
    "mm_vision_tower_aux_list",
    "num_compression_tokens",
    "mm_projector_type",
    "mm_hidden_size",
    "visual_token_budget",
    "tokenizer_model_max_length",
    "mm_use_im_start_end",
    "mm_use_im_patch_token",
)

SVLM_PREFIX = "model.vision_tower_aux_list.0."
MEMORY_TOKENS_KEY = SVLM_PREFIX + "compression_tokens"
KIT_MEMORY_TOKENS_KEY = "compressor.memory_tokens"
KIT_RELEVANCE_KEY = "compressor.relevance_direction"


@dataclass(frozen=True)
class PrefixRule:
    """``released`` prefix ↔ ``kit`` prefix; the part after the prefix is kept as is."""

    released: str
    kit: str
    what: str


def prefix_rules(projector: str = "linear") -> tuple[PrefixRule, ...]:
    """The mapping, most specific prefix first.

    ``projector`` is the kit registry name: ``linear`` keeps ``proj.{weight,bias}``; LLaVA's
    ``mlp{N}x_gelu`` Sequential indices (``mm_projector.0``, ``.2``, …) map onto
    ``projector.layers.*`` unchanged.
    """
    projector_kit = "projector.proj." if projector == "linear" else "projector.layers."
    return (
        PrefixRule(SVLM_PREFIX + "vlm.model.visual.", "compressor.svlm.visual.", "SVLM vision tower"),
        PrefixRule(
            SVLM_PREFIX + "vlm.model.language_model.",
            "compressor.svlm.language_model.",
            "SVLM language model",
        ),
        PrefixRule("model.mm_projector.", projector_kit, "projector"),
        PrefixRule("model.embed_tokens.", "decoder.model.model.embed_tokens.", "LLM embeddings"),
        PrefixRule("model.layers.", "decoder.model.model.layers.", "LLM layers"),
        PrefixRule("model.norm.", "decoder.model.model.norm.", "LLM final norm"),
        PrefixRule("lm_head.", "decoder.model.lm_head.", "LLM head"),
    )


@dataclass
class MappingReport:
    """What a conversion did, group by group, for the printed report."""

    groups: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def count(self, what: str) -> None:
        self.groups[what] = self.groups.get(what, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.groups.values())

    def format(self) -> str:
        width = max((len(k) for k in self.groups), default=0)
        lines = [f"  {name:<{width}}  {n:>6} tensors" for name, n in self.groups.items()]
        lines.append(f"  {'total':<{width}}  {self.total:>6} tensors, none left over")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def _unmapped_error(keys: list[str], direction: str, known: str) -> CheckpointError:
    shown = ", ".join(keys[:8]) + (f" … ({len(keys)} in all)" if len(keys) > 8 else "")
    return CheckpointError(
        f"{direction}: {len(keys)} key(s) match no rule of the released Tempo layout: {shown}. "
        f"Known prefixes: {known}. Is this a Tempo checkpoint of the compatibility §6 layout?"
    )


def _rename(
    key: str, value: Tensor, rules: tuple[PrefixRule, ...], source: str, out: dict, report: MappingReport
) -> bool:
    """Put ``value`` into ``out`` under ``key`` with the ``source`` prefix (``"released"`` or
    ``"kit"``) of the first matching rule swapped for the other side's; False if no rule matches."""
    target = "kit" if source == "released" else "released"
    rule = next((r for r in rules if key.startswith(getattr(r, source))), None)
    if rule is None:
        return False
    out[getattr(rule, target) + key[len(getattr(rule, source)) :]] = value
    report.count(rule.what)
    return True


def released_to_kit(
    state_dict: Mapping[str, Tensor], projector: str = "linear"
) -> tuple[dict[str, Tensor], MappingReport]:
    """Rename a released state dict to the kit's keys. The memory tokens ``[1, k, d]`` become
    ``[k, d]``; the relevance direction is not in the released weights (see
    :func:`relevance_direction`)."""
    rules = prefix_rules(projector)
    report = MappingReport()
    out: dict[str, Tensor] = {}
    unmapped = []
    for key, value in state_dict.items():
        if key == MEMORY_TOKENS_KEY:
            if value.ndim != 3 or value.shape[0] != 1:
                raise CheckpointError(
                    f"{key} must have shape [1, num_compression_tokens, d_svlm], got {list(value.shape)}"
                )
            out[KIT_MEMORY_TOKENS_KEY] = value[0]
            report.count("memory tokens")
            continue
        if not _rename(key, value, rules, "released", out, report):
            unmapped.append(key)
    if unmapped:
        raise _unmapped_error(unmapped, "released → kit", ", ".join(r.released for r in rules))
    if KIT_MEMORY_TOKENS_KEY not in out:
        raise CheckpointError(
            f"the released state dict has no {MEMORY_TOKENS_KEY}; it is not a Tempo checkpoint"
        )
    return out, report


def kit_to_released(
    state_dict: Mapping[str, Tensor], projector: str = "linear"
) -> tuple[dict[str, Tensor], MappingReport]:
    """Rename a kit state dict to the released keys (inverse of :func:`released_to_kit`).

    The relevance direction is dropped: the released code rebuilds it from the base SVLM.
    """
    rules = prefix_rules(projector)
    report = MappingReport()
    out: dict[str, Tensor] = {}
    unmapped = []
    for key, value in state_dict.items():
        if key == KIT_RELEVANCE_KEY:
            report.notes.append(
                "relevance direction left out: the released layout rebuilds it from the base SVLM's LM head"
            )
            continue
        if key == KIT_MEMORY_TOKENS_KEY:
            out[MEMORY_TOKENS_KEY] = value.unsqueeze(0)
            report.count("memory tokens")
            continue
        if not _rename(key, value, rules, "kit", out, report):
            unmapped.append(key)
    if unmapped:
        raise _unmapped_error(unmapped, "kit → released", ", ".join(r.kit for r in rules))
    return out, report


def split_released(state_dict: Mapping[str, Tensor]) -> dict[str, dict[str, Tensor]]:
    """The released state dict as HF checkpoints: ``llm`` (Qwen3ForCausalLM keys), ``svlm``
    (Qwen3VLForConditionalGeneration keys, no LM head), ``projector`` and ``memory_tokens``."""
    parts: dict[str, dict[str, Tensor]] = {"llm": {}, "svlm": {}, "projector": {}, "memory_tokens": {}}
    for key, value in state_dict.items():
        if key == MEMORY_TOKENS_KEY:
            parts["memory_tokens"][key] = value
        elif key.startswith(SVLM_PREFIX + "vlm."):
            parts["svlm"][key[len(SVLM_PREFIX + "vlm.") :]] = value
        elif key.startswith("model.mm_projector."):
            parts["projector"][key[len("model.mm_projector.") :]] = value
        else:
            parts["llm"][key] = value
    return parts


# --- configs ----------------------------------------------------------------------------------


def check_released_config(config: Mapping[str, Any], where: str) -> None:
    """Refuse a config that is not a released Tempo one, or uses options the kit cannot honour."""
    if config.get("model_type") != RELEASED_MODEL_TYPE:
        raise CheckpointError(
            f"{where}: model_type is {config.get('model_type')!r}, expected {RELEASED_MODEL_TYPE!r} "
            "(a released Tempo checkpoint: Tempo-6B or a Stage 0–2 checkpoint)"
        )
    missing = [
        k for k in ("num_compression_tokens", "mm_projector_type", "mm_hidden_size") if k not in config
    ]
    if missing:
        raise CheckpointError(f"{where}: missing released field(s) {', '.join(missing)}")
    for flag in ("mm_use_im_start_end", "mm_use_im_patch_token"):
        if config.get(flag):
            raise CheckpointError(
                f"{where}: {flag}=true adds LLaVA image start/patch tokens, which Tempo does not use "
                "(it tags segments with time text); the kit cannot run such a checkpoint"
            )


def llm_config_from_released(config: Mapping[str, Any]) -> dict[str, Any]:
    """The plain Qwen3 ``config.json`` inside a released config (multimodal fields removed)."""
    llm = {k: v for k, v in config.items() if k not in RELEASED_MM_FIELDS}
    llm["model_type"] = "qwen3"
    llm["architectures"] = ["Qwen3ForCausalLM"]
    return llm


def released_config_from_llm(
    llm_config: Mapping[str, Any],
    *,
    svlm_name: str,
    k_max: int,
    projector: str,
    svlm_hidden_size: int,
    budget: int | None,
    max_context: int | None,
    architectures: list[str] | None = None,
) -> dict[str, Any]:
    """A released ``config.json``: the LLM's Qwen3 config plus the multimodal fields."""
    config = {k: v for k, v in llm_config.items() if k not in ("architectures", "model_type")}
    config.update(
        model_type=RELEASED_MODEL_TYPE,
        architectures=list(architectures) if architectures else ["TempoQwenForCausalLM"],
        mm_vision_tower_aux_list=[svlm_name],
        num_compression_tokens=int(k_max),
        mm_projector_type=projector,
        mm_hidden_size=int(svlm_hidden_size),
        visual_token_budget=budget,
        tokenizer_model_max_length=max_context,
        mm_use_im_start_end=False,
        mm_use_im_patch_token=False,
    )
    return config


# --- the relevance direction ------------------------------------------------------------------


def relevance_direction(lm_head_weight: Tensor, tokenizer, yes: str = "Yes", no: str = "No") -> Tensor:
    """``w_Yes − w_No`` in float32 from an SVLM LM head ``[V, d]``: the compressor's own rule
    (:func:`tempo_kit.compressors.qwen3_vl.relevance_direction`), its error raised as a checkpoint error.
    """
    try:
        return compressor_direction(lm_head_weight, tokenizer, yes, no)
    except ConfigError as error:
        raise CheckpointError(str(error)) from error
