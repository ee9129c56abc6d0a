"""The allocation-over-time figure: where in the video the budget went, and why.

Two panels share a time axis in seconds: a heat strip of the tokens each segment kept (the
relevance score written under it when there is room), and the tokens-per-segment curve with the
``k_min`` anchor and ``k_max`` ceiling as dashed lines and the relevance score on a second axis —
the picture the released demo shows next to its answer.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import torch

from tempo_kit.types import Allocation

#: Colours of the figure (tokens curve, relevance curve, k_min/k_max lines).
TOKENS_COLOUR = "#1f5fa8"
RELEVANCE_COLOUR = "#d9822b"
LIMIT_COLOUR = "#6b6b6b"
HEAT_CMAP = "magma_r"
HIGHLIGHT_COLOUR = "#2a9d3c"


def _segment_edges(times: torch.Tensor, segment_seconds: float | None) -> tuple[list[float], list[float]]:
    """Left/right edges of every segment: centre ± half its length (from the spacing if unknown)."""
    centres = [float(t) for t in times]
    if segment_seconds is None:
        gaps = [b - a for a, b in zip(centres, centres[1:]) if b > a]
        segment_seconds = min(gaps) if gaps else 1.0
    half = segment_seconds / 2
    return [c - half for c in centres], [c + half for c in centres]


def plot_allocation(
    allocation: Allocation,
    path: str | Path,
    *,
    query: str | None = None,
    answer: str | None = None,
    segment_seconds: float | None = None,
    highlight: tuple[float, float] | Sequence[tuple[float, float]] | None = None,
    highlight_label: str = "event",
    dpi: int = 150,
) -> Path:
    """Draw the allocation of one answer into a PNG at ``path`` and return the path.

    Args:
        allocation: counts, relevance and times per segment (from an inference result).
        query: the question, shown in the title.
        answer: the model's answer, shown under the title.
        segment_seconds: length of one segment in seconds (window / sampling fps); inferred from
            the spacing of the segment times when not given.
        highlight: a ``(start, end)`` span in seconds, or a list of them, to shade in both panels,
            e.g. where a benchmark annotates the answer's evidence (``highlight_label`` names it).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize
    from matplotlib.ticker import MaxNLocator

    counts = allocation.counts.detach().cpu().long()
    times = allocation.times.detach().cpu().float()
    if counts.numel() == 0:
        raise ValueError("cannot plot an allocation of 0 segments")
    left, right = _segment_edges(times, segment_seconds)
    start, end = min(left), max(right)

    fig, (strip, curve) = plt.subplots(
        2, 1, figsize=(10, 4.2), sharex=True, gridspec_kw={"height_ratios": [1, 3.2], "hspace": 0.08}
    )
    norm = Normalize(vmin=0, vmax=max(allocation.k_max, 1))
    edges = [*left, right[-1]]
    heat = strip.pcolormesh(
        edges,
        [0, 1],
        counts[None, :].float().numpy(),
        cmap=HEAT_CMAP,
        norm=norm,
        shading="flat",
        rasterized=True,
    )
    strip.set_yticks([])
    strip.set_ylabel("tokens", rotation=0, ha="right", va="center", fontsize=9)
    for side in ("top", "right", "left"):
        strip.spines[side].set_visible(False)
    colourbar = fig.colorbar(heat, cax=strip.inset_axes([1.012, 0.0, 0.012, 1.0]))
    colourbar.set_ticks([0, allocation.k_max])
    colourbar.ax.tick_params(labelsize=7)

    # the curve: a step per segment, so a segment's tokens read as a plateau over its time span
    xs, ys = [], []
    for lo, hi, count in zip(left, right, counts.tolist()):
        xs += [lo, hi]
        ys += [count, count]
    curve.fill_between(xs, ys, color=TOKENS_COLOUR, alpha=0.18, linewidth=0)
    curve.plot(xs, ys, color=TOKENS_COLOUR, linewidth=1.6, label="tokens per segment")
    curve.axhline(allocation.k_max, color=LIMIT_COLOUR, linestyle="--", linewidth=1)
    curve.axhline(allocation.k_min, color=LIMIT_COLOUR, linestyle=":", linewidth=1)
    curve.set_ylim(0, allocation.k_max * 1.32)
    curve.set_xlim(start, end)
    curve.yaxis.set_major_locator(MaxNLocator(integer=True))
    curve.set_xlabel("time (seconds)")
    curve.set_ylabel("tokens")
    curve.grid(axis="y", alpha=0.25)
    for side in ("top",):
        curve.spines[side].set_visible(False)

    if highlight is not None:
        spans = [highlight] if isinstance(highlight[0], (int, float)) else list(highlight)
        for number, (lo, hi) in enumerate((float(a), float(b)) for a, b in spans):
            strip.axvspan(lo, hi, ymin=0, ymax=1, fill=False, edgecolor=HIGHLIGHT_COLOUR, linewidth=1.6)
            label = highlight_label if number == 0 else None
            curve.axvspan(lo, hi, color=HIGHLIGHT_COLOUR, alpha=0.12, linewidth=0, label=label)
    handles, labels = curve.get_legend_handles_labels()
    if allocation.relevance is not None:
        relevance = allocation.relevance.detach().cpu().float()
        twin = curve.twinx()
        twin.plot(
            times,
            relevance,
            color=RELEVANCE_COLOUR,
            linewidth=1.1,
            marker="o",
            markersize=2.5,
            label="relevance",
        )
        twin.set_ylim(0, 1.32)
        twin.set_yticks([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
        twin.set_ylabel("relevance", color=RELEVANCE_COLOUR)
        twin.tick_params(axis="y", colors=RELEVANCE_COLOUR)
        twin.spines["top"].set_visible(False)
        more_handles, more_labels = twin.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    # limit labels go on the top-most axes, boxed, so the relevance curve cannot hide them
    top = fig.axes[-1]
    box = {"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1.0}
    for value, name in ((allocation.k_max, "k_max"), (allocation.k_min, "k_min")):
        top.text(
            start + 0.995 * (end - start),
            value,
            f"{name} = {value}",
            transform=curve.transData,
            ha="right",
            va="bottom",
            fontsize=8,
            color=LIMIT_COLOUR,
            bbox=box,
            zorder=5,
        )
    curve.legend(
        handles, labels, loc="upper left", fontsize=8, frameon=False, ncol=3, bbox_to_anchor=(0, 1.0)
    )

    used = int(counts.sum())
    budget = "no budget" if allocation.budget is None else f"budget {allocation.budget}"
    kept = int((counts > 0).sum())
    summary = f"{used} tokens of {budget} · {kept}/{counts.numel()} segments kept"
    title = textwrap.shorten(query, 110, placeholder="…") if query else "token allocation"
    if answer is not None:
        summary += " · answer: " + (
            textwrap.shorten(answer, 60, placeholder="…") if answer.strip() else "(empty)"
        )
    subtitle = summary
    fig.suptitle(title, fontsize=11, x=0.06, ha="left", y=0.995)
    strip.set_title(subtitle, fontsize=9, loc="left", color="#444444")

    from tempo_kit.atomic import atomic_path

    out = Path(path)
    try:
        with atomic_path(out) as partial:
            fig.savefig(partial, dpi=dpi, bbox_inches="tight", format=out.suffix.lstrip(".").lower() or None)
    finally:
        plt.close(fig)
    return out
