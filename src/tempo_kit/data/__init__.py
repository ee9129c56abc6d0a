"""Annotation datasets, collation, the DataModule and synthetic needle videos.

Annotation rows (LLaVA style) → :class:`TempoDataset` items (:class:`Sample`) →
:class:`TempoCollator` → :class:`~tempo_kit.types.TempoBatch`; :class:`TempoDataModule` wires it
for Lightning. :mod:`tempo_kit.data.synthetic` writes needle-in-a-haystack videos.
"""

from tempo_kit.data.annotations import AnnotationError, Record, load_annotations, parse_row, read_rows
from tempo_kit.data.collate import TempoCollator
from tempo_kit.data.datamodule import TempoDataModule
from tempo_kit.data.dataset import Sample, TempoDataset
from tempo_kit.data.mixture import MixtureDataset, mixture_counts
from tempo_kit.data.skips import SkipLog, SkipRecord

__all__ = [
    "AnnotationError",
    "MixtureDataset",
    "Record",
    "Sample",
    "SkipLog",
    "SkipRecord",
    "TempoCollator",
    "TempoDataModule",
    "TempoDataset",
    "load_annotations",
    "mixture_counts",
    "parse_row",
    "read_rows",
]
