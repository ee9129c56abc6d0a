"""Table 2's results as text: the ordering check, the markdown file, the plot and the docs section."""

from __future__ import annotations

from pathlib import Path

from table2_eval import ALLOCATORS

#: the Table 2 section of the docs page lies between these lines (the script rewrites it)
DOCS_BEGIN = "<!-- table2_router.py: begin (written by the script, do not edit) -->"
DOCS_END = "<!-- table2_router.py: end -->"
#: the plot the docs section shows, relative to the docs page's folder
DOCS_PLOT = "assets/table2-router-cpu.png"
#: Table 2B's claimed order, best first: each group's worst interval must clear the next group's best
ORDER = (("top-k", "ATA (released)"), ("{uniform}",), ("random",), ("adversarial",))


def check_ordering(document: dict) -> dict[str, dict[str, bool]]:
    """Per budget and per uniform baseline: does each group's lowest Wilson bound clear the next group's highest?"""
    rows = document["summary"]["rows"]
    out: dict[str, dict[str, bool]] = {}
    for budget in [int(b) for b in document["args"]["budgets"].split(",")]:
        for uniform in ("subsample (paper's uniform)", "uniform (even split)"):
            groups = [[name.format(uniform=uniform) for name in group] for group in ORDER]
            bounds = [[rows[f"{name}|{budget}"]["accuracy"] for name in group] for group in groups]
            holds = all(min(a["low"] for a in upper) > max(b["high"] for b in lower)
                        for upper, lower in zip(bounds, bounds[1:]))  # fmt: skip
            out.setdefault(str(budget), {})[uniform] = holds
    return out


def _acc(stat: dict) -> str:
    return f"{stat['mean']:.3f} [{stat['low']:.3f}, {stat['high']:.3f}] ({stat['seed_min']:.2f}–{stat['seed_max']:.2f})"


def tables(document: dict) -> list[str]:
    """The result tables (shared by the results file and the docs section)."""
    summary, args = document["summary"], document["args"]
    seeds = len(document["seeds"])
    lines = ["| allocator | budget | accuracy | needle tokens (of k_max) |", "|---|---|---|---|"]
    for row in summary["rows"].values():
        tokens = row["needle_tokens"]
        lines.append(f"| {row['allocator']} | {row['budget']} | {_acc(row['accuracy'])} | "
                     f"{tokens['mean']:.1f} ({tokens['seed_min']:.1f}–{tokens['seed_max']:.1f}) |")  # fmt: skip
    lines += ["", "Ordering at each budget (top-k and ATA > uniform > random > adversarial, every Wilson interval "
              "disjoint from the next group's):", ""]  # fmt: skip
    for budget, checks in document["ordering"].items():
        cells = ", ".join(
            f"with {name}: **{'holds' if ok else 'does not hold'}**" for name, ok in checks.items()
        )
        lines.append(f"- B={budget}: {cells}")
    kinds = list(summary["routing"])
    lines += ["", f"**Routing**: mean per-video AUROC against the asked segment (mean of {seeds} seeds, range), on "
              "held-out videos where every segment shows a shape (only the question tells the asked one) and on "
              f"the Table 2 videos ({args['distractors']} other shapes, the rest background):", "",
              "| scorer | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]  # fmt: skip
    for name in summary["routing"][kinds[0]]:
        cells = [summary["routing"][k][name] for k in kinds]
        lines.append(f"| {name} | " + " | ".join(f"{c['mean']:.3f} ({c['seed_min']:.3f}–{c['seed_max']:.3f})"
                                                 for c in cells) + " |")  # fmt: skip
    lines += ["", f"**Accuracy vs the needle's tokens** (the needle segment keeps n tokens, every other "
              f"segment its k_min={args['k_min']} anchor):", "", "| needle tokens | accuracy |", "|---|---|"]  # fmt: skip
    for tokens, stat in summary["needle_curve"].items():
        lines.append(f"| {tokens} | {_acc(stat)} |")
    budget = args["budgets"].split(",")[0]
    lines += ["", f"**Router quality sweep** at B={budget}: Gaussian noise added to the trained relevance's logits "
              "(× their spread; inf = noise only):", "", "| noise | AUROC | top-k | ATA (released) |",
              "|---|---|---|---|"]  # fmt: skip
    for level, stat in summary["sweep"].items():
        lines.append(
            f"| {level} | {stat['auroc']:.3f} | {_acc(stat['top-k'])} | {_acc(stat['ATA (released)'])} |"
        )
    return lines


def markdown(document: dict) -> str:
    args = document["args"]
    seeds = document["seeds"]
    times = {k: sum(s["times"][k] for s in seeds) / len(seeds) for k in seeds[0]["times"]}
    lines = [
        "# Table 2 on CPU: accuracy per allocator with a question-dependent router",
        "",
        f"Commit `{document['commit']}`. Tiny random-initialised Qwen3-VL / Qwen3 checkpoints; seeds "
        f"{args['seeds']}, {args['test_videos']} held-out videos each. Every video is {args['segments']} segments "
        f"(2 s, 4 frames at 2 fps, {args['size'].replace(',', 'x')} frames) spliced from held-out segments: one "
        f"shows the striped shape the question names, {args['distractors']} show other shapes, the rest background; "
        f"the question asks the named shape's {args['stripes']} stripe colours (exact answer; chance "
        f"{8 ** -args['stripes']:.3f}). k_max {args['k_max']}, k_min {args['k_min']}; all tokens = "
        f"{args['segments'] * args['k_max']}.",
        "",
        "```bash",
        document["command"],
        "```",
        "",
        f"Joint stage (answer + relevance, every part): {args['joint_steps']} steps of {args['joint_batch']} "
        f"videos of {args['joint_segments']} segments (the first {args['joint_single']:.0%} one segment); answer "
        f"stage (projector + LLM on the frozen compressor): {args['answer_steps']} steps of "
        f"{args['answer_batch']} videos, curriculum {args['curriculum']}, allocation augmentation {args['augment']}. "
        "Accuracy: pooled mean over all seeds' videos, [95 % Wilson interval], (range of the seed means).",
        "",
        *tables(document),
        "",
        "Mean wall time per seed on a shared 2-core machine (other jobs running): "
        + ", ".join(f"{k.removesuffix('_s').replace('_', ' ')} {v:.0f} s" for k, v in times.items())
        + f"; whole run {document['wall_s']:.0f} s.",
        "",
    ]
    return "\n".join(lines)


def update_docs(page: Path, document: dict) -> None:
    """Rewrite the page's Table 2 section (between :data:`DOCS_BEGIN` and :data:`DOCS_END`)."""
    from tempo_kit.atomic import write_text

    text = page.read_text()
    if DOCS_BEGIN not in text or DOCS_END not in text:
        raise SystemExit(
            f"{page}: no Table 2 section markers ({DOCS_BEGIN!r} … {DOCS_END!r}); add them first"
        )
    head, rest = text.split(DOCS_BEGIN, 1)
    _, tail = rest.split(DOCS_END, 1)
    body = [DOCS_BEGIN, "", f"Commit `{document['commit']}`, seeds {document['args']['seeds']}:", "",
            "```bash", document["command"], "```", "",
            f"![accuracy per allocator, against router quality and against the needle's tokens]({DOCS_PLOT})", "",
            *tables(document), "", DOCS_END]  # fmt: skip
    write_text(page, head + "\n".join(body) + tail)


def plot(document: dict, path: Path) -> None:
    """Accuracy per allocator at each budget, and accuracy against router quality and needle tokens."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    summary = document["summary"]
    budgets = [int(b) for b in document["args"]["budgets"].split(",")]
    fig, axes = plt.subplots(1, len(budgets) + 2, figsize=(4.0 * (len(budgets) + 2), 4.0))
    names = ["all tokens", *ALLOCATORS]
    full = document["args"]["segments"] * document["args"]["k_max"]
    for ax, budget in zip(axes, budgets, strict=False):
        stats = [summary["rows"][f"{n}|{full if n == 'all tokens' else budget}"]["accuracy"] for n in names]
        means = [s["mean"] for s in stats]
        errors = [
            [max(0.0, s["mean"] - s["low"]) for s in stats],
            [max(0.0, s["high"] - s["mean"]) for s in stats],
        ]
        ax.bar(range(len(names)), means, yerr=errors, capsize=2, color="#1f5fa8")
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=40, ha="right", fontsize=7)
        ax.set_title(f"accuracy at budget {budget}", fontsize=9)
        ax.set_ylim(0, 1.05)
    ax = axes[len(budgets)]
    sweep = summary["sweep"]
    levels = list(sweep)
    xs = [sweep[v]["auroc"] for v in levels]
    for name, colour in (("top-k", "#d62728"), ("ATA (released)", "#1f5fa8")):
        ax.plot(xs, [sweep[v][name]["mean"] for v in levels], "o-", color=colour, label=name)
    ax.set_xlabel("router AUROC (noise added to trained relevance)", fontsize=8)
    ax.set_title(f"accuracy vs router quality, B={budgets[0]}", fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    ax = axes[len(budgets) + 1]
    curve = summary["needle_curve"]
    ax.plot([int(t) for t in curve], [curve[t]["mean"] for t in curve], "o-", color="#2ca02c")
    ax.set_xlabel("tokens kept by the needle segment", fontsize=8)
    ax.set_title("accuracy vs needle tokens", fontsize=9)
    ax.set_ylim(0, 1.05)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
