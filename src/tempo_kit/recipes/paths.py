"""Checkpoint paths in a recipe: the components' base checkpoints are local folders; ``run.init_from``
(a whole kit model) may also be a hub id, fetched when the model is built (:mod:`tempo_kit.hub`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from tempo_kit.errors import CheckpointError
from tempo_kit.hub import LLM_HUB_NAME, SVLM_HUB_NAME, download_command, is_hub_model, looks_like_hub_name

#: Compressors built on a Qwen3-VL checkpoint: their ``pretrained`` must be one.
QWEN3_VL_COMPRESSORS = ("qwen3_vl", "pooling")

#: The hub checkpoint each recipe key stands for, named in download instructions.
HUB_NAMES = {
    "model.compressor.pretrained": SVLM_HUB_NAME,
    "model.decoder.pretrained": LLM_HUB_NAME,
}


def check_checkpoint_paths(cfg: DictConfig, source: str) -> None:
    """``run.init_from``, or else the compressor's and decoder's ``pretrained``, are local folders."""
    init_from = cfg.run.init_from
    if init_from is not None and not Path(str(init_from)).expanduser().is_dir() and not is_hub_model(init_from):
        raise CheckpointError(
            f"recipe {source!r}: run.init_from={str(init_from)!r} is not a local folder. It is the previous "
            "stage's export (<output_dir>/final of its fit run) or a hub id (org/name): run that stage first, "
            "point run.init_from at its final/ folder, or set run.init_from=null to start from the model: checkpoints."
        )
    if cfg.run.init_from is None:
        for part in ("compressor", "decoder"):
            spec = cfg.model.get(part)
            if isinstance(spec, DictConfig) and spec.get("pretrained") is not None:
                check_local_path(spec.pretrained, f"model.{part}.pretrained", source)
                if part == "compressor" and spec.get("name") in QWEN3_VL_COMPRESSORS:
                    from tempo_kit.compressors.checkpoint import QWEN3_VL_MODEL_TYPE
                    from tempo_kit.hub import local_checkpoint

                    try:  # another model's folder here would build a default-size Qwen3-VL
                        local_checkpoint(spec.pretrained, "SVLM", model_type=QWEN3_VL_MODEL_TYPE)
                    except CheckpointError as error:
                        raise CheckpointError(f"recipe {source!r}: model.compressor.pretrained: {error}") from None


def check_local_path(value: Any, key: str, source: str) -> None:
    """A checkpoint path must be a local folder; a hub name needs a download the user does."""
    if value is None:
        return
    path = Path(str(value)).expanduser()
    if path.is_dir():
        return
    text = str(value)
    if looks_like_hub_name(text):
        local = f"checkpoints/{text.split('/')[-1]}"
        raise CheckpointError(
            f"recipe {source!r}: {key}={text!r} is not a local folder; it looks like a model-hub name. "
            f"tempo-kit never downloads weights: fetch them first, e.g. "
            f"`{download_command(text, local)}`, then pass {key}={local}."
        )
    hub = HUB_NAMES.get(key, LLM_HUB_NAME)
    raise CheckpointError(
        f"recipe {source!r}: {key}={text!r} is not a local folder. Download the checkpoint into it first "
        f"(e.g. `{download_command(hub)}`; the stage "
        "recipes expect checkpoints/Qwen3-VL-2B-Instruct and checkpoints/Qwen3-4B), point the key at another "
        "folder, or build tiny test checkpoints with `tempo-kit make-tiny outputs/tiny`."
    )
