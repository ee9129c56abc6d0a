"""Converting between the released Tempo checkpoint layout and the kit's format, both ways.

released → kit: the released folder (``config.json`` with ``model_type: tempo_qwen`` + weights)
and the base Qwen3-VL-2B-Instruct folder (SVLM config, processor, tokenizer, and the LM head the
relevance direction is rebuilt from) become a kit model folder, written by
:meth:`TempoModel.save_pretrained`. The kit model is built from the configs alone on the meta
device, so every shape is checked before a weight is loaded; every released key is mapped, the
kit model's own state dict must be covered exactly (no missing, no extra key), and ``w_Yes − w_No``
from the base SVLM is baked into the compressor. Nothing is staged on disk but the released LLM's
config and tokenizer files.

kit → released: the inverse, so a model trained or fine-tuned with the kit (e.g. stage 3 from
the released Stage-2 weights) can be published in the released layout.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from tempo_kit.atomic import atomic_folder
from tempo_kit.checkpoints import released as layout
from tempo_kit.errors import CheckpointError
from tempo_kit.hf import load_tensors, tied_aliases, to_empty_keeping_ties
from tempo_kit.hf_folder import (
    TOKENIZER_FILES,
    copy_files,
    load_state_dict,
    read_json,
    read_tensor,
    save_state_dict,
    write_json,
)

#: Written into a converted kit folder: where it came from, so converting back restores the
#: released config's own fields (architectures, SVLM name) exactly.
CONVERSION_RECORD = "conversion.json"

#: LLM config fields that fix its tensor shapes; equal ones mean "the same LLM" as the source.
LLM_SHAPE_FIELDS = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "vocab_size",
)

LLM_HEAD_KEY = "decoder.model.lm_head.weight"
LLM_EMBED_KEY = "decoder.model.model.embed_tokens.weight"

#: Names of the base SVLM's LM-head weight; Qwen3-VL-2B ties it to the input embeddings.
SVLM_HEAD_KEYS = ("lm_head.weight", "model.language_model.embed_tokens.weight")


@dataclass
class ConversionReport:
    """What a conversion did: tensors per group, notes, checks; :meth:`format` prints it."""

    direction: str
    source: str
    target: str
    groups: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    shapes_checked: int = 0
    seconds: float = 0.0

    def format(self) -> str:
        width = max((len(k) for k in self.groups), default=5)
        lines = [f"{self.direction}: {self.source} → {self.target}"]
        lines += [f"  {name:<{width}}  {n:>6} tensors" for name, n in self.groups.items()]
        lines.append(f"  {'total':<{width}}  {sum(self.groups.values()):>6} tensors mapped, none left over")
        if self.shapes_checked:
            lines.append(f"  shapes checked against the model: {self.shapes_checked}")
        lines += [f"  note: {n}" for n in self.notes]
        lines.append(f"  done in {self.seconds:.1f} s")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def _check_against_model(
    model_state: Mapping[str, Tensor], kit_state: Mapping[str, Tensor], source: str
) -> int:
    """Every model key is provided with its shape, and nothing else; returns keys checked."""
    missing = sorted(set(model_state) - set(kit_state))
    extra = sorted(set(kit_state) - set(model_state))
    wrong = [
        f"{k}: checkpoint {list(kit_state[k].shape)} vs model {list(model_state[k].shape)}"
        for k in model_state
        if k in kit_state and tuple(kit_state[k].shape) != tuple(model_state[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} model key(s) not in {source}: {', '.join(missing[:6])}")
    if extra:
        problems.append(f"{len(extra)} key(s) of {source} the model does not have: {', '.join(extra[:6])}")
    if wrong:
        problems.append(f"{len(wrong)} shape mismatch(es): {'; '.join(wrong[:6])}")
    if problems:
        raise CheckpointError(
            "the converted weights do not fit the model their config describes — "
            + " | ".join(problems)
            + ". Check that the base SVLM folder is the one the checkpoint was trained from."
        )
    return len(model_state)


def _svlm_hidden_size(svlm_dir: Path) -> int:
    config = read_json(svlm_dir / "config.json")
    text = config.get("text_config", config)
    if "hidden_size" not in text:
        raise CheckpointError(
            f"{svlm_dir / 'config.json'} has no text_config.hidden_size; is it a Qwen3-VL checkpoint?"
        )
    return int(text["hidden_size"])


def _llm_folder(
    parts: Mapping[str, Tensor],
    config: Mapping[str, Any],
    released_dir: Path,
    llm_dir: Path | None,
    stage: Path,
    report: ConversionReport,
) -> Path:
    """The folder the decoder is built from: the released LLM's config and tokenizer (no weights:
    they are loaded from the released state), or the base LLM for a checkpoint that holds none."""
    if not parts:
        if llm_dir is None:
            raise CheckpointError(
                f"{released_dir} holds no LLM weights (model.embed_tokens / model.layers / lm_head): "
                "pass the base LLM folder (--llm) to take them from there"
            )
        report.notes.append(f"LLM weights taken from the base LLM {llm_dir} (the checkpoint holds none)")
        return llm_dir
    llm_config = layout.llm_config_from_released(config)
    head, embed = parts.get("lm_head.weight"), parts.get("model.embed_tokens.weight")
    if (
        llm_config.get("tie_word_embeddings")
        and head is not None
        and embed is not None
        and not torch.equal(head, embed)
    ):
        llm_config["tie_word_embeddings"] = False
        report.notes.append("lm_head differs from embed_tokens although the config ties them: kept untied")
    copy_files(released_dir, stage, names=TOKENIZER_FILES + ("generation_config.json",))
    write_json(stage / "config.json", llm_config)
    return stage


def convert_released_to_kit(
    released_dir: str | Path,
    svlm_dir: str | Path,
    out_dir: str | Path,
    *,
    llm_dir: str | Path | None = None,
    compressor_kwargs: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> ConversionReport:
    """Convert a released Tempo folder into a kit model folder at ``out_dir``.

    Args:
        released_dir: the released checkpoint (Tempo-6B, or a Stage 0–2 checkpoint).
        svlm_dir: the base Qwen3-VL-2B-Instruct folder: SVLM config, processor and tokenizer,
            and the LM head the relevance direction is rebuilt from (compatibility §6).
        out_dir: the kit folder to write.
        llm_dir: base LLM folder, used only when the checkpoint holds no LLM weights.
        compressor_kwargs: extra ``qwen3_vl`` compressor settings to store (e.g. ``dtype``).
    """
    from tempo_kit.model import TempoModel

    start = time.perf_counter()
    released_dir, svlm_dir, out_dir = Path(released_dir), Path(svlm_dir), Path(out_dir)
    report = ConversionReport("released → kit", str(released_dir), str(out_dir))
    config = read_json(released_dir / "config.json")
    layout.check_released_config(config, str(released_dir / "config.json"))
    d_svlm = _svlm_hidden_size(svlm_dir)
    if int(config["mm_hidden_size"]) != d_svlm:
        raise CheckpointError(
            f"{released_dir}: mm_hidden_size={config['mm_hidden_size']} but the base SVLM {svlm_dir} has "
            f"hidden size {d_svlm}; pass the SVLM the checkpoint was trained from "
            f"({config.get('mm_vision_tower_aux_list')})"
        )
    projector = str(config["mm_projector_type"])
    state = load_state_dict(released_dir, progress=progress, desc="reading released weights")
    kit_state, mapping = layout.released_to_kit(state, projector=projector)
    report.groups = dict(mapping.groups)
    head_omitted = (
        LLM_HEAD_KEY not in kit_state
        and LLM_EMBED_KEY in kit_state
        and bool(config.get("tie_word_embeddings"))
    )
    if head_omitted:  # tied weights saved once, as Hugging Face does: the head is the embedding
        kit_state[LLM_HEAD_KEY] = kit_state[LLM_EMBED_KEY]
        report.notes.append("lm_head.weight absent and tie_word_embeddings=true: the head is embed_tokens")
    k_max = int(config["num_compression_tokens"])
    if kit_state[layout.KIT_MEMORY_TOKENS_KEY].shape[0] != k_max:
        raise CheckpointError(
            f"{layout.MEMORY_TOKENS_KEY} holds {kit_state[layout.KIT_MEMORY_TOKENS_KEY].shape[0]} tokens but "
            f"num_compression_tokens is {k_max}"
        )

    head = read_tensor(svlm_dir, *SVLM_HEAD_KEYS)
    if head is None:
        raise CheckpointError(
            f"the base SVLM {svlm_dir} has neither of {SVLM_HEAD_KEYS}; cannot rebuild relevance"
        )
    from transformers import AutoTokenizer

    direction = layout.relevance_direction(head, AutoTokenizer.from_pretrained(str(svlm_dir)))
    kit_state[layout.KIT_RELEVANCE_KEY] = direction
    report.groups["relevance direction (from base SVLM)"] = 1

    parts = layout.split_released(state)
    if not parts["svlm"]:
        report.notes.append(f"SVLM weights taken from the base SVLM {svlm_dir} (the checkpoint holds none)")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(  # the LLM's config and tokenizer only: a few files, no weights;
        # named as a partial of the output, so a rerun after a kill removes it (atomic.remove_partials)
        prefix=f".{out_dir.name}.partial-llm-", dir=out_dir.parent
    ) as tmp:
        llm_path = _llm_folder(
            parts["llm"], config, released_dir, Path(llm_dir) if llm_dir else None, Path(tmp), report
        )
        model_config = {
            "compressor": {
                "name": "qwen3_vl",
                "pretrained": str(svlm_dir),
                "k_max": k_max,
                **dict(compressor_kwargs or {}),
            },
            "projector": {"name": projector},
            "decoder": {"name": "hf_causal_lm", "pretrained": str(llm_path)},
        }
        if config.get("visual_token_budget"):
            model_config["budget"] = int(config["visual_token_budget"])
        if config.get("tokenizer_model_max_length"):  # the training context; inference takes the
            # caller's cap (compatibility §4), the kit's infer/eval defaults
            model_config["train_max_context"] = int(config["tokenizer_model_max_length"])
        # built from the configs alone, on the meta device: shapes are checked before any weight is read
        model = TempoModel.from_config(model_config, load_weights=False)
        shapes = model.state_dict()
        weights = ("compressor.svlm.", "decoder.")
        given = {k: v for k, v in kit_state.items() if k.startswith(weights)}
        if parts["llm"] and parts["svlm"]:
            _check_against_model({k: v for k, v in shapes.items() if k.startswith(weights)}, given, str(released_dir))
        else:  # a partial checkpoint: only the shapes of what it holds
            wrong = {k for k, v in given.items() if k in shapes and tuple(v.shape) != tuple(shapes[k].shape)}
            _check_against_model({k: shapes[k] for k in wrong}, {k: given[k] for k in wrong}, str(released_dir))
        to_empty_keeping_ties(model, "cpu")
        provided = dict(kit_state)
        for part, prefix in (("llm", "decoder."), ("svlm", "compressor.svlm.")):
            if not parts[part]:  # a partial checkpoint: these come from the base folder
                component, _, inner = prefix.rstrip(".").partition(".")
                base = getattr(model, component).initial_state_dict()
                provided.update({f"{component}.{k}": v for k, v in base.items() if k.startswith(inner)})
        for alias, name in tied_aliases(model).items():  # a base checkpoint stores tied weights once
            if name in provided:
                provided.setdefault(alias, provided[name])
        report.shapes_checked = _check_against_model(shapes, provided, str(released_dir))
        load_tensors(model, provided, f"model converted from {released_dir}")
        with atomic_folder(out_dir) as partial:  # the folder appears whole, or not at all
            model.save_pretrained(partial)
            write_json(
                partial / CONVERSION_RECORD,
                {
                    "from": "released",
                    "released_config": config,
                    "svlm": str(svlm_dir),
                    "groups": report.groups,
                    "tied_head_omitted": head_omitted,
                },
            )
    report.seconds = time.perf_counter() - start
    return report


def convert_kit_to_released(
    kit_dir: str | Path,
    out_dir: str | Path,
    *,
    svlm_name: str | None = None,
    max_shard_bytes: int | None = None,
    progress: bool = True,
) -> ConversionReport:
    """Write a kit model folder in the released layout (``config.json`` + safetensors + tokenizer).

    Args:
        svlm_name: the value of ``mm_vision_tower_aux_list`` (default: the one recorded when the
            folder was converted from the released layout, else ``Qwen/Qwen3-VL-2B-Instruct``).
    """
    from tempo_kit.model import TempoModel

    start = time.perf_counter()
    kit_dir, out_dir = Path(kit_dir), Path(out_dir)
    report = ConversionReport("kit → released", str(kit_dir), str(out_dir))
    model = TempoModel.from_pretrained(kit_dir)
    record_path = kit_dir / CONVERSION_RECORD
    projector = _projector_name(model)
    kit_state = model.state_dict()
    record = read_json(record_path) if record_path.is_file() else {}
    original = record.get("released_config", {})
    if record.get("tied_head_omitted") and torch.equal(kit_state[LLM_HEAD_KEY], kit_state[LLM_EMBED_KEY]):
        del kit_state[LLM_HEAD_KEY]  # written the way the source checkpoint was: tied, saved once
    released_state, mapping = layout.kit_to_released(kit_state, projector=projector)
    report.groups = dict(mapping.groups)
    report.notes += mapping.notes

    llm_config = model.decoder.model.config.to_diff_dict()
    config = layout.released_config_from_llm(
        llm_config,
        svlm_name=svlm_name or (original.get("mm_vision_tower_aux_list") or [layout.DEFAULT_SVLM_NAME])[0],
        k_max=int(model.compressor.k_max),
        projector=projector,
        svlm_hidden_size=int(model.compressor.hidden_size),
        budget=_config_value(model, "budget"),
        max_context=_config_value(model, "train_max_context"),
        architectures=original.get("architectures"),
    )
    if original and all(original.get(k) == llm_config.get(k) for k in LLM_SHAPE_FIELDS):
        # same LLM as the source checkpoint: its config comes back as it was (field names of the
        # transformers version that wrote it included); only the multimodal fields are the model's
        config = {**original, **{k: config[k] for k in layout.RELEASED_MM_FIELDS}}
        report.notes.append(
            "config: the source checkpoint's, recorded at conversion, with this model's mm fields"
        )
    kwargs = {} if max_shard_bytes is None else {"max_shard_bytes": max_shard_bytes}
    with atomic_folder(out_dir) as partial:  # the folder appears whole, or not at all
        write_json(partial / "config.json", config)
        save_state_dict(released_state, partial, progress=progress, desc="writing released weights", **kwargs)
        model.decoder.tokenizer.save_pretrained(str(partial))
        generation = getattr(model.decoder.model, "generation_config", None)
        if generation is not None:
            generation.save_pretrained(str(partial))
    report.seconds = time.perf_counter() - start
    return report


def _config_value(model, key: str) -> Any:
    config = getattr(model, "config", None)
    if config is None:
        return None
    return config.get(key) if isinstance(config, Mapping) else getattr(config, key, None)


def _projector_name(model) -> str:
    config = getattr(model, "config", None)
    spec = config.get("projector") if isinstance(config, Mapping) else getattr(config, "projector", None)
    if isinstance(spec, Mapping):
        return str(spec["name"])
    if isinstance(spec, str):
        return spec
    raise CheckpointError("cannot tell the kit model's projector type from its config")


def equal_state_dicts(a: Mapping[str, Tensor], b: Mapping[str, Tensor]) -> list[str]:
    """Keys whose presence, dtype, shape or values differ (empty = key- and value-exact)."""
    problems = [f"only in first: {k}" for k in sorted(set(a) - set(b))]
    problems += [f"only in second: {k}" for k in sorted(set(b) - set(a))]
    for key in sorted(set(a) & set(b)):
        x, y = a[key], b[key]
        if x.dtype != y.dtype or x.shape != y.shape or not torch.equal(x, y):
            problems.append(f"differs: {key} ({x.dtype} {list(x.shape)} vs {y.dtype} {list(y.shape)})")
    return problems


__all__ = [
    "ConversionReport",
    "convert_kit_to_released",
    "convert_released_to_kit",
    "equal_state_dicts",
]
