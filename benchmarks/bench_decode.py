"""Decode benchmark: 1024 frames from a long 1080p video, the kit's pipeline vs the released approach.

* released: decord ``get_batch`` of all sampled indices at full resolution, then per frame the
  PIL bicubic first resize (long edge 512) and qwen-vl-utils' factor-64 resize, then the
  factor-32 clip resize (compatibility §1);
* kit: ``tempo_kit.video.load_video`` (the same indices and geometry) on the exact path
  (``resize="pil"``, default: the released pixels, decoded in bounded chunks), the fast path
  (``resize="decoder"``: the decoder scales straight to the final size) on decord and PyAV, and
  both paths on torchcodec where it loads (a CUDA build of torch; otherwise the script says so).

Each approach runs in a fresh process; the script reports wall time, peak RSS (the process's
maximum resident set), the ratios, and each method's pixel difference to the released frames
(max and mean absolute difference over every ``--dump-stride``-th frame). The source video is a
synthetic H.264 file written once with PyAV and cached.

    python benchmarks/bench_decode.py --out benchmarks/results/decode_cpu.md
    python benchmarks/bench_decode.py --duration 60 --frames 120   # quick check
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CHILD = r"""
import json, resource, sys, time
args = json.loads(sys.argv[1])
import numpy as np, torch
torch.set_num_threads(args["threads"])
from tempo_kit.video import load_video, num_sampled_frames, sample_indices

def peak_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

start = time.perf_counter()
if args["method"] == "released":
    import decord
    from PIL import Image
    from tempo_kit.video.preprocessing import ReleasedGeometry, clip_bicubic
    reader = decord.VideoReader(args["path"], ctx=decord.cpu(0), num_threads=args["threads"])
    total, fps = len(reader), reader.get_avg_fps()
    indices = sample_indices(total, num_sampled_frames(total / fps, 2.0, 4, args["frames"]))
    frames = reader.get_batch(list(indices)).asnumpy()  # all frames, full resolution
    geometry = ReleasedGeometry.of(*frames.shape[1:3])
    (h1, w1), (h2, w2) = geometry.first, geometry.per_frame
    per_frame = np.stack([
        np.asarray(Image.fromarray(f).resize((w1, h1), Image.BICUBIC).resize((w2, h2), Image.BICUBIC))
        for f in frames
    ])
    out = np.concatenate([  # qwen-vl-utils resizes each 8-frame window as one clip
        clip_bicubic(torch.from_numpy(per_frame[i : i + 8]), geometry.final).numpy()
        for i in range(0, len(per_frame), 8)
    ])
else:
    clip = load_video(args["path"], max_frames=args["frames"], resize=args["resize"], backend=args["backend"])
    out = clip.frames.numpy()
elapsed = time.perf_counter() - start
peak = peak_bytes()
np.save(args["dump"], out[:: args["stride"]])
print(json.dumps({"seconds": elapsed, "peak_rss": peak, "shape": list(out.shape)}))
"""


def make_source(path: Path, duration: float, fps: float, height: int, width: int) -> Path:
    """A long H.264 video: a textured background that drifts every frame, plus a frame counter."""
    from tempo_kit.data.synthetic import counter_frame, write_video

    if path.exists():
        return path
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 255, size=(height // 8, width // 8 + 64, 3), dtype=np.uint8)
    texture = np.kron(texture, np.ones((8, 8, 1), dtype=np.uint8))  # 8-px blocks: compressible, not flat

    def frames():
        for i in range(int(round(duration * fps))):
            shift = i % 64  # one pixel per frame: every frame differs, as in real video
            frame = np.ascontiguousarray(texture[:, shift : shift + width])
            frame[: height // 8, : width // 4] = counter_frame(i, height // 8, width // 4)
            yield frame

    tmp = path.with_suffix(".partial.mp4")
    write_video(tmp, frames(), fps, options={"preset": "ultrafast", "crf": "23"})
    tmp.rename(path)
    return path


def run_child(settings: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(settings)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{settings['method']} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--duration", type=float, default=520.0, help="source length, s (≥ 512 for 1024 frames)"
    )
    parser.add_argument("--src-fps", type=float, default=10.0, help="source frame rate")
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--frames", type=int, default=1024, help="max_frames")
    parser.add_argument("--threads", type=int, default=2, help="decoder / torch threads")
    parser.add_argument("--repeats", type=int, default=1, help="runs per method (best time, max RSS)")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path.home() / ".cache" / "tempo-kit" / "bench_decode",
        help="source video cache",
    )
    parser.add_argument("--skip-released", action="store_true", help="skip the full-resolution baseline")
    parser.add_argument("--dump-stride", type=int, default=8, help="compare every N-th frame's pixels")
    parser.add_argument("--out", type=Path, help="write a markdown report here")
    args = parser.parse_args()

    args.cache.mkdir(parents=True, exist_ok=True)
    name = f"src_{args.height}p_{args.duration:g}s_{args.src_fps:g}fps.mp4"
    started = time.perf_counter()
    source = make_source(args.cache / name, args.duration, args.src_fps, args.height, args.width)
    print(f"source {source} ready in {time.perf_counter() - started:.1f} s", flush=True)

    released_label = "released: decord get_batch full-res + PIL per frame + clip resize"
    methods = {
        "kit: decord, exact path (resize=pil, default)": {"method": "kit", "backend": "decord", "resize": "pil"},
        "kit: decord, fast path (resize=decoder)": {"method": "kit", "backend": "decord", "resize": "decoder"},
        "kit: PyAV, fast path (resize=decoder)": {"method": "kit", "backend": "pyav", "resize": "decoder"},
    }
    from tempo_kit.video.torchcodec_source import torchcodec_problem

    if problem := torchcodec_problem():
        print(f"{problem}: no torchcodec rows (run this with a CUDA build of torch and torchcodec)", flush=True)
    else:
        methods["kit: torchcodec, exact path (resize=pil)"] = {"method": "kit", "backend": "torchcodec", "resize": "pil"}
        methods["kit: torchcodec, fast path (resize=decoder, bilinear)"] = {
            "method": "kit", "backend": "torchcodec", "resize": "decoder"}
    if not args.skip_released:
        methods = {released_label: {"method": "released"}, **methods}
    results, dumps = {}, {}
    for number, (label, extra) in enumerate(methods.items()):
        dumps[label] = args.cache / f"frames_{number}.npy"
        settings = {"path": str(source), "frames": args.frames, "threads": args.threads,
                    "dump": str(dumps[label]), "stride": args.dump_stride, **extra}
        runs = [run_child(settings) for _ in range(args.repeats)]
        results[label] = {
            "seconds": min(r["seconds"] for r in runs),
            "peak_rss": max(r["peak_rss"] for r in runs),
            "shape": runs[0]["shape"],
        }
        r = results[label]
        print(
            f"{label}: {r['seconds']:.2f} s, peak RSS {r['peak_rss'] / 2**30:.2f} GiB, {r['shape']}",
            flush=True,
        )

    baseline = results.get(released_label)
    reference = np.load(dumps[released_label]).astype(np.int16) if baseline else None
    lines = [
        "| method | wall time (s) | peak RSS (GiB) | frames | speed-up vs released | RSS vs released "
        "| pixel diff to released (max / mean) |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, r in results.items():
        speed = f"{baseline['seconds'] / r['seconds']:.2f}×" if baseline else "—"
        memory = f"{r['peak_rss'] / baseline['peak_rss']:.2f}×" if baseline else "—"
        diff = "—"
        if reference is not None:
            delta = np.abs(np.load(dumps[label]).astype(np.int16) - reference)
            diff = f"{int(delta.max())} / {float(delta.mean()):.3f}"
        lines.append(
            f"| {label} | {r['seconds']:.2f} | {r['peak_rss'] / 2**30:.2f} | {tuple(r['shape'])} | {speed} "
            f"| {memory} | {diff} |"
        )
    table = "\n".join(lines)
    print(table)
    if args.out:
        command = " ".join(["python", "benchmarks/bench_decode.py", *sys.argv[1:]])
        header = (
            f"# Decode benchmark (CPU)\n\n`{command}`\n\n"
            f"Source: synthetic H.264 (libx264 ultrafast, crf 23), {args.width}×{args.height}, "
            f"{args.duration:g} s at {args.src_fps:g} fps ({int(round(args.duration * args.src_fps))} frames); "
            f"{args.frames} frames sampled at 2 FPS, brought to the released geometry (512×256 for 16:9). "
            f"{args.threads} decoder threads; best of {args.repeats} run(s), each in a fresh process. "
            f"Machine: {platform.machine()}, {platform.python_version()}, shared CPU.\n\n"
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(header + table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
