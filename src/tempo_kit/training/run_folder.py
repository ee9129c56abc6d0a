"""Where a run keeps its pieces, relative to ``run.output_dir`` (shared by the verbs and the trainer)."""

RECIPE_FILE = "recipe.yaml"
SKIPS_FILE = "skips.jsonl"
CHECKPOINT_DIR = "checkpoints"
FINAL_DIR = "final"
LAST_CHECKPOINT = "last.ckpt"
#: ``{logger name: run id}`` of the trackers that have one (see ``tempo_kit.training.loggers``).
TRACKER_RUNS = "tracker_runs.json"
#: What the loggers keep in a run folder (removed by ``fit --overwrite`` with the rest of the run).
LOGGER_FILES = ("csv", "wandb", "mlflow.db", "mlruns", TRACKER_RUNS)
