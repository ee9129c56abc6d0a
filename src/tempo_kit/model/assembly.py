"""Sequence assembly: prompt ids + per-segment (time tag, memory tokens) → the LLM's ``inputs_embeds``.

The global LLM input (compatibility §4) is the ChatML prompt with one placeholder id where VIDEO goes.
VIDEO is, for each kept segment in time order, the LLM's own embeddings of the time-tag text
(``<{t:.1f} seconds>``, tokenised without special tokens) followed by that segment's projected
memory tokens. Segments given 0 tokens are dropped together with their tag. Every inserted
position is labelled :data:`~tempo_kit.types.IGNORE_INDEX`.

Context cap (compatibility §4): text is never cut; when text + visual exceed the room, the *visual
sequence is cut at its end*. The room is ``max_context − reserve − text``, ``reserve`` being the
answer's room at inference (the released ``inference_max_length``, 16) and 0 in training. Two
rules, ``context_cut``:

* ``"released"`` (default): the visual rows (tag embeddings and memory tokens, in order) are cut
  to the room as raw rows, as the released code slices them — even inside a segment, even inside
  a tag, so the last kept segment may keep part of its tag and none of its tokens.
* ``"segments"``: segments are kept in time order while their tag and tokens fit; the first that
  does not fit keeps the head of its tokens that still fit after its whole tag (it is dropped with
  its tag if not even one token fits), and every later segment is dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from tempo_kit.defaults import DEFAULT_ANSWER_ROOM, DEFAULT_MAX_CONTEXT, DEFAULT_TRAIN_MAX_CONTEXT  # noqa: F401 (re-exported)
from tempo_kit.errors import ConfigError, check_choice
from tempo_kit.time_tags import TIME_TAG_TEMPLATE, check_time_tag_template, format_time_tag
from tempo_kit.types import IGNORE_INDEX, VISUAL_PLACEHOLDER_ID

#: How the cap cuts the visual sequence (module docstring).
CONTEXT_CUTS = ("released", "segments")
DEFAULT_CONTEXT_CUT = "released"


@dataclass
class VisualSequence:
    """One sample's kept memory, already projected to the LLM width.

    Attributes:
        tokens: ``[Σk, d_llm]`` kept tokens, segments concatenated in segment order.
        counts: long ``[S]`` tokens kept per segment (``counts.sum() == len(tokens)``).
        times: ``[S]`` segment time tags in seconds.
        tagged: whether each segment gets a time tag (video: yes; a single image has no time).
    """

    tokens: Tensor
    counts: Tensor
    times: Tensor
    tagged: bool = True

    def __post_init__(self) -> None:
        if self.counts.ndim != 1 or self.times.shape != self.counts.shape:
            raise ValueError(
                f"VisualSequence counts {tuple(self.counts.shape)} and times {tuple(self.times.shape)} must both be [S]"
            )
        if int(self.counts.sum()) != self.tokens.shape[0]:
            raise ValueError(
                f"VisualSequence counts sum to {int(self.counts.sum())} but tokens has {self.tokens.shape[0]} rows"
            )


@dataclass
class TokenStats:
    """Where one sample's LLM input positions went."""

    text: int  #: prompt (and answer) text tokens
    tags: int  #: time-tag tokens
    visual: int  #: memory tokens inserted
    cut: int = 0  #: memory tokens removed by the context cap

    @property
    def total(self) -> int:
        return self.text + self.tags + self.visual


@dataclass
class AssembledInputs:
    """A padded batch for the decoder.

    Attributes:
        inputs_embeds: ``[B, L, d_llm]``; padding positions are zeros.
        attention_mask: long ``[B, L]``, 1 on real positions.
        labels: long ``[B, L]`` or ``None``; ``IGNORE_INDEX`` on inserted and padding positions.
        counts: per sample, long ``[S]`` tokens actually inserted per segment after the cap
            (``None`` for a sample without a visual sequence).
        stats: per sample :class:`TokenStats`.
    """

    inputs_embeds: Tensor
    attention_mask: Tensor
    labels: Tensor | None
    counts: list[Tensor | None]
    stats: list[TokenStats]


def fit_to_context(
    tag_lengths: Sequence[int], counts: Sequence[int], room: int, cut: str = DEFAULT_CONTEXT_CUT
) -> list[tuple[int, int]]:
    """``(tag rows, tokens)`` kept per segment so that ``Σ(tag + k) ≤ room`` (module docstring).

    Segments are taken in the given (time) order; a segment with 0 tokens costs nothing (its tag is
    dropped too). ``cut="released"`` slices the rows (a tag may be cut); ``"segments"`` keeps a
    segment's whole tag with at least one of its tokens, or nothing of it.
    """
    check_choice(cut, CONTEXT_CUTS, "context_cut")
    fitted: list[tuple[int, int]] = []
    left = max(room, 0)
    for tag, k in zip(tag_lengths, counts):
        k = int(k)
        if k <= 0 or left <= 0:
            fitted.append((0, 0))
        elif tag + k <= left:
            fitted.append((tag, k))
            left -= tag + k
        elif cut == "released":
            fitted.append((min(tag, left), max(0, left - tag)))
            left = 0
        else:
            kept = max(0, left - tag)
            fitted.append((tag if kept else 0, kept))
            left = 0
    return fitted


class SequenceAssembler:
    """Builds the LLM input from prompt ids and per-sample :class:`VisualSequence` records.

    Args:
        tokenizer: the decoder's tokenizer (tags are tokenised with it, without special tokens).
        embed: the decoder's input-embedding function ``ids → [..., d_llm]``.
        time_tag_template: ``str.format`` template with field ``t`` (seconds), e.g.
            ``"<{t:.1f} seconds>"`` (released weights) or ``"<t={t:.1f}s>"`` (paper notation).
        tag_cache: a dict to keep tag tokenisations in across assemblers (tags repeat).
    """

    def __init__(
        self,
        tokenizer: Any,
        embed: Callable[[Tensor], Tensor],
        time_tag_template: str = TIME_TAG_TEMPLATE,
        tag_cache: dict[str, list[int]] | None = None,
    ) -> None:
        check_time_tag_template(time_tag_template)
        self.tokenizer = tokenizer
        self.embed = embed
        self.time_tag_template = time_tag_template
        self._tag_cache: dict[str, list[int]] = {} if tag_cache is None else tag_cache

    def tag_ids(self, seconds: float) -> list[int]:
        """Token ids of one segment's time tag (cached: tags repeat across samples)."""
        text = format_time_tag(seconds, self.time_tag_template)
        if text not in self._tag_cache:
            self._tag_cache[text] = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return self._tag_cache[text]

    def __call__(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        visuals: Sequence[VisualSequence | None],
        labels: Tensor | None = None,
        *,
        max_context: int = DEFAULT_MAX_CONTEXT,
        reserve: int = 0,
        cut: str = DEFAULT_CONTEXT_CUT,
        padding_side: str = "right",
        sample_ids: Sequence[str] | None = None,
    ) -> AssembledInputs:
        """Assemble a batch; the visual rows fit ``max_context − reserve − text`` (``cut``: module docstring).

        ``input_ids``/``attention_mask``/``labels`` are ``[B, L]`` (any padding side; real tokens
        are those with mask 1). A sample whose ``visuals[b]`` is a :class:`VisualSequence` must
        hold exactly one :data:`VISUAL_PLACEHOLDER_ID`; a sample with ``None`` must hold none.
        ``padding_side`` is ``"right"`` for training and ``"left"`` for generation.
        """
        if padding_side not in ("left", "right"):
            raise ConfigError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        if len(visuals) != input_ids.shape[0]:
            raise ValueError(f"{len(visuals)} visual sequences for a batch of {input_ids.shape[0]} prompts")

        plans = [
            self._plan(b, input_ids, attention_mask, labels, visual, max_context, reserve, cut, sample_ids)
            for b, visual in enumerate(visuals)
        ]
        text_ids = [piece for plan in plans for kind, piece, _ in plan.pieces if kind == "ids"]
        flat = torch.cat(text_ids) if text_ids else torch.zeros(0, dtype=torch.long)
        text_embeds = self.embed(flat.to(input_ids.device))
        device, dtype = text_embeds.device, text_embeds.dtype  # the LLM's embedding device and dtype
        embedded = iter(text_embeds.split([len(t) for t in text_ids]))

        sequences, label_rows = [], []
        for plan in plans:
            parts = [next(embedded) if kind == "ids" else piece for kind, piece, _ in plan.pieces]
            sequences.append(torch.cat([p.to(device=device, dtype=dtype) for p in parts]))
            label_rows.append(torch.cat([piece_labels for _, _, piece_labels in plan.pieces]).to(device))
        return self._pad(sequences, label_rows if labels is not None else None, plans, padding_side)

    def _plan(self, b, input_ids, attention_mask, labels, visual, max_context, reserve, cut, sample_ids) -> _Plan:
        name = f"sample {sample_ids[b]!r}" if sample_ids and b < len(sample_ids) else f"sample {b}"
        keep = attention_mask[b].bool()
        ids = input_ids[b][keep]
        row_labels = labels[b][keep] if labels is not None else torch.full_like(ids, IGNORE_INDEX)
        where = (ids == VISUAL_PLACEHOLDER_ID).nonzero().flatten().tolist()
        text_len = len(ids) - len(where)
        if text_len > max_context:
            raise ConfigError(
                f"{name}: the prompt text alone is {text_len} tokens, over max_context={max_context}; "
                "text is never cut, so shorten the prompt or raise max_context"
            )
        if visual is None:
            if where:
                raise ConfigError(
                    f"{name}: input_ids hold the visual placeholder {VISUAL_PLACEHOLDER_ID} but the sample has no "
                    "visual sequence (a text-only sample); encode its prompt with has_visual=False"
                )
            return _Plan([("ids", ids, row_labels)], None, TokenStats(text=text_len, tags=0, visual=0))
        if len(where) != 1:
            raise ConfigError(
                f"{name}: a visual sample needs exactly one visual placeholder id {VISUAL_PLACEHOLDER_ID} in "
                f"input_ids, found {len(where)}; encode its prompt with has_visual=True"
            )
        pos = where[0]
        order = torch.argsort(visual.times.detach().cpu(), stable=True).tolist()
        counts = visual.counts.detach().cpu().tolist()
        chunks = visual.tokens.split(counts)
        tags = [self.tag_ids(float(visual.times[i])) if visual.tagged else [] for i in order]
        room = max_context - reserve - text_len
        fitted = fit_to_context([len(t) for t in tags], [counts[i] for i in order], room, cut)

        ignore = lambda n: torch.full((n,), IGNORE_INDEX, dtype=torch.long)  # noqa: E731
        pieces: list[tuple[str, Tensor, Tensor]] = [("ids", ids[:pos], row_labels[:pos])]
        final = [0] * len(counts)
        tag_total = 0
        for seg, tag, (tag_rows, k) in zip(order, tags, fitted):
            if tag_rows:
                pieces.append(("ids", torch.tensor(tag[:tag_rows], dtype=torch.long), ignore(tag_rows)))
                tag_total += tag_rows
            if k:
                final[seg] = k
                pieces.append(("embeds", chunks[seg][:k], ignore(k)))
        pieces.append(("ids", ids[pos + 1 :], row_labels[pos + 1 :]))
        visual_total = sum(final)
        stats = TokenStats(text=text_len, tags=tag_total, visual=visual_total, cut=sum(counts) - visual_total)
        return _Plan(pieces, torch.tensor(final, dtype=torch.long), stats)

    @staticmethod
    def _pad(sequences, label_rows, plans, padding_side) -> AssembledInputs:
        length = max(len(s) for s in sequences)
        batch, dim = len(sequences), sequences[0].shape[-1]
        ref = sequences[0]
        embeds = ref.new_zeros(batch, length, dim)
        mask = torch.zeros(batch, length, dtype=torch.long, device=ref.device)
        out_labels = None
        if label_rows is not None:
            out_labels = torch.full((batch, length), IGNORE_INDEX, dtype=torch.long, device=ref.device)
        for b, seq in enumerate(sequences):
            span = slice(0, len(seq)) if padding_side == "right" else slice(length - len(seq), length)
            embeds[b, span] = seq
            mask[b, span] = 1
            if out_labels is not None:
                out_labels[b, span] = label_rows[b]
        return AssembledInputs(embeds, mask, out_labels, [p.counts for p in plans], [p.stats for p in plans])


@dataclass
class _Plan:
    pieces: list[tuple[str, Tensor, Tensor]]
    counts: Tensor | None
    stats: TokenStats
