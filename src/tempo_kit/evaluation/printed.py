"""What ``tempo-kit eval`` prints besides its results, and the ``summary.json`` it reads back."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def earlier_settings(summary_path: Path) -> dict[str, Any]:
    """The ``settings`` of an existing ``summary.json``. One that cannot be read (cut short, edited)
    is replaced, with a warning: each setting's answers stay in its ``<setting>.jsonl``, and
    running that setting again summarises it without asking anything again."""
    try:
        settings = json.loads(summary_path.read_text(encoding="utf-8")).get("settings", {})
        if isinstance(settings, dict):
            return settings
        reason = "its 'settings' is not a mapping"
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as error:
        reason = f"{type(error).__name__}: {error}"
    print(
        f"warning: {summary_path} cannot be read ({reason}); it is written anew with this run's settings. "
        "Earlier settings keep their answers in <setting>.jsonl: run them again to summarise them",
        file=sys.stderr,
    )
    return {}


def report_skipped(benchmark, stream) -> None:
    """One ``skipped <file:line>: <why>`` line per row that is not a usable question, whether the
    questions are asked or only printed (``--print-prompts``)."""
    for skip in benchmark.skipped:
        print(f"skipped {skip}", file=stream)


def print_prompts(benchmark, preset) -> None:
    for item in benchmark.items:
        record = {
            "id": item.id,
            "prompt": preset.build(item),
            "options": item.options,
            "answer": item.answer,
            "max_new_tokens": preset.max_new_tokens,
        }
        print(json.dumps(record, ensure_ascii=False))
