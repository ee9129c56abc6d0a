"""A dataset over one stage-3 feature store (:mod:`tempo_kit.data.features`): no decoding at all.

The rows, their order, the answer check and the ``on_error`` policy are the shard dataset's
(:class:`~tempo_kit.data.shard_dataset.ShardDataset`), so the sampler, the mixture and resuming
work as with any prepared folder; a sample's segments are its :class:`StoredFeatures`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tempo_kit.data.annotations import Record
from tempo_kit.data.features import FeatureStoreError, check_store, decode_features, empty_features
from tempo_kit.data.shard_dataset import ShardDataset
from tempo_kit.data.shards import read_index
from tempo_kit.video.reading import Sampling


class FeatureDataset(ShardDataset):
    """The rows of the feature store ``location``, checked against ``model`` (the run's
    ``run.init_from``) and ``geometry`` (:func:`~tempo_kit.data.features.store_geometry`) first.

    Raises:
        FeatureStoreError: another model's store, another geometry, or not a feature store.
    """

    def __init__(
        self,
        location: str,
        *,
        sampling: Sampling,
        model: str | Path | None,
        geometry: Mapping[str, Any],
        cache: str | Path | None = None,
        **kwargs: Any,
    ):
        index = read_index(location, cache)
        if model is None:
            raise FeatureStoreError(
                f"data.features={location}: the store is only valid for the model it was made with; set "
                "run.init_from to that stage-2 export"
            )
        check_store(index, model, geometry, location)
        super().__init__(location, sampling=sampling, cache=cache, **kwargs)
        self.shape = index["features"].get("shape") or [0, 0]

    def segments_of(self, record: Record) -> tuple[Any, None]:
        """The row's stored features (the frozen parts' outputs); no labels: stage 3 has no router loss."""
        if record.kind == "text":
            return empty_features(*self.shape, source=record.where), None
        data, entry = self._payload(record)
        return decode_features(data, record.kind, f"{self.location}:{entry['member']}"), None
