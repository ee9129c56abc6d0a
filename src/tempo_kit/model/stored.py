"""A ``TempoModel`` that trains from a stage-3 feature store: the decoder only, no SVLM in memory.

Stage 3 freezes the compressor, the memory tokens and the projector, and a feature store holds
their output for every sample (:mod:`tempo_kit.data.features`). :func:`stored_features_model`
loads a stage-2 export with only its decoder and allocator: the compressor is a
:class:`StoredCompressor` placeholder with no weights, the projector the identity (the stored
memory is already projected, and ``CompressorOutput.projected`` says so). :func:`with_frozen_parts`
puts the saved compressor and projector back when the run exports its model, so the exported
folder is a whole model again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from tempo_kit.data.features import FeatureStoreError
from tempo_kit.model.initial_weights import load_component
from tempo_kit.projectors import IdentityProjector


class StoredCompressor(nn.Module):
    """Stands in for a compressor whose output comes from a feature store; it cannot compress."""

    def __init__(self, k_max: int | None, folder: Path) -> None:
        super().__init__()
        self.k_max = k_max
        self.folder = folder

    def forward(self, *args: Any, **kwargs: Any):
        raise FeatureStoreError(
            f"this model was loaded from {self.folder} without its compressor, to train from a feature store "
            "(data.features); batches of videos need the whole model: TempoModel.from_pretrained"
        )


def stored_features_model(path: str | Path, *, load_weights: bool = True, **overrides: Any):
    """The model at ``path`` (a kit-format folder) with only its decoder and allocator loaded.

    ``overrides`` are :meth:`~tempo_kit.model.TempoModel.from_pretrained`'s; ``load_weights=False``
    leaves the decoder on the meta device (FSDP ranks other than 0).
    """
    from tempo_kit.model import TempoModel

    meta = TempoModel.from_pretrained(path, load_weights=False, verify=True, **overrides)
    model = TempoModel(
        StoredCompressor(meta.config.compressor.get("k_max"), meta.saved_at),
        IdentityProjector(meta.decoder.hidden_size),  # never called: stored memory is marked projected
        meta.decoder,
        meta.allocator,
        meta.config,
    )
    model.saved_at = meta.saved_at
    if not load_weights:
        return model
    load_component(model, "decoder")
    return model


def with_frozen_parts(model):
    """``model`` whole again: a stored-features model gets its saved compressor and projector back
    (read from the folder it was loaded from); any other model is returned as it is."""
    if not isinstance(model.compressor, StoredCompressor):
        return model
    from tempo_kit.model import TempoModel

    whole = TempoModel.from_pretrained(model.saved_at, load_weights=False, verify=False)
    for part in ("compressor", "projector"):
        load_component(whole, part)
    out = TempoModel(whole.compressor, whole.projector, model.decoder, model.allocator, model.config)
    out.saved_at = model.saved_at
    return out
