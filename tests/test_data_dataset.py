"""TempoDataset: video / image / text samples, and the on_error policy for every bad-input kind."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image
from torch.utils.data import DataLoader

from tempo_kit.data import SkipLog, TempoDataset, load_annotations
from tempo_kit.data.synthetic import make_needle_dataset, write_counter_video
from tempo_kit.errors import MediaError, TempoKitError
from tempo_kit.video.reading import Sampling

Q = [{"from": "human", "value": "<video>\nWhat?"}, {"from": "gpt", "value": "That."}]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    make_needle_dataset(root, 1, duration=10.0, seed=0, question_types=["mc"])
    Image.fromarray(np.full((40, 60, 3), 90, np.uint8)).save(root / "img.png")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (root / "garbage.mp4").write_bytes(os.urandom(3000))
    data = bytearray(write_counter_video(root / "c.mp4", 60, 25, (64, 64), options={"g": "10"}).read_bytes())
    (root / "truncated.mp4").write_bytes(bytes(data[: len(data) // 2]))
    return root


def write_rows(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


GOOD_VIDEO = {"id": "v", "video": "videos/train_00000.mp4", "conversations": Q}
BAD_ROWS = {
    "missing video": ({"id": "m", "video": "videos/missing.mp4", "conversations": Q}, "not found"),
    "unreadable video": ({"id": "g", "video": "garbage.mp4", "conversations": Q}, "cannot open video"),
    "truncated video": ({"id": "t", "video": "truncated.mp4", "conversations": Q}, "cannot open video"),
    "image fails": ({"id": "b", "image": "broken.png", "conversations": Q}, "cannot read image"),
    "missing image": ({"id": "n", "image": "nope.png", "conversations": Q}, "not found"),
    "no answer": (
        {"id": "q", "video": "videos/train_00000.mp4", "conversations": Q[:1]},
        "end with a gpt turn",
    ),
}


def test_video_image_text_samples(root):
    rows = [GOOD_VIDEO, {"id": "i", "image": "img.png", "conversations": Q}, {"id": "t", "conversations": Q}]
    dataset = TempoDataset(
        load_annotations(write_rows(root / "ok.jsonl", rows)), root, sampling=Sampling.training(), on_error="raise"
    )
    video, image, text = dataset[0], dataset[1], dataset[2]
    # 128×96 frames: the released chain upscales them to 384×384 (compatibility §1 worked example)
    assert video.kind == "video" and tuple(video.segments.frames.shape) == (5, 4, 384, 384, 3)
    assert video.segments.times.tolist() == [1.0, 3.0, 5.0, 7.0, 9.0]
    assert video.segments.source.endswith("train_00000.mp4")
    assert image.kind == "image" and tuple(image.segments.frames.shape) == (
        1,
        1,
        32,
        64,
        3,
    )  # 40 → 2.5 × 16 → 32 (half to even)
    assert text.kind == "text" and tuple(text.segments.frames.shape) == (1, 1, 336, 336, 3)
    assert [t.role for t in video.turns] == ["user", "assistant"]


def test_window_and_max_frames_per_stage(root):
    rows = load_annotations(write_rows(root / "v.jsonl", [GOOD_VIDEO]))
    sample = TempoDataset(rows, root, sampling=Sampling.training(window=8, max_frames=8))[0]  # stage-1 style
    assert tuple(sample.segments.frames.shape[:2]) == (1, 8)


@pytest.mark.parametrize("kind", sorted(BAD_ROWS))
def test_bad_sample_skipped_and_counted(root, kind):
    row, reason = BAD_ROWS[kind]
    records = load_annotations(write_rows(root / f"{row['id']}.jsonl", [row, GOOD_VIDEO]))
    log = SkipLog()
    dataset = TempoDataset(records, root, on_error="skip", skip_log=log)
    sample = dataset[0]  # the bad row is replaced by the next one
    assert sample.id == "v"
    assert len(log) == 1 and reason in log.records[0].reason
    if kind != "no answer":
        assert log.records[0].path.endswith(row.get("video") or row.get("image"))
    assert log.summary().startswith("1 samples skipped")


@pytest.mark.parametrize("kind", sorted(BAD_ROWS))
def test_bad_sample_raises_naming_file(root, kind):
    row, reason = BAD_ROWS[kind]
    records = load_annotations(write_rows(root / f"{row['id']}.jsonl", [row]))
    with pytest.raises(TempoKitError, match=reason) as info:
        TempoDataset(records, root, on_error="raise")[0]
    assert f"{row['id']}.jsonl:1 (id {row['id']})" in str(info.value)  # the row
    if kind != "no answer":
        assert (row.get("video") or row.get("image")).split("/")[-1] in str(info.value)  # the file


def test_all_bad_gives_up_after_bounded_retries(root):
    rows = [BAD_ROWS["missing video"][0]] * 5
    dataset = TempoDataset(
        load_annotations(write_rows(root / "all_bad.jsonl", rows)), root, max_replacements=3
    )
    with pytest.raises(MediaError, match="4 consecutive samples"):
        dataset[0]
    assert len(dataset.skip_log) == 4


def test_full_epoch_with_bad_rows_never_crashes(root):
    rows = [GOOD_VIDEO] + [r for r, _ in BAD_ROWS.values()] + [{"id": "t", "conversations": Q}]
    log = SkipLog(root / "skips.jsonl")
    dataset = TempoDataset(load_annotations(write_rows(root / "mixed.jsonl", rows)), root, skip_log=log)
    loader = DataLoader(dataset, batch_size=None, num_workers=2)
    ids = [sample.id for sample in loader]
    assert len(ids) == len(rows) and set(ids) <= {"v", "t"}
    # the workers' records reach the main process through the shared file
    assert log.summary().startswith(f"{len(BAD_ROWS)} samples skipped")


def test_cached_clips_are_decoded_once_and_served_unchanged(root, tmp_path):
    """cache_clips: a second epoch reads no file (the video is gone) and gets the same tensors."""
    import shutil

    import torch

    from tempo_kit.errors import ConfigError

    shutil.copy(root / "videos" / "train_00000.mp4", tmp_path / "clip.mp4")
    rows = [{"id": "a", "video": "clip.mp4", "conversations": Q}, {"id": "b", "video": "clip.mp4", "conversations": Q}]
    records = load_annotations(write_rows(tmp_path / "rows.jsonl", rows))
    cached = TempoDataset(records, tmp_path, on_error="raise", cache_clips=True)
    plain = TempoDataset(records, tmp_path, on_error="raise")
    first = [cached[0], cached[1]]
    assert len(cached.clip_cache) == 1  # two rows of one file: one decode
    (tmp_path / "clip.mp4").unlink()
    with pytest.raises(TempoKitError, match="not found"):
        plain[0]  # without the cache every read decodes
    for before, again in zip(first, [cached[0], cached[1]]):
        assert torch.equal(again.segments.frames, before.segments.frames)
        assert torch.equal(again.segments.times, before.segments.times)
    assert torch.equal(first[0].segments.frames, first[1].segments.frames)
    with pytest.raises(ConfigError, match="data.cache_clips"):
        TempoDataset(records, tmp_path, cache_clips="yes")
