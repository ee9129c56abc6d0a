"""Training-step throughput, memory and MFU of stage 2 at the real shapes (random weights).

What runs is what ``tempo-kit fit`` runs: the recipe (``recipes/stage2.yaml`` by default) is
resolved with the kit's loader, the model is built by ``TempoModule.configure_model`` and trained
by a Lightning ``Trainer`` with the kit's strategy (FSDP2 sharding every transformer block, bf16
parameters with fp32 reduction, activation checkpointing as the recipe says; on one device FSDP2
runs over a mesh of one), AdamW and the recipe's schedule.
Only the data is synthetic: every sample is a video at the recipe's maximum frame count
(128 frames, 4-frame segments, 512×256) with one question and a fixed-length answer — the
largest stage-2 sample, so the numbers are a worst-case step.

FLOPs are counted from the shapes each step really runs (hooks on the SVLM, projector and LLM,
see ``tempo_kit.flops``); MFU = model FLOPs per step (ViT + SVLM + projector + LLM, forward and
backward, no recomputation) / step time / the GPU's peak bf16 dense FLOP/s.

    # on a GPU machine (writes ~12.5 GB of random real-shape checkpoints once, to outputs/bench)
    python benchmarks/bench_train_step.py --json benchmarks/results/train_step_h200.json
    # CPU smoke run at tiny shapes (seconds)
    python benchmarks/bench_train_step.py --tiny
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import torch
from common import (
    add_checkpoint_arguments,
    add_frame_size_arguments,
    checkpoints,
    fill_defaults,
    machine,
    peak_flops,
    peak_memory_gib,
    random_video,
    reset_peak_memory,
    synchronize,
    write_json,
)
from lightning.pytorch import Callback, Trainer

from tempo_kit.flops import FlopRecorder, mfu
from tempo_kit.model.prompts import Turn, compressor_query, encode_decoder_prompt
from tempo_kit.types import IGNORE_INDEX, TempoBatch

#: The question every synthetic sample asks (its length is typical of stage-2 instructions).
QUESTION = "Describe what happens in the video, in order, and say when each event happens."


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_checkpoint_arguments(parser)
    parser.add_argument("--recipe", default="recipes/stage2.yaml", help="the training recipe to measure")
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="recipe override (repeatable), e.g. trainable.compressor=frozen",
    )
    parser.add_argument(
        "--strategy", choices=["fsdp", "single", "ddp"], help="default: fsdp on GPU, single on CPU"
    )
    parser.add_argument("--devices", type=int, default=1, help="GPUs (Lightning launches one process each)")
    parser.add_argument(
        "--gradient-checkpointing",
        choices=["none", "compressor", "decoder", "both"],
        help="default: as the recipe (both in stage 2)",
    )
    parser.add_argument("--precision", help="Lightning precision (default: the recipe's, bf16-mixed)")
    parser.add_argument("--micro-batch-size", type=int, help="samples per device per step (default: recipe)")
    parser.add_argument("--frames", type=int, help="frames per video (default: the recipe's max_frames, 128)")
    parser.add_argument("--window", type=int, help="frames per segment (default: the recipe's, 4)")
    add_frame_size_arguments(parser)
    parser.add_argument("--answer-words", type=int, help="words in each answer (default 64; tiny 8)")
    parser.add_argument(
        "--mixed-lengths",
        action="store_true",
        help="samples of a micro-batch differ in length (frames and answer halve with each of 3 "
        "samples in turn): what packing (model.train_pack_tokens, model.compressor.pack_segments) saves",
    )
    parser.add_argument("--steps", type=int, help="measured steps (default 5; tiny 2)")
    parser.add_argument("--warmup", type=int, help="unmeasured first steps (default 2; tiny 1)")
    parser.add_argument("--peak-tflops", type=float, help="peak bf16 dense TFLOP/s (default: by GPU name)")
    args = parser.parse_args(argv)
    tiny = args.tiny
    defaults = {
        "answer_words": 8 if tiny else 64,
        "steps": 2 if tiny else 5,
        "warmup": 1 if tiny else 2,
        "strategy": "fsdp" if torch.cuda.is_available() and not tiny else "single",
    }
    fill_defaults(args, defaults)
    return args


def build_recipe(args: argparse.Namespace, paths: dict) -> dict[str, Any]:
    """The recipe with the benchmark's model paths, strategy and checkpointing (nothing else changed)."""
    from tempo_kit.recipes import load_recipe, to_dict

    overrides = [
        "run.init_from=null",
        f"model.compressor.pretrained={paths['svlm']}",
        f"model.decoder.pretrained={paths['llm']}",
        f"trainer.strategy.name={args.strategy}",
        f"trainer.devices={args.devices}",
        f"trainer.accelerator={'gpu' if torch.cuda.is_available() else 'cpu'}",
    ]
    if args.tiny:
        overrides += [
            "model.compressor.k_max=16",
            "model.train_max_context=2048",
            "trainer.precision=32-true",
            "trainer.gradient_checkpointing.compressor=false",
            "trainer.gradient_checkpointing.decoder=false",
        ]
    if args.gradient_checkpointing:
        parts = {"none": (), "compressor": ("compressor",), "decoder": ("decoder",)}
        on = parts.get(args.gradient_checkpointing, ("compressor", "decoder"))
        overrides += [
            f"trainer.gradient_checkpointing.{p}={str(p in on).lower()}" for p in ("compressor", "decoder")
        ]
    if args.precision:
        overrides.append(f"trainer.precision={args.precision}")
    if args.micro_batch_size:
        overrides.append(f"trainer.micro_batch_size={args.micro_batch_size}")
    recipe = to_dict(load_recipe(args.recipe, [*overrides, *args.override], check_paths=False))
    data = recipe["data"]
    args.frames = args.frames or (8 if args.tiny else int(data["max_frames"]))
    args.window = args.window or int(data["window"])
    args.micro_batch_size = int(recipe["trainer"]["micro_batch_size"])
    return recipe


def trainable_parts(trainable: dict[str, str]) -> dict[str, str]:
    """The recipe's ``trainable:`` modes as :meth:`tempo_kit.flops.StepFlops.training` parts.

    A LoRA part counts as frozen weights that pass gradients (the adapters' own products are
    small); a frozen SVLM passes gradients when the memory tokens learn. The default LoRA target
    of the compressor is its language model, so the vision tower is frozen then.
    """

    def mode(value: str) -> str:
        return {"full": "full", "lora": "input_grad"}.get(value, "frozen")

    svlm = mode(trainable["compressor"])
    if svlm == "frozen" and trainable["memory_tokens"] != "frozen":
        svlm = "input_grad"
    return {
        "vision": "full" if trainable["compressor"] == "full" else "frozen",
        "svlm": svlm,
        "projector": mode(trainable["projector"]),
        "llm": mode(trainable["decoder"]),
    }


class SyntheticBatches(torch.utils.data.Dataset):
    """``count`` micro-batches of noise videos with one question and answer each (made on access)."""

    def __init__(self, tokenizer, count: int, args: argparse.Namespace) -> None:
        self.tokenizer, self.count, self.args = tokenizer, count, args

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> TempoBatch:
        from tempo_kit.video import make_segments

        args = self.args
        answer = " ".join(["The red circle appears before the blue square."] * (args.answer_words // 8 + 1))
        answer = " ".join(answer.split()[: args.answer_words])
        turns = [Turn("user", QUESTION), Turn("assistant", answer)]
        rows, segments = [], []
        for sample in range(args.micro_batch_size):
            shrink = sample % 3 if args.mixed_lengths else 0  # full, half, quarter length in turn
            frames = max(args.window, args.frames >> shrink)
            video = random_video(frames, args.height, args.width, seed=index * 1000 + sample)
            segments.append(make_segments(video, args.window, kind="video", real_fps=2.0))
            words = answer.split()[: max(1, len(answer.split()) >> shrink)]
            sample_turns = [turns[0], Turn("assistant", " ".join(words))]
            rows.append(encode_decoder_prompt(self.tokenizer, sample_turns, has_visual=True))
        width = max(len(ids) for ids, _ in rows)
        input_ids = torch.full((len(rows), width), int(self.tokenizer.pad_token_id))
        labels = torch.full((len(rows), width), IGNORE_INDEX)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for row, (ids, target) in enumerate(rows):
            input_ids[row, : len(ids)], labels[row, : len(ids)], mask[row, : len(ids)] = ids, target, 1
        query = compressor_query(turns)
        return TempoBatch(segments, [query] * len(rows), input_ids, labels, mask)


class StepTimer(Callback):
    """Wall time, model FLOPs and sequence lengths of every optimizer step; peak memory after warm-up."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.steps: list[dict[str, Any]] = []
        self.recorder: FlopRecorder | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        self.recorder = FlopRecorder(pl_module.model)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        synchronize()
        if batch_idx == self.warmup:
            reset_peak_memory()
        self.recorder.reset()
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        synchronize()
        seconds = time.perf_counter() - self.start
        recorder = self.recorder
        self.steps.append(
            {
                "seconds": seconds,
                "flops": recorder.flops(),
                "segments": len(recorder.svlm_lengths),
                "svlm_tokens": sum(recorder.svlm_lengths),
                "llm_tokens": sum(recorder.llm_lengths),
            }
        )

    def on_train_end(self, trainer, pl_module) -> None:
        self.memory = peak_memory_gib()
        self.recorder.remove()


def summarise(args, recipe, timer: StepTimer, world_size: int) -> dict[str, Any]:
    measured = timer.steps[args.warmup :] or timer.steps
    seconds = statistics.median(s["seconds"] for s in measured)
    step = measured[-1]
    parts = trainable_parts(recipe["trainable"])
    train_flops = step["flops"].training(parts)
    peak = peak_flops(args.peak_tflops)
    samples = args.micro_batch_size
    results: dict[str, Any] = {
        "mode": "tiny (CPU smoke test, not a performance claim)" if args.tiny else "real shapes",
        "recipe": args.recipe,
        "overrides": args.override,
        "strategy": args.strategy,
        "devices": world_size,
        "precision": recipe["trainer"]["precision"],
        "gradient_checkpointing": recipe["trainer"]["gradient_checkpointing"],
        "trainable": parts,
        "micro_batch_size": samples,
        "frames": args.frames,
        "mixed_lengths": args.mixed_lengths,
        "window": args.window,
        "frame_size": [args.height, args.width],
        "k_max": recipe["model"]["compressor"].get("k_max"),
        "segments_per_step": step["segments"],
        "svlm_tokens_per_segment": step["svlm_tokens"] / max(step["segments"], 1),
        "llm_tokens_per_sample": step["llm_tokens"] / samples,
        "steps_measured": len(measured),
        "step_seconds_median": seconds,
        "step_seconds_all": [round(s["seconds"], 4) for s in timer.steps],
        "samples_per_s": samples * world_size / seconds,
        "model_tflops_per_step_per_device": train_flops / 1e12,
        "forward_tflops_by_part": {k: v / 1e12 for k, v in step["flops"].as_dict().items()},
        "achieved_tflops_per_device": train_flops / seconds / 1e12,
        "peak_tflops": None if peak is None else peak / 1e12,
        "mfu": None if peak is None else mfu(train_flops, seconds, peak),
        **timer.memory,
        "machine": machine(),
    }
    return results


def report(results: dict[str, Any]) -> str:
    keys = [
        "mode",
        "strategy",
        "devices",
        "precision",
        "micro_batch_size",
        "segments_per_step",
        "svlm_tokens_per_segment",
        "llm_tokens_per_sample",
        "step_seconds_median",
        "samples_per_s",
        "model_tflops_per_step_per_device",
        "achieved_tflops_per_device",
        "mfu",
        "peak_allocated_gib",
        "peak_reserved_gib",
        "peak_rss_gib",
    ]
    lines = ["| metric | value |", "|---|---|"]
    for key in keys:
        if key in results:
            value = results[key]
            lines.append(f"| {key} | {value:.4g} |" if isinstance(value, float) else f"| {key} | {value} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from transformers import AutoTokenizer

    from tempo_kit.training.module import TempoModule
    from tempo_kit.training.strategies import build_strategy, trainer_precision

    args = parse_args(argv)
    torch.manual_seed(0)
    paths = checkpoints(args)
    recipe = build_recipe(args, paths)
    settings = recipe["trainer"]
    tokenizer = AutoTokenizer.from_pretrained(str(paths["llm"]))
    data = SyntheticBatches(tokenizer, args.warmup + args.steps, args)
    loader = torch.utils.data.DataLoader(data, batch_size=None, collate_fn=lambda batch: batch)
    timer = StepTimer(args.warmup)
    grad_clip = recipe["optim"]["grad_clip"]
    trainer = Trainer(
        accelerator=settings["accelerator"],
        devices=settings["devices"],
        strategy=build_strategy(settings["strategy"], settings["precision"]),
        precision=trainer_precision(settings["strategy"], settings["precision"]),
        max_steps=args.warmup + args.steps,
        gradient_clip_val=grad_clip if grad_clip else None,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        use_distributed_sampler=False,  # every rank gets its own synthetic batches as they are
        callbacks=[timer],
    )
    module = TempoModule(recipe)
    try:
        trainer.fit(module, train_dataloaders=loader)
    except torch.cuda.OutOfMemoryError:
        memory = peak_memory_gib()
        raise SystemExit(
            f"out of GPU memory (peak {memory}); full stage-2 training keeps ~16 bytes per parameter "
            "(98 GB for 6.16B): use more --devices, --override trainer.strategy.fsdp.cpu_offload=true, "
            "a smaller --micro-batch-size / --frames, or a LoRA recipe"
        ) from None
    if not trainer.is_global_zero:
        return 0
    results = summarise(args, recipe, timer, trainer.world_size)
    print(report(results))
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
