"""``tempo-kit prepare``: a recipe's training files → shard folders to train from (``data.shards``).

Example::

    tempo-kit prepare --recipe recipes/stage2.yaml --out data/prepared --workers 8 data.shard_payload=frames

writes ``OUT/<file name>/`` for each of ``data.train_files`` (see :mod:`tempo_kit.data.prepare`) and
prints the ``data.shards`` block to put in the recipe (the files' weights kept). Rerun the same
command after a kill: finished shards are kept.
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
    data = {k: v for k, v in recipe["data"].items() if k not in ("shards", "shard_cache")}
    # the tokenizer is only named (it is loaded when training starts, never here)
    files = TempoDataModule(tokenizer=tokenizer_source(recipe), **data)
    if not files.train_entries:
        raise ConfigError(f"recipe {args.recipe!r}: data.train_files is empty: nothing to prepare")
    out = Path(args.out)
    lines = []
    for entry, name in zip(files.train_entries, folder_names([str(e["path"]) for e in files.train_entries])):
        index = prepare_file(
            entry["path"], out / name, media_root=entry["media_root"], sampling=files.sampling,
            payload=files.shard_payload, shard_rows=args.shard_rows, workers=args.workers,
        )  # fmt: skip
        counts = index["counts"]
        reasons = ", ".join(f"{n}× {kind}" for kind, n in counts["skipped_by_reason"].items()) or "none"
        print(
            f"{entry['path']} → {out / name}: {counts['kept']} of {counts['rows']} rows in {counts['shards']} shards "
            f"({counts['bytes'] / 2**20:.1f} MiB); skipped {counts['skipped']} ({reasons})"
        )
        weight = "" if entry["weight"] is None else f", weight: {entry['weight']}"
        lines.append(f"    - {{path: {out / name}{weight}}}")
    print("data:\n  train_files: null\n  shards:\n" + "\n".join(lines))
    return 0
