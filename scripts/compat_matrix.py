"""The compatibility matrix page: run the matrix test, then render its results as Markdown.

    python scripts/compat_matrix.py run      # runs tests/test_compat_matrix.py (slow parts too),
                                             # writes benchmarks/results/compat_matrix.json, renders
    python scripts/compat_matrix.py render   # docs/compatibility_matrix.md from that JSON

The page is never edited by hand: ``tests/test_compat_page.py`` checks it is this script's
rendering of the committed results.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "compat_matrix.json"
PAGE = ROOT / "docs" / "compatibility_matrix.md"

#: Column titles of the checks the test records.
TITLES = {
    "meta_build": "meta build",
    "train_full": "train (full)",
    "train_lora": "train (LoRA)",
    "peft_load": "peft adapter",
    "round_trip": "save/load bit-exact",
    "infer": "infer + allocation",
    "follow_up": "session follow-up",
    "fsdp2": "FSDP2 (2 procs)",
}

INTRO = """# Compatibility matrix

Which compressor (SVLM) and decoder (LLM) families go through the kit, as the test suite found
on tiny random checkpoints of each family (`tempo-kit make-tiny OUT --svlm FAMILY --llm FAMILY`).
Rows: every decoder family with the default compressor, and every compressor family with the
default decoder. A cell is `yes` when the check passed, `no` when it failed, `—` when it did not
run; a compressor without a prefix cache answers follow-ups by recompressing (`fallback`).

| check | what it does |
|---|---|
| meta build | the model is built without weights on the meta device; the decoder's blocks are the family's |
| train (full) | one AdamW step with every part trained: finite loss, the LM head moves |
| train (LoRA) | LoRA on the family's own projections (`target_modules: family`), two steps |
| peft adapter | the adapter, saved in peft's format, loads with `PeftModel.from_pretrained` on the base checkpoint and merges to the kit's weights |
| save/load bit-exact | `save_pretrained` → `TempoModel.from_pretrained`: every tensor and the loss equal |
| infer + allocation | `TempoPipeline.answer` on 24 frames answers with an allocation within the budget |
| session follow-up | a session's second question equals the same question asked fresh |
| FSDP2 (2 procs) | two gloo processes shard each decoder block as its own unit; one step equals one process's |

Regenerate with `python scripts/compat_matrix.py run` (a few minutes on a CPU): it runs
`tests/test_compat_matrix.py`, writes `benchmarks/results/compat_matrix.json` and renders this page.
"""


def render(results: dict) -> str:
    """The page for ``results`` (``{"checks": [...], "pairs": {pair: {check: outcome}}, "commit": ...}``)."""
    checks = results["checks"]
    lines = [INTRO, f"Results of commit `{results.get('commit', 'unknown')}`.", ""]
    lines.append("| compressor | decoder | " + " | ".join(TITLES.get(c, c) for c in checks) + " |")
    lines.append("|---|---|" + "---|" * len(checks))
    for pair in sorted(results["pairs"], key=_order):
        svlm, llm = pair.split("+")
        row = results["pairs"][pair]
        lines.append(f"| `{svlm}` | `{llm}` | " + " | ".join(row.get(c, "—") for c in checks) + " |")
    return "\n".join(lines) + "\n"


def _order(pair: str) -> tuple[int, str]:
    return (0 if pair == "qwen3_vl+qwen3" else 1, pair)


def run() -> int:
    """Run the matrix test into :data:`RESULTS` (with the commit), then render the page."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    env = {**os.environ, "TEMPO_KIT_COMPAT_MATRIX": str(RESULTS)}
    command = [sys.executable, "-m", "pytest", str(ROOT / "tests" / "test_compat_matrix.py"), "-q", "-p", "no:cacheprovider"]
    code = subprocess.run(command, env=env, cwd=ROOT).returncode
    results = json.loads(RESULTS.read_text())
    results["commit"] = commit or "unknown"
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    PAGE.write_text(render(results))
    print(f"wrote {RESULTS.relative_to(ROOT)} and {PAGE.relative_to(ROOT)} (pytest exit {code})")
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["run", "render"])
    args = parser.parse_args(argv)
    if args.action == "run":
        return run()
    PAGE.write_text(render(json.loads(RESULTS.read_text())))
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
