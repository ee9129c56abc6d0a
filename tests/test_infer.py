"""Inference API and `tempo-kit infer` on a tiny kit model and synthetic needle videos (CPU)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from tempo_kit.cli import main
from tempo_kit.errors import ConfigError
from tempo_kit.inference.api import TempoPipeline, load_base_compressor
from tempo_kit.inference.plots import plot_allocation
from tempo_kit.types import Allocation

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def pipeline(tiny_tempo_dir):
    return TempoPipeline.from_pretrained(tiny_tempo_dir)


@pytest.fixture(scope="module")
def video(tiny_needle_benchmark):
    row = json.loads(tiny_needle_benchmark.read_text().splitlines()[0])
    return str(tiny_needle_benchmark.parent / row["video"]), row


def test_answer_reports_allocation_tokens_and_timings(pipeline, video):
    path, row = video
    result = pipeline.answer(video=path, query=row["question"], budget=40, max_new_tokens=4)
    assert isinstance(result.answer, str)
    assert result.num_frames == 24  # 12 s at 2 FPS
    assert result.num_segments == math.ceil(24 / 8) == len(result.allocation.times)
    assert result.tokens_used == int(result.allocation.counts.sum()) <= 40
    assert result.tokens_per_frame == result.tokens_used / 24
    assert result.allocation.k_max == 16 and result.allocation.k_min == 4
    assert torch.allclose(
        result.allocation.times, torch.tensor([2.0, 6.0, 10.0], dtype=result.allocation.times.dtype)
    )
    assert (
        result.allocation.relevance is not None
        and ((result.allocation.relevance > 0) & (result.allocation.relevance < 1)).all()
    )
    assert set(result.timings) == {"decode", "compress", "allocate", "assemble", "generate", "total"}
    assert result.timings["total"] >= result.timings["compress"] > 0
    document = result.to_dict()
    assert document["tokens"]["visual_tokens"] == result.tokens_used
    segments = document["segments"]
    assert [r["tokens"] for r in segments] == result.allocation.counts.tolist()
    assert [r["time"] for r in segments] == [2.0, 6.0, 10.0]
    # what the SVLM saw: 4 temporal patches per 8-frame window, tagged (j + 0.5) / real_fps
    assert result.settings["real_fps"] == 2.0 and result.settings["preprocessing"] == "released"
    assert segments[0]["frame_times"] == [0.25, 1.25, 2.25, 3.25]
    assert segments[2]["frame_times"] == [8.25, 9.25, 10.25, 11.25]
    grid = segments[0]["svlm_grid"]
    assert grid[0] == 4 and grid[1] * grid[2] * 16 * 16 >= 131072  # the released pixel floor
    json.dumps(document)


@pytest.mark.parametrize(
    ("allocator", "reduction", "budget"),
    [("ata", "tail", 13), ("uniform", "head", 30), ("topk", "merge", 20)],
)
def test_budget_respected_for_every_allocator(pipeline, video, allocator, reduction, budget):
    path, row = video
    result = pipeline.answer(
        video=path,
        query=row["question"],
        budget=budget,
        allocator=allocator,
        reduction=reduction,
        max_new_tokens=1,
    )
    counts = result.allocation.counts
    assert int(counts.sum()) <= budget and int(counts.max()) <= 16 and int(counts.min()) >= 0
    assert result.settings["allocator"] == {"name": allocator} and result.settings["reduction"] == {"name": reduction}


def test_frames_in_memory_give_the_same_answer_as_the_file(pipeline, video):
    from tempo_kit.video import load_video

    path, row = video
    clip = load_video(path)
    from_file = pipeline.answer(video=path, query=row["question"], max_new_tokens=3)
    from_frames = pipeline.answer(
        frames=clip.frames, frame_times=clip.timestamps, query=row["question"], max_new_tokens=3
    )
    assert from_file.answer == from_frames.answer
    assert torch.equal(from_file.allocation.counts, from_frames.allocation.counts)
    assert torch.allclose(from_file.allocation.relevance, from_frames.allocation.relevance)


def test_relevance_sources_and_prompts(tiny_tempo_dir, tiny_checkpoints, video):
    path, row = video
    pipe = TempoPipeline(
        TempoPipeline.from_pretrained(tiny_tempo_dir).model, load_base_compressor(tiny_checkpoints["svlm"])
    )
    trained = pipe.answer(video=path, query=row["question"], max_new_tokens=1)
    # the tiny model's SVLM is the base SVLM, and relevance is read before the memory tokens, so the
    # base prior with the same (routing) prompt must reproduce the trained scores
    base = pipe.answer(video=path, query=row["question"], relevance="base", max_new_tokens=1)
    assert torch.allclose(base.allocation.relevance, trained.allocation.relevance, atol=1e-5)
    standard = pipe.answer(
        video=path, query=row["question"], relevance="base", relevance_prompt="standard", max_new_tokens=1
    )
    assert not torch.allclose(standard.allocation.relevance, trained.allocation.relevance, atol=1e-6)
    # the prompt switch is undone after the call
    again = pipe.answer(video=path, query=row["question"], max_new_tokens=1)
    assert torch.equal(again.allocation.relevance, trained.allocation.relevance)


def test_bad_calls_say_what_to_do(pipeline, video):
    path, _ = video
    with pytest.raises(ConfigError, match="query is empty"):
        pipeline.answer(video=path, query=" ")
    with pytest.raises(ConfigError, match="--base-svlm"):
        pipeline.answer(video=path, query="q", relevance="base")
    with pytest.raises(ConfigError, match=r"^relevance='oracle': use one of trained, base$"):
        pipeline.answer(video=path, query="q", relevance="oracle")
    with pytest.raises(ConfigError, match="uint8"):
        pipeline.answer(frames=torch.zeros(4, 32, 32, 3), query="q")
    with pytest.raises(ConfigError, match="exactly one of video"):
        pipeline.answer(query="q")


def test_cli_json_and_plot(tiny_tempo_dir, video, tmp_path, capsys):
    path, row = video
    plot = tmp_path / "allocation.png"
    infer = ["infer", "--model", str(tiny_tempo_dir), "--video", path, "--no-progress"]
    code = main([*infer, "--query", row["question"], "--budget", "24", "--max-new-tokens", "2", "--json", "--plot", str(plot)])
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    assert document["tokens"]["visual_tokens"] == sum(r["tokens"] for r in document["segments"]) <= 24
    assert document["tokens"]["budget"] == 24 and document["plot"] == str(plot)
    assert plot.read_bytes()[:8] == PNG_MAGIC and plot.stat().st_size > 10_000

    assert main([*infer, "--query", "q", "--max-new-tokens", "1"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Answer:") and "per frame" in text and "Timings: decode" in text
    assert main(["infer", "--model", str(tmp_path), "--video", path, "--query", "q"]) == 2
    assert "tempo_config.json is missing" in capsys.readouterr().err


def test_plot_without_relevance_or_budget(tmp_path):
    allocation = Allocation(
        counts=torch.tensor([4, 16, 0, 8]),
        relevance=None,
        times=torch.tensor([2.0, 6.0, 10.0, 14.0]),
        budget=None,
        k_min=4,
        k_max=16,
    )
    out = plot_allocation(allocation, tmp_path / "sub" / "p.png", query="q")
    assert out.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(ValueError, match="0 segments"):
        plot_allocation(
            Allocation(torch.zeros(0, dtype=torch.long), None, torch.zeros(0), 8, 4, 16), tmp_path / "e.png"
        )


def test_reuse_last_video_skips_decode_and_compression(tiny_tempo_dir, video):
    path, row = video
    pipe = TempoPipeline.from_pretrained(tiny_tempo_dir, reuse_last_video=True)
    first = pipe.answer(video=path, query=row["question"], budget=48, allocator="uniform", max_new_tokens=1)
    second = pipe.answer(video=path, query=row["question"], budget=24, allocator="uniform", max_new_tokens=1)
    other = pipe.answer(video=path, query="Is there a digit?", budget=24, max_new_tokens=1)
    assert first.reused == () and second.reused == ("decode", "compress") and other.reused == ("decode",)
    assert torch.equal(second.allocation.relevance, first.allocation.relevance)
    assert second.tokens_used <= 24 < first.tokens_used == 48  # the new budget applies to reused memory
    fresh = TempoPipeline.from_pretrained(tiny_tempo_dir).answer(
        video=path, query=row["question"], budget=24, allocator="uniform", max_new_tokens=1
    )
    assert torch.equal(fresh.allocation.counts, second.allocation.counts) and fresh.answer == second.answer


def test_cli_overlap_gives_the_serial_answer_and_allocation(tiny_tempo_dir, video, capsys):
    path, row = video
    command = ["infer", "--model", str(tiny_tempo_dir), "--video", path, "--query", row["question"],
               "--budget", "24", "--max-new-tokens", "2", "--json", "--no-progress"]  # fmt: skip
    documents = []
    for extra in ([], ["--overlap"]):
        assert main([*command, *extra]) == 0
        documents.append(json.loads(capsys.readouterr().out))
    serial, overlapped = documents
    assert (serial["settings"]["overlap"], overlapped["settings"]["overlap"]) == (False, True)
    assert overlapped["answer"] == serial["answer"]
    assert [s["tokens"] for s in overlapped["segments"]] == [s["tokens"] for s in serial["segments"]]
    assert [s["relevance"] for s in overlapped["segments"]] == pytest.approx(
        [s["relevance"] for s in serial["segments"]], abs=1e-6
    )
