"""``tempo-kit prepare``: a recipe's training files → shard folders to train from (``data.shards``).

Example::

    tempo-kit prepare --recipe recipes/stage2.yaml --out data/prepared --workers 8 data.shard_payload=frames

writes ``OUT/<file name>/`` for each of ``data.train_files`` (see :mod:`tempo_kit.data.prepare`) and
prints the ``data.shards`` block to put in the recipe (the files' weights kept). Rerun the same
command after a kill: finished shards are kept. With ``--features --model STAGE2_EXPORT`` each
row stores the frozen compressor + projector output instead (a stage-3 feature store,
``data.features``; :mod:`tempo_kit.data.features`)::

    tempo-kit prepare --recipe recipes/stage3.yaml --out data/stage3_features --features \
        --model outputs/stage2/final --feature-dtype bf16
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tempo_kit.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tempo_kit.data.shards import DEFAULT_SHARD_ROWS

    parser.add_argument("--recipe", required=True, help="recipe YAML file or shipped recipe name: its data.train_files and frame geometry are used")
    parser.add_argument("--out", required=True, help="folder for the prepared folders (one per annotation file)")
    parser.add_argument("--workers", type=int, default=1, help="processes writing shards (default 1)")
    parser.add_argument(
        "--shard-rows", type=int, default=DEFAULT_SHARD_ROWS, help=f"annotation rows per shard (default {DEFAULT_SHARD_ROWS})"
    )
    parser.add_argument(
        "--features", action="store_true",
        help="write a stage-3 feature store (the frozen compressor + projector output per row; data.features) instead",
    )  # fmt: skip
    parser.add_argument("--model", help="with --features: the stage-2 export to run (default: the recipe's run.init_from)")
    parser.add_argument(
        "--feature-dtype", default="fp32", choices=("fp32", "bf16"), help="with --features: stored dtype (default fp32)"
    )
    parser.add_argument("overrides", nargs="*", help="recipe overrides, key=value")


def folder_names(paths: list[str]) -> list[str]:
    """One folder name per annotation file: its stem, numbered when two files share one."""
    stems = [Path(p).stem for p in paths]
    return [stem if stems.count(stem) == 1 else f"{number:02d}-{stem}" for number, stem in enumerate(stems)]


def run(args: argparse.Namespace) -> int:
    from tempo_kit.data import TempoDataModule
    from tempo_kit.data.prepare import prepare_file
    from tempo_kit.recipes import load_recipe, to_dict
    from tempo_kit.training.commands import tokenizer_source

    recipe = to_dict(load_recipe(args.recipe, args.overrides, check_paths=False))
    data = {k: v for k, v in recipe["data"].items() if k not in ("shards", "shard_cache", "features")}
    features = None
    if args.features:  # checked before any work: the model folder, its identity, the dtype
        from tempo_kit.data.feature_prepare import feature_settings

        model = args.model or recipe["run"].get("init_from")
        if not model:
            raise ConfigError("prepare --features needs --model STAGE2_EXPORT (or run.init_from in the recipe)")
        features = feature_settings(model, args.feature_dtype)
    elif args.model:
        raise ConfigError("--model is read only with --features (a stage-3 feature store); add --features or drop --model")
    # the tokenizer is only named (it is loaded when training starts, never here)
    files = TempoDataModule(tokenizer=tokenizer_source(recipe), **data)
    if not files.train_entries:
        raise ConfigError(f"recipe {args.recipe!r}: data.train_files is empty: nothing to prepare")
    out = Path(args.out)
    lines = []
    for entry, name in zip(files.train_entries, folder_names([str(e["path"]) for e in files.train_entries])):
        index = prepare_file(
            entry["path"], out / name, media_root=entry["media_root"], sampling=files.sampling,
            payload=files.shard_payload, shard_rows=args.shard_rows, workers=args.workers, features=features,
        )  # fmt: skip
        counts = index["counts"]
        reasons = ", ".join(f"{n}× {kind}" for kind, n in counts["skipped_by_reason"].items()) or "none"
        print(
            f"{entry['path']} → {out / name}: {counts['kept']} of {counts['rows']} rows in {counts['shards']} shards "
            f"({counts['bytes'] / 2**20:.1f} MiB); skipped {counts['skipped']} ({reasons})"
        )
        weight = "" if entry["weight"] is None else f", weight: {entry['weight']}"
        lines.append(f"    - {{path: {out / name}{weight}}}")
    key = "features" if features else "shards"
    print(f"data:\n  train_files: null\n  {key}:\n" + "\n".join(lines))
    return 0
