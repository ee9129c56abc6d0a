"""``fit --multirun key=a,b other=x,y``: one run per combination, Hydra's multirun without Hydra.

An override whose value has top-level commas (outside ``[...]``, ``{...}`` and quotes, so a list
value such as ``data.train_files=[a.jsonl,b.jsonl]`` stays one value) is swept; the runs go
one after the other, each into ``<run.output_dir>/<n>`` (n from 0, in the order of the
combinations), and the list of runs with their overrides is written to
``<run.output_dir>/multirun.yaml`` first, so a stopped sweep says what it was doing.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable

from tempo_kit.errors import ConfigError

#: File in the sweep's folder listing each run's number and overrides.
MULTIRUN_FILE = "multirun.yaml"


def split_values(value: str) -> list[str]:
    """``"a,b"`` → ``["a", "b"]``; commas inside brackets, braces or quotes do not split."""
    parts, depth, quote, current = [], 0, "", ""
    for char in value:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += char
    return [*parts, current]


def sweep(overrides: list[str]) -> list[list[str]]:
    """Every combination of the swept overrides, the others repeated in each."""
    choices = []
    for override in overrides:
        key, sep, value = override.partition("=")
        values = split_values(value) if sep else [value]
        if sep and any(not v.strip() for v in values):
            raise ConfigError(f"--multirun: {override!r} has an empty value; write key=a,b with no empty item")
        choices.append([f"{key}={v}" for v in values] if sep else [override])
    return [list(combination) for combination in itertools.product(*choices)]


def run_multirun(args: argparse.Namespace, run: Callable[[argparse.Namespace], int]) -> int:
    """Run ``run`` once per combination; ``--print`` prints each resolved recipe instead."""
    from tempo_kit.atomic import write_text
    from tempo_kit.recipes import load_recipe

    if getattr(args, "resume", None):
        raise ConfigError("--multirun starts fresh runs; resume one run at a time with --resume (no --multirun)")
    jobs = sweep(list(args.overrides))
    base = load_recipe(args.recipe, jobs[0], check_paths=False).run.output_dir
    listing = "".join(f"- run: {n}\n  output_dir: {base}/{n}\n  overrides: {job}\n" for n, job in enumerate(jobs))
    if not args.print_recipe:
        from pathlib import Path

        Path(base).mkdir(parents=True, exist_ok=True)
        write_text(Path(base) / MULTIRUN_FILE, listing)
    for n, job in enumerate(jobs):
        print(f"# multirun {n + 1}/{len(jobs)}: {' '.join(job)}", flush=True)
        one = argparse.Namespace(**{**vars(args), "multirun": False, "overrides": [*job, f"run.output_dir={base}/{n}"]})
        code = run(one)
        if code:
            return code
    return 0
