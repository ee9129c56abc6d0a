"""Prepared shards: the same samples as the files in the recipe's order, resumable prepare, and
one-line errors for incomplete, mixed, foreign or unreachable shard folders."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

from tempo_kit.data import TempoDataModule
from tempo_kit.data.prepare import prepare_file
from tempo_kit.data.shards import INDEX_FILE, ShardError
from tempo_kit.data.synthetic import make_needle_dataset
from tempo_kit.errors import ConfigError

GEOMETRY = {"max_frames": 8, "max_long_edge": 64, "preprocessing": "qwen3_vl"}
CONVERSATION = [{"from": "human", "value": "<image>\nWhat is it?"}, {"from": "gpt", "value": "A square."}]


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    """Five needle videos, an image, a text row, and three rows training skips (missing media, no
    answer turn, malformed)."""
    root = tmp_path_factory.mktemp("shards")
    train = make_needle_dataset(root, 5, split="train", duration=4.0, size=(48, 64), question_types=["mc"], seed=1)
    from PIL import Image

    Image.new("RGB", (40, 30), (200, 10, 10)).save(root / "square.png")
    extra = [
        {"id": "img", "image": "square.png", "conversations": CONVERSATION},
        {"id": "txt", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]},
        {"id": "gone", "video": "videos/missing.mp4", "conversations": CONVERSATION},
        {"id": "noanswer", "conversations": CONVERSATION[:1]},
        {"id": "bad", "conversations": "not a list"},
    ]
    with open(train, "a") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in extra)
    return train


def module(tokenizer, **data):
    return TempoDataModule(tokenizer=tokenizer, batch_size=2, seed=3, **{**GEOMETRY, **data})


def batches(dm, count=None):
    dm.setup("fit")
    out = []
    for number, batch in enumerate(dm.train_dataloader()):
        if count is not None and number == count:
            break
        out.append(batch)
    return out


def assert_same_batches(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.ids == y.ids
        assert torch.equal(x.input_ids, y.input_ids) and torch.equal(x.labels, y.labels)
        for s, t in zip(x.segments, y.segments):
            assert torch.equal(s.frames, t.frames) and torch.equal(s.frame_times, t.frame_times)
            assert torch.equal(s.times, t.times) and s.kind == t.kind
            assert (s.lengths is None) == (t.lengths is None) and (s.lengths is None or torch.equal(s.lengths, t.lengths))


@pytest.mark.parametrize("payload", ["bytes", "frames"])
def test_prepare_then_stream_gives_the_file_loaders_samples_in_its_order(rows, tiny_tokenizer, tmp_path, payload):
    files = module(tiny_tokenizer, train_files=rows, shard_payload=payload)
    index = prepare_file(rows, tmp_path / "p", sampling=files.sampling, payload=payload, shard_rows=3, progress=False)
    counts = index["counts"]
    assert (counts["rows"], counts["kept"], counts["skipped"], counts["shards"]) == (10, 7, 3, 4)
    assert counts["skipped_by_reason"] == {"MediaError": 1, "AnnotationError": 1, "malformed row": 1}
    shards = module(tiny_tokenizer, shards=[str(tmp_path / "p")], max_samples=12)
    # the file loader skips the same three rows at read time and serves the next row instead: compare
    # with the clean rows only, so both datasets hold the same seven rows
    clean = tmp_path / "clean.jsonl"
    kept = [json.loads(line) for line in rows.read_text().splitlines()][:7]
    clean.write_text("".join(json.dumps(row) + "\n" for row in kept))
    reference = module(tiny_tokenizer, train_files={"path": clean, "media_root": rows.parent}, max_samples=12)
    streamed, read = batches(shards), batches(reference)
    assert_same_batches(streamed, read)
    assert {i for b in streamed for i in b.ids} == {row["id"] for row in kept}
    with tarfile.open(tmp_path / "p" / f"{index['shards'][0]['name']}.tar") as tar:  # WebDataset layout
        names = tar.getnames()
    assert names[0] == "000000001.json" and names[1].startswith("000000001.")


def test_weights_mix_prepared_folders(rows, tiny_tokenizer, tmp_path):
    files = module(tiny_tokenizer, train_files=rows)
    prepare_file(rows, tmp_path / "a", sampling=files.sampling, shard_rows=4, progress=False)
    text = tmp_path / "text.jsonl"
    text.write_text(json.dumps({"id": "t", "conversations": CONVERSATION[:1] + [CONVERSATION[1]]}) + "\n")
    prepare_file(text, tmp_path / "b", sampling=files.sampling, progress=False)
    dm = module(tiny_tokenizer, shards=[{"path": str(tmp_path / "a"), "weight": 1}, {"path": str(tmp_path / "b"), "weight": 3}], max_samples=8)
    dm.setup("fit")
    assert dm.datasets["train"].counts == [2, 6]


def prepare_command(rows, out, *extra):
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "demo.yaml"
    return [
        sys.executable, "-m", "tempo_kit.cli", "prepare", "--recipe", str(recipe), "--out", str(out),
        "--shard-rows", "1", *extra, f"data.train_files={rows}", "data.val_files=null",
        *(f"data.{k}={v}" for k, v in GEOMETRY.items()),
    ]  # fmt: skip


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.slow
def test_prepare_killed_midway_then_rerun_gives_the_same_shards(rows, tmp_path, kill_once_written, tiny_checkpoints):
    straight, killed = tmp_path / "straight", tmp_path / "killed" / "train"
    index = prepare_file(rows, straight, shard_rows=1, progress=False)  # the bytes payload: geometry plays no part
    tokenizer = f"model.decoder.pretrained={tiny_checkpoints['llm']}"
    third = killed / f"{index['shards'][2]['name']}.json"
    kill_once_written(prepare_command(rows, killed.parent, tokenizer), third, 1, 300)
    finished = sorted(killed.glob("shard-*.json"))
    assert 3 <= len(finished) < 10 and not (killed / INDEX_FILE).exists()
    kept = {p.name: p.stat().st_mtime_ns for p in finished}
    again = subprocess.run(prepare_command(rows, killed.parent, "--workers", "2", tokenizer), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "7 of 10 rows in 10 shards" in again.stdout and "shards:\n    - {path: " in again.stdout
    ours, theirs = folder_bytes(killed), folder_bytes(straight)
    assert ours.keys() == theirs.keys() and all(ours[n] == theirs[n] for n in ours if n != INDEX_FILE)
    a, b = (json.loads(files[INDEX_FILE]) for files in (ours, theirs))  # no duplicates, no gaps, the same bytes
    assert (a["shards"], a["counts"], a["skips"]) == (b["shards"], b["counts"], b["skips"])
    assert all((killed / name).stat().st_mtime_ns == mtime for name, mtime in kept.items())  # kept, not redone


def test_bad_shard_folders_are_one_line_errors_before_training(rows, tiny_tokenizer, tmp_path):
    files = module(tiny_tokenizer, train_files=rows)
    index = prepare_file(rows, tmp_path / "p", sampling=files.sampling, shard_rows=4, progress=False)
    folder = tmp_path / "p"

    def refused(match, **data):
        with pytest.raises((ShardError, ConfigError), match=match) as error:
            module(tiny_tokenizer, **data)
        assert "\n" not in str(error.value)

    prepare_file(rows, tmp_path / "f", sampling=files.sampling, payload="frames", shard_rows=4, progress=False)
    refused("prepared with max_frames=8 but the recipe has data.max_frames=6", shards=str(tmp_path / "f"), max_frames=6)
    shutil.copytree(folder, tmp_path / "incomplete")
    (tmp_path / "incomplete" / INDEX_FILE).unlink()
    refused(r"holds 3 finished shards but no index.json: .* rerun tempo-kit prepare", shards=str(tmp_path / "incomplete"))
    other = tmp_path / "other"
    prepare_file(rows, other, sampling=files.sampling, shard_rows=5, progress=False)  # another run
    mixed = tmp_path / "mixed"
    shutil.copytree(folder, mixed)
    name = index["shards"][1]["name"]
    (mixed / f"{name}.tar").unlink()
    shutil.copy(next(other.glob("shard-00001-*.tar")), mixed)
    refused(rf"{name}.tar of .* is missing; the folder holds shards of another prepare run", shards=str(mixed))
    refused("cannot read http://127.0.0.1:9/p/index.json: .*check the address", shards="http://127.0.0.1:9/p", shard_cache=str(tmp_path / "c"))
    refused("data.shards and data.train_files are both set", shards=str(folder), train_files=rows)
    with pytest.raises(ShardError, match="holds shards of another prepare run"):
        prepare_file(rows, folder, sampling=files.sampling, shard_rows=5, progress=False)


def test_remote_shards_are_cached_once_and_read_like_local_ones(rows, tiny_tokenizer, tmp_path):
    files = module(tiny_tokenizer, train_files=rows)
    prepare_file(rows, tmp_path / "served" / "p", sampling=files.sampling, shard_rows=4, progress=False)
    server = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", str(tmp_path / "served")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        port = int(server.stdout.readline().split("port ")[1].split()[0])
        url = f"http://127.0.0.1:{port}/p"
        remote = module(tiny_tokenizer, shards=url, shard_cache=str(tmp_path / "cache"), max_samples=6)
        local = module(tiny_tokenizer, shards=str(tmp_path / "served" / "p"), max_samples=6)
        assert_same_batches(batches(remote), batches(local))
        # fetched when first read: the third shard holds only skipped rows and is never read
        assert len(list((tmp_path / "cache").rglob("shard-*.tar"))) == 2
    finally:
        server.terminate()
        server.wait()


def test_a_checkpoint_of_two_ranks_resumes_on_one_with_the_rest_of_the_epoch(rows, tiny_tokenizer, tmp_path):
    files = module(tiny_tokenizer, train_files=rows, shard_payload="frames")
    prepare_file(rows, tmp_path / "p", sampling=files.sampling, payload="frames", shard_rows=4, progress=False)

    def ids(state=None):
        dm = module(tiny_tokenizer, shards=str(tmp_path / "p"), shard_payload="frames", max_samples=12)
        if state is not None:
            dm.load_state_dict(state)
        return [i for batch in batches(dm) for i in batch.ids]

    straight = ids()
    # two ranks trained 2 batches of 2 each: the first 8 samples of the epoch's order are done
    resumed = ids({"train_epoch": 0, "train_batches": 2, "train_world_size": 2})
    assert len(straight) == 12 and resumed == straight[8:]
