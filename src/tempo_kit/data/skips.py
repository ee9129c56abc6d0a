"""The ``on_error`` policy for bad samples and the accounting of skipped ones.

``on_error="raise"`` stops at the first bad sample with a :class:`~tempo_kit.errors.TempoKitError`
naming the file and the reason. ``on_error="skip"`` logs each bad sample (path + reason), counts it,
and moves on; :meth:`SkipLog.summary` gives the totals at the end of a run. DataLoader workers are
separate processes, so a log can mirror its records to a JSON-lines file that every worker appends
to and the main process reads back.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tempo_kit.atomic import append_line

logger = logging.getLogger("tempo_kit.data")

OnError = Literal["skip", "raise"]
ON_ERROR_CHOICES = ("skip", "raise")


@dataclass(frozen=True)
class SkipRecord:
    """One skipped sample: where it came from, which file failed and why."""

    sample: str
    path: str | None
    reason: str


class SkipLog:
    """Collects skipped samples; optionally shared across processes through ``path`` (JSONL)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else None
        self.records: list[SkipRecord] = []
        self._warned: set[str] = set()

    def add(self, sample: str, path: str | None, reason: str) -> None:
        record = SkipRecord(sample, path, reason)
        self.records.append(record)
        if sample not in self._warned:  # a bad row met again (next epoch, a replacement) warns once
            self._warned.add(sample)
            logger.warning("skipping sample %s (%s): %s", sample, path or "no media", reason)
        if self.path is not None:
            append_line(self.path, json.dumps(record.__dict__))  # one O_APPEND write: safe between workers

    def all_records(self) -> list[SkipRecord]:
        """Records from every process when shared through a file, else this process's."""
        if self.path is None or not self.path.exists():
            return list(self.records)
        with open(self.path) as handle:
            return [SkipRecord(**json.loads(line)) for line in handle if line.strip()]

    def __len__(self) -> int:
        return len(self.all_records())

    def summary(self) -> str:
        """``N samples skipped`` (distinct rows) with the count per reason kind, for the end of a run."""
        records = self.all_records()
        if not records:
            return "no samples skipped"
        unique = {r.sample: r for r in records}  # a bad row met several times counts once
        kinds = Counter(r.reason.split(":")[0] for r in unique.values())
        detail = ", ".join(f"{count}× {kind}" for kind, count in kinds.most_common())
        return f"{len(unique)} samples skipped ({detail}); {len(records)} skip events"


def check_on_error(on_error: str) -> None:
    from tempo_kit.errors import check_choice

    check_choice(on_error, ON_ERROR_CHOICES, "on_error")
