"""The :class:`TempoConfig` record: what ``TempoModel.from_config`` reads and ``tempo_config.json`` stores.

Four component specs (registry name + keyword arguments) plus the model-level settings of
allocation and sequence assembly, each defaulting to the released Tempo behaviour.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from tempo_kit.compressors.inputs import check_call_token_budget
from tempo_kit.defaults import DEFAULT_BUDGET, DEFAULT_K_MIN, DEFAULT_REDUCTION  # noqa: F401 (re-exported)
from tempo_kit.errors import ConfigError, check_choice, did_you_mean
from tempo_kit.model.assembly import (
    CONTEXT_CUTS,
    DEFAULT_ANSWER_ROOM,
    DEFAULT_CONTEXT_CUT,
    DEFAULT_MAX_CONTEXT,
    DEFAULT_TRAIN_MAX_CONTEXT,
)
from tempo_kit.model.packing import check_pack_tokens
from tempo_kit.time_tags import TIME_TAG_TEMPLATE, check_time_tag_template
from tempo_kit.video.options import DEFAULT_PREPROCESSING
from tempo_kit.video.preprocessing import check_preprocessing

#: Lowest value of each integer model setting (a budget of 0 tokens cannot answer anything).
INTEGER_MINIMUMS = {"budget": 1, "k_min": 0, "max_context": 1, "train_max_context": 1, "answer_room": 0}


def check_model_settings(values: Mapping[str, Any], prefix: str) -> None:
    """Types and ranges of the model-level settings present in ``values`` (``prefix`` names where)."""
    for key, low in INTEGER_MINIMUMS.items():
        value = values.get(key, low)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{prefix}{key}={value!r} must be an integer ≥ {low}")
    if not isinstance(values.get("tag_images", False), bool):
        raise ConfigError(f"{prefix}tag_images={values['tag_images']!r} must be true or false")
    check_pack_tokens(values.get("train_pack_tokens"), f"{prefix}train_pack_tokens")
    compressor = values.get("compressor")
    if isinstance(compressor, Mapping) and "call_token_budget" in compressor:
        check_call_token_budget(compressor["call_token_budget"], f"{prefix}compressor.call_token_budget")


def family_preprocessing(compressor: Mapping[str, Any], preprocessing: str | None) -> str:
    """``preprocessing`` (``None``: the compressor family's default), checked against the modes the
    family's processor takes; compressors without a family (``pooling``, plugins) take any mode,
    ``"released"`` by default. A mode the family does not take is a one-line :class:`ConfigError`."""
    from tempo_kit.registry import COMPRESSORS

    builder = COMPRESSORS.get(compressor["name"]) if compressor.get("name") in COMPRESSORS else None
    family = getattr(builder, "family", None)
    modes = getattr(family, "preprocessing", None)
    if preprocessing is None:
        return modes[0] if modes else DEFAULT_PREPROCESSING
    check_preprocessing(preprocessing, "model config: preprocessing")
    if modes and preprocessing not in modes:
        raise ConfigError(
            f"preprocessing={preprocessing!r} is not a frame geometry compressor {family.name!r} takes "
            f"(its processor takes: {', '.join(modes)}); set data.preprocessing: {modes[0]} in the recipe "
            "(or preprocessing= when building the model)"
        )
    return preprocessing


def _spec(value: Any, key: str) -> dict[str, Any]:
    """A component spec as a plain dict with a ``name``; a bare string is ``{"name": value}``."""
    if isinstance(value, str):
        return {"name": value}
    if not isinstance(value, Mapping) or "name" not in value:
        raise ConfigError(
            f"model config: {key} must be a registry spec {{name: ..., **kwargs}}, got {value!r}"
        )
    return copy.deepcopy(dict(value))


@dataclass
class TempoConfig:
    """Everything needed to build a :class:`~tempo_kit.model.TempoModel`.

    Attributes:
        compressor: registry spec, e.g. ``{name: qwen3_vl, pretrained: PATH, k_max: 128}``.
        decoder: registry spec, e.g. ``{name: hf_causal_lm, pretrained: PATH}``.
        projector: registry spec; its widths are inferred from the compressor and decoder.
        allocator: registry spec used by ``generate`` (and ``forward(allocate=True)``).
        reduction: name (or spec) of the intra-segment reduction applied after allocation.
        budget: visual-token budget B per sample at inference.
        k_min: minimal tokens per segment at inference.
        time_tag_template: ``str.format`` template of a segment's time tag, field ``t``.
        max_context: LLM context cap at inference (text is never cut, visual rows are); the
            released scripts pass 16384 (infer, demo app) or 32768 (evaluation).
        train_max_context: LLM context cap in ``forward`` (the released recipes' 8192).
        answer_room: tokens the cap keeps free for the answer at inference (released: 16).
        context_cut: ``"released"`` (raw visual rows, even inside a segment) or ``"segments"``
            (whole tags, a segment's head of tokens); see :mod:`~tempo_kit.model.assembly`.
        preprocessing: the frame geometry the model was trained with (``"released"``,
            ``"qwen3_vl"`` or ``"processor"``); inference reads videos the same way unless told
            otherwise. ``None``: the compressor family's default (``FamilyAdapter.preprocessing``:
            ``"released"`` for Qwen3-VL, ``"processor"`` for the others); a mode the family's
            processor does not take is refused.
        train_pack_tokens: in ``forward`` (training), pack the batch's samples into decoder rows of
            at most this many tokens, each sample attending only to itself, instead of padding
            every row to the longest (:mod:`~tempo_kit.model.packing`); ``None`` (default) pads.
            The loss is the padded loss.
        tag_images: give an image sample's single segment a time tag too (off: an image has no
            time; video segments are always tagged).
    """

    compressor: dict[str, Any]
    decoder: dict[str, Any]
    projector: dict[str, Any] = field(default_factory=lambda: {"name": "linear"})
    allocator: dict[str, Any] = field(default_factory=lambda: {"name": "ata"})
    reduction: str | dict[str, Any] = DEFAULT_REDUCTION
    budget: int = DEFAULT_BUDGET
    k_min: int = DEFAULT_K_MIN
    time_tag_template: str = TIME_TAG_TEMPLATE
    max_context: int = DEFAULT_MAX_CONTEXT
    train_max_context: int = DEFAULT_TRAIN_MAX_CONTEXT
    answer_room: int = DEFAULT_ANSWER_ROOM
    context_cut: str = DEFAULT_CONTEXT_CUT
    preprocessing: str | None = None
    tag_images: bool = False
    train_pack_tokens: int | None = None

    def __post_init__(self) -> None:
        for key in ("compressor", "decoder", "projector", "allocator"):
            setattr(self, key, _spec(getattr(self, key), key))
        if not isinstance(self.reduction, str):
            self.reduction = _spec(self.reduction, "reduction")
        self.preprocessing = family_preprocessing(self.compressor, self.preprocessing)
        check_choice(self.context_cut, CONTEXT_CUTS, "model config: context_cut")
        check_model_settings({f.name: getattr(self, f.name) for f in fields(self)}, "model config: ")
        check_time_tag_template(self.time_tag_template)

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any]) -> TempoConfig:
        """Validate a mapping (a dict or an omegaconf node): unknown keys fail with a did-you-mean."""
        try:
            from omegaconf import DictConfig, OmegaConf

            if isinstance(cfg, DictConfig):
                cfg = OmegaConf.to_container(cfg, resolve=True)
        except ImportError:  # pragma: no cover - omegaconf is a dependency
            pass
        if isinstance(cfg, TempoConfig):
            return copy.deepcopy(cfg)
        if not isinstance(cfg, Mapping):
            raise ConfigError(f"model config must be a mapping, got {type(cfg).__name__}")
        known = [f.name for f in fields(cls)]
        cfg = dict(cfg)
        if cfg.get("compressor_micro_batch", 0) is None:
            del cfg["compressor_micro_batch"]  # written (always null) by format-1 folders of earlier versions
        for key in cfg:
            if key == "compressor_micro_batch":
                raise ConfigError(
                    f"model config: compressor_micro_batch={cfg[key]!r} was replaced by the compressor's own "
                    "segment_batch_size; set model.compressor.segment_batch_size instead"
                )
            if key not in known:
                raise ConfigError(
                    f"model config: unknown key {key!r}{did_you_mean(key, known)}. Known keys: {', '.join(known)}."
                )
        for key in ("compressor", "decoder"):
            if key not in cfg:
                raise ConfigError(
                    f"model config: {key!r} is required, e.g. {key}: {{name: ..., pretrained: PATH}}"
                )
        return cls(**copy.deepcopy(dict(cfg)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def reduction_name(self) -> str:
        return self.reduction if isinstance(self.reduction, str) else self.reduction["name"]

    @property
    def reduction_kwargs(self) -> dict[str, Any]:
        return (
            {}
            if isinstance(self.reduction, str)
            else {k: v for k, v in self.reduction.items() if k != "name"}
        )
