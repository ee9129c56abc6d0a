"""Progress for runs nobody watches live: one printed line every N optimizer steps, and a closing summary.

A progress bar redraws one terminal line; written to a file or a SLURM log it shows up once, at
the end. So when stdout is not a terminal (or the bar is switched off) the kit turns the bar off
and prints a plain line per logging interval instead::

    step 16/48 | loss 2.3104 | lr 2.91e-03 | 11.8 samples/s | elapsed 0:00:41 | ETA 0:01:22

At the end of ``fit``, :func:`run_summary` says where the exported model, the checkpoints and
each logger's files are.
"""

from __future__ import annotations

import datetime
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO


def stdout_is_terminal(stream: TextIO | None = None) -> bool:
    """Whether the output stream is an interactive terminal (a bar can redraw in place)."""
    stream = stream or sys.stdout
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def use_progress_bar(enabled: bool, stream: TextIO | None = None) -> bool:
    """Lightning's bar only where it can redraw: enabled in the recipe and stdout a terminal."""
    return bool(enabled) and stdout_is_terminal(stream)


def clock(seconds: float) -> str:
    """``H:MM:SS`` for a duration in seconds (``--:--:--`` when unknown)."""
    if seconds != seconds or seconds < 0 or seconds == float("inf"):  # NaN, negative, unbounded
        return "--:--:--"
    return str(datetime.timedelta(seconds=int(round(seconds))))


def progress_line(
    step: int, total: int | None, metrics: Mapping[str, float], elapsed: float, lr_key: str | None = None
) -> str:
    """One line: step (of total), loss, a learning rate, samples/s, elapsed time and ETA.

    ETA assumes the remaining steps take as long as the mean step so far.
    """
    known_total = total is not None and 0 < total < float("inf")
    parts = [f"step {step}/{total}" if known_total else f"step {step}"]
    if "train/loss" in metrics:
        parts.append(f"loss {metrics['train/loss']:.4f}")
    lr_keys = [lr_key] if lr_key in metrics else sorted(k for k in metrics if k.startswith("lr/"))
    if lr_keys:
        parts.append(f"lr {metrics[lr_keys[-1]]:.2e}")
    if "train/samples_per_s" in metrics:
        parts.append(f"{metrics['train/samples_per_s']:.1f} samples/s")
    parts.append(f"elapsed {clock(elapsed)}")
    if known_total and step > 0:
        parts.append(f"ETA {clock(elapsed / step * (total - step))}")
    return " | ".join(parts)


class ProgressLines:
    """Prints :func:`progress_line` every ``every`` optimizer steps (and on the first and last)."""

    def __init__(self, every: int, stream: TextIO | None = None) -> None:
        self.every = max(1, int(every))
        self.stream = stream
        self.start: float | None = None

    def started(self) -> None:
        self.start = time.perf_counter()

    def step(self, step: int, total: int | None, metrics: Mapping[str, float]) -> None:
        if step % self.every and step != 1 and step != total:
            return
        elapsed = time.perf_counter() - (self.start if self.start is not None else time.perf_counter())
        print(progress_line(step, total, metrics, elapsed), file=self.stream or sys.stdout, flush=True)


def run_summary(output_dir: Path, final: Path | None, checkpoints: Path | None, logs: Sequence[tuple[str, str]]) -> str:
    """The lines ``fit`` ends with: where the model, the checkpoints and each logger's files are."""
    lines = [f"run folder: {output_dir}"]
    if final is not None:
        lines.append(f"  final model (run.init_from of the next stage, tempo-kit infer --model): {final}")
    if checkpoints is not None and checkpoints.is_dir():
        lines.append(f"  checkpoints (tempo-kit fit --resume): {checkpoints}")
    for name, where in logs:
        lines.append(f"  {name} logs: {where}")
    return "\n".join(lines)
