"""The lmms-eval model end to end: lmms-eval's own CLI, offline, on a local task of needle videos.

The task folder (``--include_path``) reads a local JSONL of synthetic needle questions; the model
is found through the ``lmms_eval.models`` entry point that ``pyproject.toml`` declares (written
into a throwaway ``dist-info`` so the test checks the declaration itself, whatever is installed).
lmms-eval's reported accuracy must equal a recount from the model's own answer journal, and a
killed run, rerun, must keep every answer it had finished and ask nothing twice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

pytest.importorskip("lmms_eval", reason="lmms-eval is not installed (pip install 'tempo-kit[eval]')")

from tempo_kit.evaluation.answers import extract_choice  # noqa: E402
from tempo_kit.evaluation.journal import read_journal  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NUM_VIDEOS = 5

TASK_YAML = """\
task: tempo_needle
dataset_path: json
dataset_kwargs:
  data_files:
    test: {rows}
test_split: test
output_type: generate_until
doc_to_visual: !function utils.doc_to_visual
doc_to_text: !function utils.doc_to_text
doc_to_target: answer
generation_kwargs:
  max_new_tokens: 1
  temperature: 0
  do_sample: false
process_results: !function utils.process_results
metric_list:
  - metric: accuracy
    aggregation: mean
    higher_is_better: true
lmms_eval_specific_kwargs:
  default:
    post_prompt: "Answer with the option's letter from the given choices directly.\\n"
"""

TASK_UTILS = '''\
from lmms_eval.tasks._task_utils.mcq_extract import extract_mcq_answer


def doc_to_visual(doc):
    return [doc["video_path"]]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    options = "\\n".join(f"{'ABCD'[i]}. {option}" for i, option in enumerate(doc["options"]))
    return f"{doc['question']}\\n{options}\\n{lmms_eval_specific_kwargs['post_prompt']}"


def process_results(doc, results):
    return {"accuracy": float(extract_mcq_answer(results[0], choices=list("ABCD")) == doc["answer"])}
'''


@pytest.fixture(scope="module")
def task_folder(tmp_path_factory):
    from tempo_kit.data.synthetic import make_needle_dataset

    root = tmp_path_factory.mktemp("lmms_task")
    annotations = make_needle_dataset(
        root / "data", num_videos=NUM_VIDEOS, split="test", duration=8.0, question_types=("mc",), seed=2
    )
    rows = [json.loads(line) for line in annotations.read_text().splitlines()]
    with open(root / "rows.jsonl", "w") as handle:
        for row in rows:
            row["video_path"] = str(annotations.parent / row["video"])
            handle.write(json.dumps(row) + "\n")
    task = root / "task"
    task.mkdir()
    (task / "tempo_needle.yaml").write_text(TASK_YAML.format(rows=root / "rows.jsonl"))
    (task / "utils.py").write_text(TASK_UTILS)
    return task, rows


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory):
    """A dist-info holding exactly the entry points pyproject.toml declares."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    points = project["project"]["entry-points"]["lmms_eval.models"]
    site = tmp_path_factory.mktemp("site")
    info = site / "tempo_kit_lmms_eval_entry-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tempo-kit-lmms-eval-entry\nVersion: 0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in points.items())
    (info / "entry_points.txt").write_text(f"[lmms_eval.models]\n{lines}")
    return site


def lmms_eval_command(model, task, out, answers, cache):
    return [
        sys.executable, "-m", "lmms_eval",
        "--model", "tempo_kit",
        "--model_args", f"pretrained={model},budget=32,answers={answers}",
        "--tasks", "tempo_needle",
        "--include_path", str(task),
        "--output_path", str(out),
        "--use_cache", str(cache),
        "--verbosity", "WARNING",
    ]  # fmt: skip


def environment(plugin_path):
    paths = [str(plugin_path), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(plugin_path / "hf_home"),
    }


@pytest.mark.slow
def test_lmms_eval_runs_the_kit_model_resumes_after_a_kill_and_matches_a_recount(
    letter_model, task_folder, plugin_path, tmp_path, kill_once_written
):
    task, rows = task_folder
    answers, cache, out = tmp_path / "answers", tmp_path / "cache", tmp_path / "out"
    command = lmms_eval_command(letter_model, task, out, answers, cache)
    env = environment(plugin_path)
    journal = answers / "rank0.jsonl"

    kill_once_written(command, journal, lines=2, seconds=300, env=env)
    finished = read_journal(journal)
    assert 2 <= len(finished) < NUM_VIDEOS

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    records = read_journal(journal)
    assert records[: len(finished)] == finished  # finished answers kept, not asked again
    assert len(records) == NUM_VIDEOS == len({r["doc_id"] for r in records})

    (results_file,) = out.rglob("*_results.json")
    reported = json.loads(results_file.read_text())["results"]["tempo_needle"]["accuracy,none"]
    by_doc = {r["doc_id"]: r["response"] for r in records}
    correct = [extract_choice(by_doc[i], 4) == row["answer"] for i, row in enumerate(rows)]
    assert reported == pytest.approx(sum(correct) / len(rows))
    assert 0 < reported < 1
    assert (cache / "cache.db").is_file()  # lmms-eval's own --use_cache store, merged at the end


def test_the_video_mme_task_imports_with_the_eval_extra():
    """lmms-eval's Video-MME task reads frames with OpenCV (cv2), which lmms-eval installed with
    --no-deps does not bring: the [eval] extra does."""
    import importlib

    pytest.importorskip("lmms_eval", reason="lmms-eval is installed by scripts/setup.sh")
    assert callable(importlib.import_module("lmms_eval.tasks.videomme.utils").videomme_doc_to_visual)
