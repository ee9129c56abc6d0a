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

A run folder holds one run of every tracker, however often it is resumed (a pre-emption must not
split a run's curves): :class:`TrackerRuns` records each tracker's run id in
:data:`RUNS_FILE` when training starts, and :func:`build_loggers` hands it back, so ``fit --resume``
(and ``validate``/``test`` into the run folder) continue the same W&B run (``id``) and MLflow run
(``run_id``); ``csv`` appends to its ``metrics.csv`` (:class:`ContinuingCSVLogger`) where Lightning's
deletes it. ``tensorboard`` and ``jsonl`` append by nature. ``fit --overwrite`` removes the record
with the rest of the run (:data:`LOGGER_FILES`). A run killed after logging steps past its last
checkpoint logs them again when resumed: :class:`RewindLogs` first cuts the CSV and JSON-lines files
back to the resumed step. MLflow cannot change a logged parameter: a value changed on resume is
logged under :data:`RESUMED_PARAM`.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback
from lightning.pytorch.loggers import CSVLogger, Logger, MLFlowLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only

from tempo_kit.atomic import append_line, write_json, write_text
from tempo_kit.errors import ConfigError, did_you_mean
from tempo_kit.training.run_folder import TRACKER_RUNS

#: The per-step metrics file of a run, relative to ``run.output_dir``.
METRICS_FILE = "metrics.jsonl"

#: MLflow's local store in the run folder (a SQLite file; artifacts under ``mlruns/``).
MLFLOW_DB = "mlflow.db"

#: ``{logger name: run id}`` of the trackers that have one, in the run folder.
RUNS_FILE = TRACKER_RUNS

#: What a recipe logs to when it does not say.
DEFAULT_LOGGERS: tuple[str, ...] = ("tensorboard", "jsonl")


class ContinuingWriter(ExperimentWriter):
    """Lightning's CSV writer, taking up an existing ``metrics.csv`` (its header) instead of deleting it."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as handle:
                self.metrics_keys = list(csv.DictReader(handle).fieldnames or [])


class ContinuingCSVLogger(CSVLogger):
    """Lightning's ``CSVLogger`` that appends to the run folder's ``metrics.csv``: a resumed run
    keeps the rows written before it stopped (Lightning's deletes them)."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = ContinuingWriter(log_dir=self.log_dir)
        return self._experiment


#: MLflow parameters cannot change: a value changed on the ``n``-th resume that changed any is
#: logged as ``resume<n>/<key>`` (the first value stays under ``<key>``).
RESUMED_PARAM = "resume{number}/{key}"


class ContinuingMLFlowLogger(MLFlowLogger):
    """Lightning's ``MLFlowLogger`` that, continuing a run (``run_id`` given), logs each parameter
    the run does not hold yet under its own key, and each one whose value changed (a resumed run
    that raised ``trainer.max_steps``) under :data:`RESUMED_PARAM`: MLflow refuses to change a
    logged value, and the first values stay the run's record beside the later ones."""

    def log_hyperparams(self, params: Any) -> None:
        if self._continuing:
            from lightning.fabric.utilities.logger import _convert_params, _flatten_dict

            logged = self.experiment.get_run(self.run_id).data.params
            params = {k: v for k, v in _flatten_dict(_convert_params(params)).items()}
            params = changed_params(params, logged)
            if not params:
                return
        super().log_hyperparams(params)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._continuing = kwargs.get("run_id") is not None


def changed_params(params: Mapping[str, Any], logged: Mapping[str, str]) -> dict[str, Any]:
    """What a continued MLflow run must log of ``params`` given the ``logged`` ones: new keys as
    they are, changed values under :data:`RESUMED_PARAM` of the next resume number (MLflow stores
    every value as text, so ``4`` and ``"4"`` are the same value)."""
    number = 1 + max((int(k.split("/", 1)[0][6:]) for k in logged if _is_resumed_key(k)), default=0)
    latest: dict[str, str] = {}  # each key's value as last logged, on whichever resume
    for key, value in logged.items():
        if not _is_resumed_key(key):
            latest.setdefault(key, value)
    for key in sorted((k for k in logged if _is_resumed_key(k)), key=lambda k: int(k.split("/", 1)[0][6:])):
        latest[key.split("/", 1)[1]] = logged[key]
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key not in latest:
            out[key] = value
        elif str(value)[:6000] != latest[key]:  # MLflow keeps at most 6000 characters of a value
            out[RESUMED_PARAM.format(number=number, key=key)] = value
    return out


def _is_resumed_key(key: str) -> bool:
    head = key.split("/", 1)[0]
    return "/" in key and head.startswith("resume") and head[6:].isdigit()


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


def _tensorboard(out: Path, run_name: str, run_id: str | None = None, **kwargs: Any) -> Logger:
    from lightning.pytorch.loggers import TensorBoardLogger

    return TensorBoardLogger(**{"save_dir": str(out), "name": "tensorboard", "version": "", **kwargs})


def _csv(out: Path, run_name: str, run_id: str | None = None, **kwargs: Any) -> Logger:
    return ContinuingCSVLogger(**{"save_dir": str(out), "name": "csv", "version": "", **kwargs})


def _jsonl(out: Path, run_name: str, run_id: str | None = None, **kwargs: Any) -> Logger:
    return JsonlLogger(**{"save_dir": out, **kwargs})


def _wandb(out: Path, run_name: str, run_id: str | None = None, **kwargs: Any) -> Logger:
    from lightning.pytorch.loggers import WandbLogger

    defaults = {"save_dir": str(out), "name": run_name, "project": "tempo-kit"}
    if run_id is not None:
        defaults["id"] = run_id  # Lightning passes resume="allow": the same run continues
    return WandbLogger(**{**defaults, **kwargs})


def _mlflow(out: Path, run_name: str, run_id: str | None = None, **kwargs: Any) -> Logger:
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    defaults = {  # a local SQLite store (MLflow 3 retired plain folders) and artifacts beside it
        "tracking_uri": f"sqlite:///{out / MLFLOW_DB}",
        "artifact_location": (out / "mlruns").as_uri(),
        "experiment_name": run_name,
        "run_id": run_id,
    }
    return ContinuingMLFlowLogger(**{**defaults, **kwargs})


def read_runs(out: Path) -> dict[str, str]:
    """The run ids :class:`TrackerRuns` recorded in ``out`` (none for a new run folder)."""
    path = out / RUNS_FILE
    if not path.is_file():
        return {}
    try:
        runs = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        runs = error
    if not isinstance(runs, dict) or not all(isinstance(v, str) for v in runs.values()):
        raise ConfigError(
            f"{path} is damaged ({runs}); it names the tracker runs this folder continues: restore it, "
            "or delete it to start new W&B/MLflow runs"
        )
    return runs


def _run_id(logger: Logger) -> tuple[str, str] | None:
    if type(logger).__name__ == "WandbLogger":  # its class is imported only with wandb
        return "wandb", str(logger.experiment.id)
    if isinstance(logger, MLFlowLogger):
        return "mlflow", str(logger.run_id)
    return None


def rows_up_to(path: Path, step: int) -> None:
    """Drop the rows of a CSV or JSON-lines metrics file logged past ``step`` (atomic rewrite);
    rows without a step stay. A run killed after its last checkpoint logged those steps, and
    the resumed run logs them again."""
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    if path.suffix == ".csv":
        header = next(csv.reader(lines[:1]), [])
        column = header.index("step") if "step" in header else None
        steps = [None] + [_number(row[column]) if column is not None and column < len(row) else None
                          for row in csv.reader(lines[1:])]  # fmt: skip
        if len(steps) != len(lines):  # a quoted value spans lines: leave the file as it is
            return
    else:
        steps = [_number(_json_step(line)) for line in lines]
    kept = [line for line, at in zip(lines, steps) if at is None or at <= step]
    if len(kept) != len(lines):
        write_text(path, "".join(kept))


def _json_step(line: str) -> Any:
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return None
    return row.get("step") if isinstance(row, dict) else None


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class RewindLogs(Callback):
    """On a resumed fit, the CSV and JSON-lines files keep only the rows up to the resumed step
    (:func:`rows_up_to`), so each step appears once however late the run was killed."""

    def on_train_start(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero or trainer.global_step == 0:  # a fresh run: nothing logged yet
            return
        for logger in trainer.loggers:
            if isinstance(logger, ContinuingCSVLogger):
                logger.save()  # what the writer holds goes to the file first, then the file is cut
                rows_up_to(Path(logger.experiment.metrics_file_path), trainer.global_step)
            elif isinstance(logger, JsonlLogger):
                rows_up_to(logger.path, trainer.global_step)


class TrackerRuns(Callback):
    """Records each tracker's run id in :data:`RUNS_FILE` once training starts (rank 0), for
    :func:`build_loggers` to continue the same runs."""

    def __init__(self, output_dir: str | Path) -> None:
        self.output_dir = Path(output_dir)

    def setup(self, trainer, pl_module, stage: str) -> None:
        if not trainer.is_global_zero:
            return
        runs = read_runs(self.output_dir)
        found = dict(filter(None, (_run_id(logger) for logger in trainer.loggers)))
        if found and {**runs, **found} != runs:
            write_json(self.output_dir / RUNS_FILE, {**runs, **found})


def logger_name(logger: Logger) -> str:
    """The name a recipe gives ``logger`` (``csv``, ``wandb``, ...), for the end-of-fit summary."""
    for kind, name in ((ContinuingCSVLogger, "csv"), (MLFlowLogger, "mlflow")):
        if isinstance(logger, kind):
            return name
    return type(logger).__name__.removesuffix("Logger").lower()


def describe(logger: Logger) -> str:
    """Where a logger keeps its records, for the end-of-fit summary."""
    if isinstance(logger, JsonlLogger):
        return str(logger.path)
    if isinstance(logger, MLFlowLogger):
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
    """Lightning loggers for ``trainer.loggers``, their files under ``output_dir``, continuing the
    tracker runs recorded there (module docstring)."""
    out = Path(output_dir)
    runs = read_runs(out)
    loggers = []
    for spec in logger_specs(value):
        check_installed(spec)
        name = spec.pop("name")
        builder = LOGGERS[name][0]
        if name == "wandb":
            os.environ.setdefault("WANDB_SILENT", "true")  # its banner would bury the kit's own lines
        try:
            loggers.append(builder(out, run_name, runs.get(name), **spec))
        except TypeError as error:
            raise ConfigError(f"trainer.loggers: {name} does not take these arguments {spec}: {error}") from None
    return loggers
