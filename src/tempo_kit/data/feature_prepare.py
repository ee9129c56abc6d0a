"""``prepare --features``: each checked row → its frozen compressor + projector output, once.

The shard machinery is :mod:`tempo_kit.data.prepare`'s (parallel, resumable after a kill, an
index with counts, every skipped row counted with its reason); only the payload differs: instead
of the video's bytes or frames, a row stores what stage 3's frozen parts make of it
(:mod:`tempo_kit.data.features`). The compressor sees the sample exactly as training would hand it
over (the same segments, the same query: the human turns, :func:`~tempo_kit.model.prompts.compressor_query`)
and the projector is applied as training applies it, so the LLM input assembled from the store
is the one assembled from the video.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tempo_kit.data.features import (
    DEFAULT_FEATURE_DTYPE,
    FEATURE_DTYPES,
    FEATURES_EXTENSION,
    FeatureStoreError,
    encode_features,
    model_identity,
)

#: The model each process computes features with (one load per worker process, not per shard).
_LOADED: dict[str, Any] = {}


def feature_settings(model: str | Path, dtype: str = DEFAULT_FEATURE_DTYPE) -> dict[str, Any]:
    """The store's model record, checked before any work: the folder, its identity, the dtype."""
    from tempo_kit.model.storage import CONFIG_NAME

    if dtype not in FEATURE_DTYPES:
        raise FeatureStoreError(
            f"--feature-dtype {dtype!r} is not a store dtype; choose one of {', '.join(FEATURE_DTYPES)}"
        )
    folder = Path(model).expanduser()
    if not (folder / CONFIG_NAME).is_file():
        raise FeatureStoreError(
            f"--model {model}: no {CONFIG_NAME} there; give the stage-2 export (<output_dir>/final), "
            "the folder stage 3's run.init_from names"
        )
    return {"model": str(folder.resolve()), "model_identity": model_identity(folder), "dtype": dtype}


def _model(folder: str):
    if folder not in _LOADED:
        from tempo_kit.model import TempoModel

        _LOADED.clear()
        # training mode, as stage 3 runs the frozen parts: the compressor's training prompt (its
        # eval mode asks the routing prompt); the kit's compressors have no dropout
        _LOADED[folder] = TempoModel.from_pretrained(folder).train()
    return _LOADED[folder]


@torch.no_grad()
def project_sample(model, sample) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(tokens [S, k_max, d_llm], relevance [S] | None)`` of one sample, as training computes them."""
    from tempo_kit.model.prompts import compressor_query
    from tempo_kit.model.visual_selection import project
    from tempo_kit.types import TempoBatch

    empty = torch.zeros(1, 0, dtype=torch.long)
    batch = TempoBatch([sample.segments], [compressor_query(sample.turns)], empty, empty, empty)
    compressed = model.compress(batch)
    memory = compressed.memory
    tokens = project(model.projector, memory.reshape(-1, memory.shape[-1])).reshape(*memory.shape[:2], -1)
    return tokens, compressed.relevance


def feature_payload(settings: dict[str, Any], sample) -> tuple[tuple[str, bytes] | None, list[int]]:
    """The row's payload (``None`` for a text row) and the stored ``[k_max, d_llm]``."""
    model = _model(settings["model"])
    shape = [int(model.compressor.k_max), int(model.decoder.hidden_size)]
    if sample.kind == "text":
        return None, shape
    tokens, relevance = project_sample(model, sample)
    return (FEATURES_EXTENSION, encode_features(tokens, relevance, sample.segments.times, settings["dtype"])), shape
