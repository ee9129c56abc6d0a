"""Where a run keeps its pieces, relative to ``run.output_dir`` (shared by the verbs and the trainer)."""

RECIPE_FILE = "recipe.yaml"
SKIPS_FILE = "skips.jsonl"
CHECKPOINT_DIR = "checkpoints"
FINAL_DIR = "final"
LAST_CHECKPOINT = "last.ckpt"
