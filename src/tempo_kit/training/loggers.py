"""Experiment trackers by name: ``trainer.loggers: [tensorboard, jsonl, wandb, ...]`` in a recipe.

Each name is one of Lightning's loggers (or the kit's own JSON-lines file), built with its files
in the run folder; an entry may be a mapping ``{name: wandb, project: tempo, offline: true}`` whose
other keys are that logger's own arguments. Several loggers run at once: every optimizer step's
metrics go to all of them.

| name | files in the run folder | Lightning class |
|---|---|---|
| ``tensorboard`` | ``tensorboard/`` | ``TensorBoardLogger`` |
| ``csv`` | ``csv/metrics.csv`` | ``CSVLogger`` |
| ``jsonl`` | ``metrics.jsonl`` | :class:`JsonlLogger` (the kit's) |
| ``wandb`` | ``wandb/`` (offline runs: ``wandb sync`` uploads them later) | ``WandbLogger`` |
| ``mlflow`` | ``mlflow.db`` + ``mlruns/`` (a local store unless ``tracking_uri`` says otherwise) | ``MLFlowLogger`` |
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only

from tempo_kit.atomic import append_line
from tempo_kit.errors import ConfigError, did_you_mean

#: The per-step metrics file of a run, relative to ``run.output_dir``.
METRICS_FILE = "metrics.jsonl"

#: MLflow's local store in the run folder (a SQLite file; artifacts under ``mlruns/``).
MLFLOW_DB = "mlflow.db"

#: What a recipe logs to when it does not say.
DEFAULT_LOGGERS: tuple[str, ...] = ("tensorboard", "jsonl")


class JsonlLogger(Logger):
    """Appends ``{"step": ..., **metrics}`` lines to ``metrics.jsonl``, so scripts read runs without a tracker.

    A Lightning logger like the others (``trainer.loggers: [jsonl]``): the module logs through
    ``self.log`` and never holds it. Each line is one append (:func:`~tempo_kit.atomic.append_line`),
    so a killed run leaves whole lines and a resumed run continues the same file.
    """

    def __init__(self, save_dir: str | Path, filename: str = METRICS_FILE) -> None:
        super().__init__()
        self._save_dir = Path(save_dir)
        self.path = self._save_dir / filename

    @property
    def name(self) -> str:
        return "jsonl"

    @property
    def version(self) -> str:
        return ""

    @property
    def save_dir(self) -> str:
        return str(self._save_dir)

    @property
    def log_dir(self) -> str:
        return str(self._save_dir)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        append_line(self.path, json.dumps({"step": step, **{k: float(v) for k, v in metrics.items()}}))

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """The resolved recipe is saved beside the metrics as ``recipe.yaml``; nothing to add here."""


def _tensorboard(out: Path, run_name: str, **kwargs: Any) -> Logger:
    from lightning.pytorch.loggers import TensorBoardLogger

    return TensorBoardLogger(**{"save_dir": str(out), "name": "tensorboard", "version": "", **kwargs})


def _csv(out: Path, run_name: str, **kwargs: Any) -> Logger:
    from lightning.pytorch.loggers import CSVLogger

    return CSVLogger(**{"save_dir": str(out), "name": "csv", "version": "", **kwargs})


def _jsonl(out: Path, run_name: str, **kwargs: Any) -> Logger:
    return JsonlLogger(**{"save_dir": out, **kwargs})


def _wandb(out: Path, run_name: str, **kwargs: Any) -> Logger:
    from lightning.pytorch.loggers import WandbLogger

    return WandbLogger(**{"save_dir": str(out), "name": run_name, "project": "tempo-kit", **kwargs})


def _mlflow(out: Path, run_name: str, **kwargs: Any) -> Logger:
    from lightning.pytorch.loggers import MLFlowLogger

    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    defaults = {  # a local SQLite store (MLflow 3 retired plain folders) and artifacts beside it
        "tracking_uri": f"sqlite:///{out / MLFLOW_DB}",
        "artifact_location": (out / "mlruns").as_uri(),
        "experiment_name": run_name,
    }
    return MLFlowLogger(**{**defaults, **kwargs})


def describe(logger: Logger) -> str:
    """Where a logger keeps its records, for the end-of-fit summary."""
    if isinstance(logger, JsonlLogger):
        return str(logger.path)
    if type(logger).__name__ == "MLFlowLogger":
        import mlflow

        return f"{mlflow.get_tracking_uri()} (experiment {logger.name}, run {logger.run_id}; `mlflow ui --backend-store-uri` it)"
    return str(getattr(logger, "log_dir", None) or logger.save_dir)


#: name → (builder, the distribution that provides the tracker, or None when always installed)
LOGGERS: dict[str, tuple[Callable[..., Logger], str | None]] = {
    "tensorboard": (_tensorboard, None),
    "csv": (_csv, None),
    "jsonl": (_jsonl, None),
    "wandb": (_wandb, "wandb"),
    "mlflow": (_mlflow, "mlflow"),
}


def logger_specs(value: Any, where: str = "trainer.loggers") -> list[dict[str, Any]]:
    """``[name | {name: ..., **kwargs}, ...]`` → ``[{"name": ..., **kwargs}]``, each name checked."""
    if value is None:
        return []
    if isinstance(value, (str, Mapping)):
        value = [value]
    if not isinstance(value, Sequence):
        raise ConfigError(f"{where} must be a list of logger names, e.g. [tensorboard, wandb]; got {value!r}")
    specs = []
    for item in value:
        spec = {"name": item} if isinstance(item, str) else dict(item) if isinstance(item, Mapping) else None
        if spec is None or "name" not in spec:
            raise ConfigError(f"{where}: each entry is a name or {{name: ..., <arguments>}}; got {item!r}")
        if spec["name"] not in LOGGERS:
            raise ConfigError(
                f"{where}: unknown logger {spec['name']!r}{did_you_mean(str(spec['name']), LOGGERS)}; "
                f"known: {', '.join(LOGGERS)}"
            )
        specs.append(spec)
    return specs


def check_installed(spec: Mapping[str, Any], where: str = "trainer.loggers") -> None:
    """A tracker that is not installed fails before the run starts, with the install command."""
    from importlib.util import find_spec

    package = LOGGERS[spec["name"]][1]
    if package is not None and find_spec(package) is None:
        raise ConfigError(
            f"{where}: logger {spec['name']!r} needs the {package!r} package: pip install {package} "
            f"(or pip install 'tempo-kit[trackers]'), or drop {spec['name']} from {where}"
        )


def build_loggers(value: Any, output_dir: str | Path, run_name: str) -> list[Logger]:
    """Lightning loggers for ``trainer.loggers``, their files under ``output_dir``."""
    out = Path(output_dir)
    loggers = []
    for spec in logger_specs(value):
        check_installed(spec)
        name = spec.pop("name")
        builder = LOGGERS[name][0]
        if name == "wandb":
            os.environ.setdefault("WANDB_SILENT", "true")  # its banner would bury the kit's own lines
        try:
            loggers.append(builder(out, run_name, **spec))
        except TypeError as error:
            raise ConfigError(f"trainer.loggers: {name} does not take these arguments {spec}: {error}") from None
    return loggers
