"""The stage-3 feature store: what one sample's stored compressor output is, and when a store is valid.

Stage 3 freezes the SVLM, the memory tokens and the projector (paper Table A), so each sample's
projected memory is fixed for the whole stage: ``tempo-kit prepare --features`` computes it once
(:mod:`tempo_kit.data.feature_prepare`) and stage 3 trains the LLM from it with no decoding and no
SVLM. A sample's payload (one safetensors blob in its shard) holds:

* ``tokens``: ``[S, k_max, d_llm]`` every segment's ``k_max`` memory embeddings *after* the
  projector, in the store's dtype (``fp32`` exact, ``bf16`` half the size);
* ``relevance``: float32 ``[S]`` (absent for a query-agnostic compressor), so the allocator (ATA,
  budget, ``k_min``) still runs at training time and a budget change needs no new store;
* ``times``: ``[S]`` the segments' time tags, as the video path would hand them to the LLM.

A text-only row stores nothing (its blank image never reaches the LLM). The store is valid for
one model and one frame geometry: its index records the model's *identity* (:func:`model_identity`:
the checksums of the saved ``compressor/`` and ``projector/`` files and their specs) and the
geometry, and :func:`check_store` refuses a store made by another model or with other frames.

fp8 is not offered: ``float8_e4m3fn`` keeps 3 mantissa bits (up to ~6 % error per value) and
needs a per-tensor scale to stay in range; that is no longer "the same features".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from tempo_kit.errors import TempoKitError
from tempo_kit.types import CompressorOutput

#: Store dtypes (``--feature-dtype``): name → torch dtype.
FEATURE_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
DEFAULT_FEATURE_DTYPE = "fp32"
#: The shard payload kind of a feature store (beside ``bytes`` and ``frames``).
FEATURES_PAYLOAD = "features"
#: The payload member's extension inside a shard.
FEATURES_EXTENSION = "features.safetensors"
#: Model parts whose weights decide the stored features (stage 3 freezes them).
FROZEN_PARTS = ("compressor", "projector")
#: Frame settings besides the decoding geometry that change a sample's segments.
SEGMENT_KEYS = ("window", "time_base")


class FeatureStoreError(TempoKitError):
    """A feature store does not fit the run: another model, another geometry, or a bad recipe."""


@dataclass
class StoredFeatures:
    """One sample's stored compressor output, in place of its :class:`~tempo_kit.types.Segments`.

    It carries what the model reads of a sample's segments (``kind``, ``times``, ``source``,
    ``len``) plus the projected memory, so batches collate and assemble exactly as from videos.
    """

    tokens: Tensor
    relevance: Tensor | None
    times: Tensor
    kind: str = "video"
    source: str | None = None

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def to(self, device: torch.device | str) -> StoredFeatures:
        relevance = None if self.relevance is None else self.relevance.to(device)
        return replace(self, tokens=self.tokens.to(device), relevance=relevance, times=self.times.to(device))


def is_stored(segments: Sequence[Any]) -> bool:
    """Whether a batch's segments are stored features (a feature-store batch)."""
    return bool(segments) and all(isinstance(s, StoredFeatures) for s in segments)


def stored_output(samples: Sequence[StoredFeatures]) -> CompressorOutput:
    """The batch's :class:`~tempo_kit.types.CompressorOutput` read from the store, marked ``projected``."""
    reference = next((s.tokens for s in samples if len(s)), samples[0].tokens)
    memory = torch.cat([s.tokens.to(reference) for s in samples])
    agnostic = any(s.relevance is None and len(s) for s in samples)
    relevance = None
    if not agnostic:
        relevance = torch.cat([
            torch.zeros(0) if s.relevance is None else s.relevance.to(torch.float32) for s in samples
        ]).to(reference.device)  # fmt: skip
    return CompressorOutput(memory, relevance, [len(s) for s in samples], projected=True)


def encode_features(tokens: Tensor, relevance: Tensor | None, times: Tensor, dtype: str) -> bytes:
    """One sample's payload: safetensors bytes of the projected memory in ``dtype``, relevance, times."""
    from safetensors.torch import save

    tensors = {"tokens": tokens.detach().to("cpu", FEATURE_DTYPES[dtype]).contiguous(), "times": times.detach().cpu()}
    if relevance is not None:
        tensors["relevance"] = relevance.detach().to("cpu", torch.float32).contiguous()
    return save(tensors)


def decode_features(data: bytes, kind: str, source: str) -> StoredFeatures:
    from safetensors.torch import load

    tensors = load(data)
    return StoredFeatures(tensors["tokens"], tensors.get("relevance"), tensors["times"], kind, source)


def empty_features(k_max: int, width: int, source: str | None) -> StoredFeatures:
    """A text-only sample: no segment reaches the LLM."""
    return StoredFeatures(torch.zeros(0, k_max, width), None, torch.zeros(0), "text", source)


# ------------------------------------------------------------------------------ validity
def model_identity(folder: str | Path) -> str:
    """16 hex digits naming the frozen parts of the kit-format model at ``folder``.

    The SHA-256 of every file under ``compressor/`` and ``projector/`` (taken from its
    ``manifest.json`` when it has one, else hashed here) and of their specs in
    ``tempo_config.json`` (minus the folder-relative ``pretrained``). Two folders with the same
    frozen weights have the same identity, whatever their decoders.
    """
    from tempo_kit.manifest import MANIFEST_NAME, file_digest
    from tempo_kit.model.storage import CONFIG_NAME

    root = Path(folder).expanduser()
    if not (root / CONFIG_NAME).is_file():
        raise FeatureStoreError(
            f"{folder} holds no {CONFIG_NAME}: a feature store's model is a local kit-format folder "
            "(the stage-2 export, <output_dir>/final)"
        )
    listed = {}
    if (root / MANIFEST_NAME).is_file():
        listed = json.loads((root / MANIFEST_NAME).read_text()).get("files", {})
    config = json.loads((root / CONFIG_NAME).read_text())
    digest = hashlib.sha256()
    for part in FROZEN_PARTS:
        spec = {k: v for k, v in (config.get(part) or {}).items() if k != "pretrained"}
        digest.update(json.dumps([part, spec], sort_keys=True).encode())
        for path in sorted(p for p in (root / part).rglob("*") if p.is_file()):
            name = path.relative_to(root).as_posix()
            checksum = (listed.get(name) or {}).get("sha256") or file_digest(path)
            digest.update(f"{name}:{checksum}".encode())
    return digest.hexdigest()[:16]


def store_geometry(load_arguments: Mapping[str, Any], window: int, time_base: str) -> dict[str, Any]:
    """Everything about the frames that decides a sample's segments (the store's ``geometry``)."""
    return {**dict(load_arguments), "window": window, "time_base": time_base}


def check_store(index: Mapping[str, Any], model: str | Path, geometry: Mapping[str, Any], location: str) -> None:
    """Refuse, in one line, a store that was not made by ``model`` with ``geometry``."""
    features = index.get("features")
    if index.get("payload") != FEATURES_PAYLOAD or not isinstance(features, Mapping):
        raise FeatureStoreError(
            f"data.features: {location} is a shard folder of {index.get('payload')!r} payloads, not a feature store; "
            "write one with tempo-kit prepare --features --model STAGE2_EXPORT (or give it as data.shards)"
        )
    identity = model_identity(model)
    if features.get("model_identity") != identity:
        raise FeatureStoreError(
            f"data.features: {location} was made by another compressor/projector (identity "
            f"{features.get('model_identity')}, from {features.get('model')}) than run.init_from={model} "
            f"(identity {identity}); rebuild it with tempo-kit prepare --features --model {model}"
        )
    stored = index.get("geometry") or {}
    for key in sorted(set(stored) | set(geometry)):
        if stored.get(key) != geometry.get(key):
            raise FeatureStoreError(
                f"data.features: {location} was made with {key}={stored.get(key)!r} but the recipe has "
                f"data.{key}={geometry.get(key)!r}; set data.{key}={stored.get(key)!r} or rebuild the store "
                "with this recipe"
            )
