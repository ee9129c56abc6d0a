"""Training steps with the decoder's rows padded to the longest sample vs packed (``train_pack_tokens``).

A batch mixing long and short videos, an image and text-only samples (as a stage-2 mixture does)
runs forward + backward through the tiny Qwen3-VL + Qwen3 pair, both ways, alternating, on the
same weights. Reported: decoder tokens computed (rows × row width), the loss of each way (equal),
and samples/s with the ratio.

    python benchmarks/bench_packing.py --out benchmarks/results/packing_cpu.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import TINY_FRAME, git_commit, machine

from tempo_kit.model import TempoModel
from tempo_kit.model.prompts import Turn, encode_decoder_prompt
from tempo_kit.tiny import make_tiny
from tempo_kit.types import IGNORE_INDEX, Segments, TempoBatch

#: segments per sample (0: text only, "image": one image); a stage-2-like mix of lengths
MIX = (16, 2, "image", 0, 12, 1, 0, 6)
WINDOW = 4  # training segments hold 4 frames (compatibility §2)


def sample_segments(kind, seed: int) -> Segments:
    generator = torch.Generator().manual_seed(seed)
    if kind in ("image", 0):  # an image, or a text-only sample's placeholder: one segment of one frame
        count, window, label = 1, 1, "image" if kind else "text"
    else:
        count, window, label = kind, WINDOW, "video"
    frames = torch.randint(0, 256, (count, window, *TINY_FRAME, 3), generator=generator, dtype=torch.uint8)
    frame_times = (torch.arange(count * window, dtype=torch.float) / 2).reshape(count, window)
    return Segments(frames, frame_times, frame_times.mean(1), kind=label)


def mixed_batch(tokenizer) -> TempoBatch:
    samples = [(sample_segments(kind, i), f"What happens in clip {i}?", "A red circle moves left.") for i, kind in enumerate(MIX)]
    encoded = [
        encode_decoder_prompt(tokenizer, [Turn("user", q), Turn("assistant", a)], has_visual=s.kind != "text")
        for s, q, a in samples
    ]
    length = max(len(ids) for ids, _ in encoded)
    input_ids = torch.full((len(samples), length), tokenizer.pad_token_id)
    labels, mask = torch.full_like(input_ids, IGNORE_INDEX), torch.zeros_like(input_ids)
    for b, (ids, lab) in enumerate(encoded):
        input_ids[b, : len(ids)], labels[b, : len(ids)], mask[b, : len(ids)] = ids, lab, 1
    return TempoBatch([s for s, _, _ in samples], [q for _, q, _ in samples], input_ids, labels, mask, [str(i) for i in range(len(samples))])


def step(model: TempoModel, batch: TempoBatch) -> tuple[float, float, int]:
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    out = model(batch)
    out.loss.backward()
    seconds = time.perf_counter() - start
    return seconds, float(out.loss.detach()), int(out.logits.shape[0] * out.logits.shape[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=6, help="timed steps per way (after one warm-up each)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="write a markdown report here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        paths = make_tiny(folder)
        model = TempoModel.from_config(
            {
                "compressor": {"name": "qwen3_vl", "pretrained": str(paths["svlm"]), "k_max": 16},
                "decoder": {"name": "hf_causal_lm", "pretrained": str(paths["llm"]), "dtype": "float32"},
            }
        )
    model.train()
    batch = mixed_batch(model.tokenizer)
    lengths = None
    results = {"padded": [], "packed": []}
    for index in range(args.steps + 1):
        for way in ("padded", "packed"):
            model.config.train_pack_tokens = None
            if way == "packed":
                if lengths is None:
                    lengths = model(batch).attention_mask.sum(1).tolist()
                model.config.train_pack_tokens = max(lengths)
            measured = step(model, batch)
            if index:  # the first round warms up
                results[way].append(measured)
    rows = {}
    for way, runs in results.items():
        seconds = statistics.median(r[0] for r in runs)
        rows[way] = {"seconds": seconds, "loss": runs[0][1], "tokens": runs[0][2], "samples_per_s": len(MIX) / seconds}
    ratio = rows["packed"]["samples_per_s"] / rows["padded"]["samples_per_s"]
    lines = [
        "| rows | decoder tokens (rows × width) | loss | step, median (s) | samples/s |",
        "|---|---|---|---|---|",
    ]
    for way, r in rows.items():
        lines.append(f"| {way} | {r['tokens']} | {r['loss']:.6f} | {r['seconds']:.3f} | {r['samples_per_s']:.2f} |")
    tokens = rows["padded"]["tokens"] / rows["packed"]["tokens"]
    summary = (
        f"\nPacked: {ratio:.2f}× the samples/s of padded; {tokens:.2f}× fewer decoder tokens "
        f"(train_pack_tokens = the longest sample, {max(lengths)} tokens; sample lengths {lengths})."
    )
    print("\n".join(lines) + summary)
    if args.out:
        commit = git_commit()
        header = (
            "# Packed decoder rows in training (CPU, tiny Qwen3-VL + Qwen3, fp32)\n\n"
            f"`python benchmarks/bench_packing.py {' '.join(argv if argv is not None else sys.argv[1:])}` at commit "
            f"{commit}. One batch of {len(MIX)} samples (segments per sample: {MIX}; 'image' one image, 0 text "
            f"only), forward + backward, {args.steps} timed steps per way after a warm-up, alternating. "
            f"{machine()}.\n\n"
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(header + "\n".join(lines) + "\n" + summary + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
