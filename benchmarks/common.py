"""Helpers shared by the benchmark scripts: checkpoints, synthetic videos, timing, memory, reports."""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

import torch

#: Frame size the SVLM sees of a 16:9 video.
#: the question every benchmark asks (a multiple-choice question of the evaluation's length)
QUESTION = "When does the red circle appear? (A) at the start (B) in the middle (C) at the end (D) never"
REAL_FRAME = (256, 512)  # the released geometry of every 16:9 video ≥ 360p (compatibility §1)
#: Frame size in ``--tiny`` mode.
TINY_FRAME = (64, 96)


def checkpoints(args: Any) -> dict[str, Path]:
    """``--svlm/--llm`` as given, the tiny pair for ``--tiny``, else random real-shape ones in ``--checkpoints``."""
    if args.svlm or args.llm:
        if not (args.svlm and args.llm):
            raise SystemExit("give both --svlm and --llm, or neither")
        return {"svlm": Path(args.svlm), "llm": Path(args.llm)}
    if args.tiny:
        from tempo_kit.tiny import make_tiny

        out = Path(args.checkpoints) / "tiny"
        if (out / "svlm" / "config.json").is_file() and (out / "llm" / "config.json").is_file():
            return {"svlm": out / "svlm", "llm": out / "llm"}
        return make_tiny(out)
    from tempo_kit.tiny.real_shapes import write_real_shape_checkpoints

    device = "cuda" if torch.cuda.is_available() else "cpu"
    start = time.perf_counter()
    paths = write_real_shape_checkpoints(Path(args.checkpoints) / "real_shapes", device=device)
    print(f"real-shape checkpoints ready in {time.perf_counter() - start:.0f} s: {paths['svlm'].parent}")
    return paths


def add_checkpoint_arguments(parser) -> None:
    parser.add_argument("--tiny", action="store_true", help="tiny checkpoints and shapes: a CPU smoke run")
    parser.add_argument("--svlm", help="a Qwen3-VL checkpoint folder (default: random real-shape weights)")
    parser.add_argument("--llm", help="a Qwen3 checkpoint folder (default: random real-shape weights)")
    parser.add_argument(
        "--checkpoints",
        default="outputs/bench",
        help="where random checkpoints are written once and reused (real shapes: about 12.5 GB)",
    )
    parser.add_argument("--json", help="also write the results as JSON to this file")


def add_frame_size_arguments(parser) -> None:
    parser.add_argument("--height", type=int, help=f"frame height (default {REAL_FRAME[0]})")
    parser.add_argument("--width", type=int, help=f"frame width (default {REAL_FRAME[1]})")


def fill_defaults(args: Any, defaults: dict[str, Any]) -> None:
    """Set each argument left ``None`` to its default (they depend on ``--tiny``, known only after
    parsing); ``--height/--width`` default to :data:`TINY_FRAME` or :data:`REAL_FRAME`."""
    frame = TINY_FRAME if args.tiny else REAL_FRAME
    for key, value in {"height": frame[0], "width": frame[1], **defaults}.items():
        if getattr(args, key) is None:
            setattr(args, key, value)


def random_video(num_frames: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Uniform-noise uint8 frames ``[T, H, W, 3]`` (content does not change the work done)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (num_frames, height, width, 3), dtype=torch.uint8, generator=generator)


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def reset_peak_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def peak_memory_gib() -> dict[str, float]:
    """Peak GPU memory (allocated / reserved by PyTorch) since the last reset, or the process's peak RSS on CPU."""
    if torch.cuda.is_available():
        return {
            "peak_allocated_gib": torch.cuda.max_memory_allocated() / 2**30,
            "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2**30,
        }
    return {"peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
        info["gpus"] = torch.cuda.device_count()
    else:
        info["gpu"] = None
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return info


def peak_flops(override_tflops: float | None) -> float | None:
    """The device's peak bf16 dense FLOP/s: ``--peak-tflops`` if given, else looked up by GPU name."""
    from tempo_kit.flops import peak_flops_for

    if override_tflops:
        return override_tflops * 1e12
    if torch.cuda.is_available():
        return peak_flops_for(torch.cuda.get_device_name())
    return None


def write_json(path: str | None, results: dict[str, Any]) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {path}")


#: the repository root (this folder's parent)
ROOT = Path(__file__).resolve().parents[1]


def git_commit() -> str:
    """The short commit a results file was made at, marked when src/, benchmarks/ or recipes/ differ."""
    import subprocess

    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "src", "benchmarks", "recipes"],
                           cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    return head.stdout.strip() + (" (uncommitted changes)" if dirty.stdout.strip() else "")


def fit_recipe(recipe: str, overrides: list[str]) -> float:
    """Run ``tempo-kit fit`` on a shipped recipe in-process, library chatter quiet; its wall time in seconds."""
    from tempo_kit.quiet import quiet_library_messages
    from tempo_kit.recipes import load_recipe, to_dict
    from tempo_kit.training.commands import run_recipe

    cfg = to_dict(load_recipe(ROOT / "recipes" / recipe, overrides))
    start = time.perf_counter()
    with quiet_library_messages():
        run_recipe(cfg, "fit")
    return time.perf_counter() - start

