"""Load on `tempo-kit serve`: N concurrent clients × M questions about a few videos, against the
same questions answered one by one without any cache, in one run; the server runs twice, batching
questions (its defaults) and answering one question at a time (``--max-batch-size 1``, the queue
of earlier versions), so the batching's own gain is measured on the same load.

The baseline loads the model in this process and calls ``TempoPipeline.answer`` for every
question in turn (each decodes its video and compresses every segment in full). The server run
starts the real ``tempo-kit serve`` on a free port and lets N threads, each with its own
``openai`` client, ask their M questions (client i asks about video i mod V); the server's video
cache decodes each video once and computes each segment's SVLM prefix once. Reported: p50/p95
latency per question, questions per second, the cache hit rate and batch sizes (from
``/metrics``), peak memory (the baseline process's and each server's peak RSS), and whether every
server answer equals the baseline's.

Goals. CPU, tiny model: ≥ 3× the baseline's questions/s at 8 clients. GPU (a device run, not made
here): Tempo-6B on one H100, one warm 1024-frame video, follow-up p50 ≤ 1 s and ≥ 10 questions/s:

    python benchmarks/bench_serve.py --model DIR --clients 8 --questions 8 --videos 1 \\
        --duration 512 --device cuda --dtype bfloat16 --json benchmarks/results/serve_h100.json

(512 s at 2 FPS is 1024 frames; p50 there is over all questions, the one cold first question included.)

    python benchmarks/bench_serve.py --tiny --json benchmarks/results/serve_tiny_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from common import git_commit, machine

#: Questions each client cycles through (different texts: each needs its own suffix and answer).
QUESTIONS = (
    "When does the red circle appear?",
    "What colour is the square?",
    "How many shapes move?",
    "What happens at the end?",
    "Which object is largest?",
    "Is there any text on screen?",
    "Where is the circle at the start?",
    "Does anything change colour?",
)
#: The CPU goal: the server's questions/s over the uncached sequential baseline's at 8 clients.
CPU_GOAL_SPEEDUP = 3.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="build the tiny model (a CPU run)")
    parser.add_argument("--model", help="a kit-format model folder (instead of --tiny)")
    parser.add_argument("--work", default="outputs/bench_serve", help="where the tiny model and videos are written")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients N (8)")
    parser.add_argument("--questions", type=int, default=4, help="questions per client M (4)")
    parser.add_argument("--videos", type=int, default=2, help="videos V (2)")
    parser.add_argument("--duration", type=float, default=24.0, help="seconds of each synthetic video (24)")
    parser.add_argument("--max-new-tokens", type=int, default=8, help="answer length (8)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--json", help="write the results here (and a .md beside it)")
    return parser.parse_args(argv)


def tiny_model(work: Path) -> Path:
    """The tests' tiny Tempo model (k_max 16, budget 64), written once."""
    folder = work / "model"
    if (folder / "tempo_config.json").is_file():
        return folder
    from tempo_kit.model import TempoModel
    from tempo_kit.tiny import make_tiny

    checkpoints = make_tiny(work / "checkpoints", seed=0)
    model = TempoModel.from_config(
        {
            "compressor": {"name": "qwen3_vl", "pretrained": str(checkpoints["svlm"]), "k_max": 16},
            "decoder": {"name": "hf_causal_lm", "pretrained": str(checkpoints["llm"])},
            "budget": 64,
        }
    )
    return model.save_pretrained(folder)


def videos(work: Path, count: int, duration: float) -> list[Path]:
    from tempo_kit.data.synthetic import make_needle_dataset

    root = work / f"videos_{count}_{duration:g}"
    annotations = root / "test.jsonl"
    if not annotations.is_file():
        make_needle_dataset(root, num_videos=count, split="test", duration=duration, question_types=("mc",), seed=0)
    rows = [json.loads(line) for line in annotations.read_text().splitlines()]
    return [(root / row["video"]).resolve() for row in rows][:count]


def plan(args: argparse.Namespace, video_files: list[Path]) -> list[list[tuple[Path, str]]]:
    """Per client, its M (video, question) pairs."""
    return [
        [(video_files[c % len(video_files)], QUESTIONS[(c + q) % len(QUESTIONS)]) for q in range(args.questions)]
        for c in range(args.clients)
    ]


def summary(latencies: list[float], wall: float) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "questions": len(ordered),
        "wall_s": round(wall, 3),
        "questions_per_s": round(len(ordered) / wall, 3),
        "p50_s": round(statistics.median(ordered), 4),
        "p95_s": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 4),
    }


def peak_rss_gib(pid: int | str = "self") -> float:
    """VmHWM of a process (its peak resident memory)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 2**20, 3)
    return float("nan")


def baseline(model: Path, jobs: list[tuple[Path, str]], args: argparse.Namespace) -> tuple[dict, dict]:
    """Every question answered in turn by ``TempoPipeline.answer``: no session, no cache."""
    from tempo_kit.inference.api import TempoPipeline

    pipe = TempoPipeline.from_pretrained(model, device=args.device, dtype=args.dtype)
    answers, latencies = {}, []
    start = time.perf_counter()
    for i, (video, question) in enumerate(jobs):
        tick = time.perf_counter()
        answers[(video, question)] = pipe.answer(video, question, max_new_tokens=args.max_new_tokens).answer
        latencies.append(time.perf_counter() - tick)
        print(f"baseline {i + 1}/{len(jobs)}: {latencies[-1]:.2f} s", flush=True)
    result = summary(latencies, time.perf_counter() - start)
    result["peak_rss_gib"] = peak_rss_gib()
    return result, answers


#: The two server runs: name → extra ``tempo-kit serve`` switches.
SERVER_MODES = {"batched": [], "queue": ["--max-batch-size", "1"]}


def start_server(model: Path, media: Path, args: argparse.Namespace, extra: list[str]) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "tempo_kit.cli", "serve", "--model", str(model), "--media-root", str(media),
               "--port", "0", "--device", args.device, "--log-level", "warning", *extra]
    if args.dtype:
        command += ["--dtype", args.dtype]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    for line in process.stdout:
        match = re.search(r"listening on (http://\S+)", line)
        if match:
            return process, match.group(1)
    raise SystemExit("the server did not start")


def served(
    model: Path, media: Path, clients: list[list[tuple[Path, str]]], args: argparse.Namespace, mode: str
) -> tuple[dict, dict]:
    """The same questions from N concurrent clients against one fresh server run in ``mode``."""
    import httpx
    from openai import OpenAI

    process, url = start_server(model, media, args, SERVER_MODES[mode])
    try:
        def client_run(work: list[tuple[Path, str]]) -> list[tuple[Path, str, str, float]]:
            client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=3600)
            out = []
            for video, question in work:
                tick = time.perf_counter()
                reply = client.chat.completions.create(
                    model=Path(model).name,
                    messages=[{"role": "user", "content": [
                        {"type": "video_url", "video_url": {"url": video.as_uri()}},
                        {"type": "text", "text": question}]}],
                    max_tokens=args.max_new_tokens,
                )
                out.append((video, question, reply.choices[0].message.content, time.perf_counter() - tick))
            print(f"{mode}: client done, {len(out)} questions", flush=True)
            return out

        start = time.perf_counter()
        with ThreadPoolExecutor(len(clients)) as pool:
            results = [r for rs in pool.map(client_run, clients) for r in rs]
        wall = time.perf_counter() - start
        metrics = httpx.get(f"{url}/metrics").text
        value = {m: float(v) for m, v in re.findall(r"^(tempo_\w+) (\S+)$", metrics, re.M)}
        result = summary([r[3] for r in results], wall)
        hits, misses = value["tempo_video_cache_hits_total"], value["tempo_video_cache_misses_total"]
        result["cache_hit_rate"] = round(hits / max(hits + misses, 1), 4)
        result["prefix_reused"] = int(value["tempo_prefix_reused_total"])
        result["server_peak_rss_gib"] = peak_rss_gib(process.pid)
        batches = value["tempo_model_batches_total"]
        result["batches"] = int(batches)
        result["mean_batch"] = round(value["tempo_model_batch_questions_total"] / max(batches, 1), 2)
        result["largest_batch"] = int(value["tempo_model_largest_batch"])
        return result, {(r[0], r[1]): r[2] for r in results}
    finally:
        process.terminate()
        process.wait(timeout=60)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if not (args.tiny or args.model):
        raise SystemExit("give --tiny or --model DIR")
    work = Path(args.work)
    model = tiny_model(work) if args.tiny else Path(args.model)
    video_files = videos(work, args.videos, args.duration)
    clients = plan(args, video_files)
    jobs = [job for client in clients for job in client]
    base, expected = baseline(model, jobs, args)
    runs = {mode: served(model, video_files[0].parent, clients, args, mode) for mode in SERVER_MODES}
    server, answers = runs["batched"]
    queue, queue_answers = runs["queue"]
    results = {
        "commit": git_commit(),
        "machine": machine(),
        "setup": {k: getattr(args, k) for k in ("clients", "questions", "videos", "duration", "max_new_tokens", "device", "dtype")},
        "model": "tiny" if args.tiny else str(model),
        "baseline_sequential_uncached": base,
        "server": server,
        "server_queue": queue,
        "speedup_questions_per_s": round(server["questions_per_s"] / base["questions_per_s"], 2),
        "queue_speedup_questions_per_s": round(queue["questions_per_s"] / base["questions_per_s"], 2),
        "batched_over_queue": round(server["questions_per_s"] / queue["questions_per_s"], 2),
        "answers_equal": sum(answers[k] == expected[k] for k in expected),
        "queue_answers_equal": sum(queue_answers[k] == expected[k] for k in expected),
        "answers_total": len(expected),
        "cpu_goal": f">= {CPU_GOAL_SPEEDUP}x questions/s at 8 clients (tiny model)",
        "gpu_goal": "Tempo-6B, one H100, one warm 1024-frame video: follow-up p50 <= 1 s, >= 10 questions/s",
    }
    print(json.dumps(results, indent=2))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2) + "\n")
        path.with_suffix(".md").write_text(markdown(results))
        print(f"wrote {path} and {path.with_suffix('.md')}")
    return results


def markdown(r: dict[str, Any]) -> str:
    b, s, q = r["baseline_sequential_uncached"], r["server"], r["server_queue"]
    setup = r["setup"]
    load = r["machine"].get("load_average")
    return "\n".join([
        f"# tempo-kit serve under load ({r['model']} model, {setup['device']})",
        "",
        f"Commit `{r['commit']}`. {setup['clients']} clients × {setup['questions']} questions about "
        f"{setup['videos']} videos of {setup['duration']:g} s; answers of {setup['max_new_tokens']} tokens. "
        f"Written by `benchmarks/bench_serve.py`.",
        "",
        f"Load average when written (1, 5, 15 min): {load}.",
        "",
        "| run | questions/s | p50 (s) | p95 (s) | cache hit rate | mean / largest batch | peak RSS (GiB) |",
        "|---|---|---|---|---|---|---|",
        f"| one by one, no cache (`TempoPipeline.answer`) | {b['questions_per_s']} | {b['p50_s']} | {b['p95_s']} | – | – | {b['peak_rss_gib']} |",
        f"| `tempo-kit serve --max-batch-size 1` (queue), {setup['clients']} clients | {q['questions_per_s']} | {q['p50_s']} "
        f"| {q['p95_s']} | {q['cache_hit_rate']} | {q['mean_batch']} / {q['largest_batch']} | {q['server_peak_rss_gib']} |",
        f"| `tempo-kit serve` (batched), {setup['clients']} clients | {s['questions_per_s']} | {s['p50_s']} | {s['p95_s']} "
        f"| {s['cache_hit_rate']} | {s['mean_batch']} / {s['largest_batch']} | {s['server_peak_rss_gib']} |",
        "",
        f"Batched over the queue: **{r['batched_over_queue']}×** questions/s. Over the uncached baseline: batched "
        f"**{r['speedup_questions_per_s']}×**, queue {r['queue_speedup_questions_per_s']}× (goal: {r['cpu_goal']}). "
        f"Answers equal to the baseline's: batched {r['answers_equal']}/{r['answers_total']}, queue "
        f"{r['queue_answers_equal']}/{r['answers_total']}.",
        f"GPU goal (a device run): {r['gpu_goal']}.",
        "",
    ])


if __name__ == "__main__":
    main()
