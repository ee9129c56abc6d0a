"""Annotation datasets, collation, the DataModule and synthetic needle videos.

Annotation rows (LLaVA style) → :class:`TempoDataset` items (:class:`Sample`) →
:class:`TempoCollator` → :class:`~tempo_kit.types.TempoBatch`; :class:`TempoDataModule` wires it
for Lightning. :mod:`tempo_kit.data.synthetic` writes needle-in-a-haystack videos.
"""

from tempo_kit.lazy import lazy_exports

#: name → the module that defines it, imported on first use
_EXPORTS = {
    "AnnotationError": "tempo_kit.data.rows",
    "MixtureDataset": "tempo_kit.data.mixture",
    "Record": "tempo_kit.data.annotations",
    "Sample": "tempo_kit.data.dataset",
    "SkipLog": "tempo_kit.data.skips",
    "SkipRecord": "tempo_kit.data.skips",
    "TempoCollator": "tempo_kit.data.collate",
    "TempoDataModule": "tempo_kit.data.datamodule",
    "TempoDataset": "tempo_kit.data.dataset",
    "load_annotations": "tempo_kit.data.annotations",
    "mixture_counts": "tempo_kit.data.mixture",
    "parse_row": "tempo_kit.data.annotations",
    "read_rows": "tempo_kit.data.rows",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
