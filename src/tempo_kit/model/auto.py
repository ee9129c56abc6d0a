"""The whole Tempo model through transformers' Auto classes.

Every saved model folder holds a ``config.json`` of ``model_type`` :data:`MODEL_TYPE` beside
``tempo_config.json``. Importing :mod:`tempo_kit.model` registers :class:`TempoKitConfig` and
:class:`TempoKitModel` with ``AutoConfig`` / ``AutoModel``, so ``AutoModel.from_pretrained(folder)``
gives the model; without that import, ``trust_remote_code=True`` takes the same classes through
the folder's :data:`REMOTE_CODE_FILE` (two lines importing them from the installed kit: no code
travels with the weights). The model is the kit's :class:`~tempo_kit.model.TempoModel` inside a
``PreTrainedModel`` shell; its weights are read by the kit's own loader (one folder per part), not
by ``PreTrainedModel``'s, which expects one flat state dict.

transformers (5.x) has no ``video-text-to-text`` pipeline task to plug into (its
``image-text-to-text`` pipeline takes images and a processor, not a video file and a budget), so
the short call is the kit's: ``TempoPipeline.from_pretrained(folder).answer(video, question)``,
which :meth:`TempoKitModel.answer` also offers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel

#: ``model_type`` of a saved Tempo model's ``config.json``.
MODEL_TYPE = "tempo_kit"
#: The file the ``trust_remote_code`` route imports the classes from.
REMOTE_CODE_FILE = "tempo_kit_auto.py"
REMOTE_CODE = (
    '"""Loads the installed tempo-kit\'s classes (pip install tempo-kit); no model code is shipped here."""\n\n'
    "from tempo_kit.model.auto import TempoKitConfig, TempoKitModel  # noqa: F401\n"
)


class TempoKitConfig(PretrainedConfig):
    """The Auto-class config of a saved Tempo model; the model's settings stay in ``tempo_config.json``."""

    model_type = MODEL_TYPE


class TempoKitModel(PreTrainedModel):
    """A saved Tempo model as a transformers model: ``.tempo`` is the :class:`TempoModel`."""

    config_class = TempoKitConfig
    base_model_prefix = "tempo"

    def __init__(self, config: TempoKitConfig, tempo: Any = None) -> None:
        super().__init__(config)
        self.tempo = tempo

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, *args: Any, **kwargs: Any) -> TempoKitModel:
        """Load with the kit's loader (a local folder or hub id; ``revision=`` as for the hub)."""
        from tempo_kit.hub import model_folder
        from tempo_kit.model.tempo_model import TempoModel

        folder = model_folder(pretrained_model_name_or_path, revision=kwargs.get("revision"))
        config = kwargs.get("config")
        if not isinstance(config, TempoKitConfig):
            config = TempoKitConfig.from_pretrained(str(folder))
        return cls(config, TempoModel.from_pretrained(folder)).eval()

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.tempo(*args, **kwargs)

    def answer(self, video: Any, query: str, **options: Any) -> Any:
        """``TempoPipeline.answer`` on this model: an ``InferenceResult`` (``.answer`` is the text)."""
        from tempo_kit.inference.api import TempoPipeline

        return TempoPipeline(self.tempo).answer(video, query, **options)


def auto_files() -> dict[str, str]:
    """``config.json`` and the remote-code file, written into every saved model folder."""
    import json

    config = {
        "model_type": MODEL_TYPE,
        "architectures": [TempoKitModel.__name__],
        "auto_map": {
            "AutoConfig": f"{REMOTE_CODE_FILE[:-3]}.{TempoKitConfig.__name__}",
            "AutoModel": f"{REMOTE_CODE_FILE[:-3]}.{TempoKitModel.__name__}",
        },
    }
    return {"config.json": json.dumps(config, indent=2) + "\n", REMOTE_CODE_FILE: REMOTE_CODE}


AutoConfig.register(MODEL_TYPE, TempoKitConfig, exist_ok=True)
AutoModel.register(TempoKitConfig, TempoKitModel, exist_ok=True)
