"""The Tempo model: components glued into one ``nn.Module``, and everything only the model needs.

| module | what lives there |
|---|---|
| :mod:`~tempo_kit.model.tempo_model` | :class:`TempoModel` (``forward`` and ``generate`` share one path) |
| :mod:`~tempo_kit.model.config` | :class:`TempoConfig`, the saved settings and their checks |
| :mod:`~tempo_kit.model.outputs` | what ``forward`` and ``generate`` return |
| :mod:`~tempo_kit.model.build` | components from registry specs |
| :mod:`~tempo_kit.model.compression` | the compressor over a batch, in chunks |
| :mod:`~tempo_kit.model.decoder_input` | a call's allocation settings, then select → assemble |
| :mod:`~tempo_kit.model.visual_selection` | allocation → per-segment visual tokens |
| :mod:`~tempo_kit.model.assembly` | the time-tagged decoder sequence and the context cap |
| :mod:`~tempo_kit.model.prompts` | the decoder's ChatML prompt and time tags |
| :mod:`~tempo_kit.model.inference_batch` | questions → a batch of generation prompts |
| :mod:`~tempo_kit.model.storage` | the kit format on disk: one folder per component |
| :mod:`~tempo_kit.model.initial_weights` | where each component's starting weights come from |
| :mod:`~tempo_kit.model.card` | the model card (README.md) every saved folder carries |
| :mod:`~tempo_kit.model.auto` | the whole model through transformers' ``AutoModel`` (registered on import) |
"""

from tempo_kit.model import auto as _auto  # noqa: F401  (registers the Auto classes)
from tempo_kit.model.config import TempoConfig
from tempo_kit.model.inference_batch import inference_batch
from tempo_kit.model.outputs import GenerationOutput, TempoOutput
from tempo_kit.model.tempo_model import COMPONENTS, TempoModel

__all__ = ["COMPONENTS", "GenerationOutput", "TempoConfig", "TempoModel", "TempoOutput", "inference_batch"]
