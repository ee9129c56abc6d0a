"""Samples → :class:`~tempo_kit.types.TempoBatch`.

* ``segments``: each sample's :class:`~tempo_kit.types.Segments`, in order; ``len(s)`` is its
  segment count, and the model flattens them for the compressor. (Samples keep their own frame size,
  so they are not stacked into one tensor.)
* ``queries``: the compressor's query. ``mode="train"``: the human turns, joined as
  ``Context turn 1: …`` when there are several (compatibility §4). ``mode="eval"``: the last human turn,
  the question being asked.
* ``input_ids`` / ``labels`` / ``attention_mask``: the decoder's ChatML prompt
  (:func:`~tempo_kit.model.prompts.encode_decoder_prompt`), right-padded. ``train``: the whole
  conversation, only assistant tokens supervised. ``eval``: the conversation up to the last human
  turn plus the generation prompt; labels all ignored. A text-only sample has no visual placeholder.
* ``answers``: the row's ``answer`` if it has one, else the last assistant turn.
* ``segment_labels``: each sample's relevance targets from its ``relevant_spans`` (or ``None``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch

from tempo_kit.data.dataset import Sample
from tempo_kit.model.prompts import compressor_query, encode_decoder_prompt
from tempo_kit.types import IGNORE_INDEX, TempoBatch

CollateMode = Literal["train", "eval"]


class TempoCollator:
    """Callable ``collate_fn`` turning a list of :class:`Sample` into a :class:`TempoBatch`.

    Args:
        tokenizer: the decoder's tokenizer (Hugging Face).
        mode: ``"train"`` (full conversation, labels) or ``"eval"`` (prompt up to the question).
        max_length: if set, longer rows are cut on the right (text only; the visual placeholder
            sits near the start and is kept).
        pad_token_id: padding id (default: the tokenizer's pad, else its end-of-sequence token).
    """

    def __init__(
        self,
        tokenizer: Any,
        mode: CollateMode = "train",
        max_length: int | None = None,
        pad_token_id: int | None = None,
    ):
        if mode not in ("train", "eval"):
            raise ValueError(f"mode must be 'train' or 'eval', got {mode!r}")
        self.tokenizer = tokenizer
        self.mode = mode
        self.max_length = max_length
        if pad_token_id is None:
            pad_token_id = (
                tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
            )
        self.pad_token_id = int(pad_token_id)

    def query(self, sample: Sample) -> str:
        if self.mode == "train":
            return compressor_query(sample.turns)
        last_user = [t for t in sample.turns if t.role == "user"][-1]
        return compressor_query([last_user])

    def encode(self, sample: Sample) -> tuple[torch.Tensor, torch.Tensor]:
        has_visual = sample.kind != "text"
        if self.mode == "train":
            return encode_decoder_prompt(self.tokenizer, sample.turns, has_visual=has_visual)
        last_user = max(i for i, t in enumerate(sample.turns) if t.role == "user")
        ids, _ = encode_decoder_prompt(
            self.tokenizer, sample.turns[: last_user + 1], has_visual=has_visual, add_generation_prompt=True
        )
        return ids, torch.full_like(ids, IGNORE_INDEX)

    @staticmethod
    def answer(sample: Sample) -> str | None:
        if sample.answer is not None:
            return sample.answer
        replies = [t.text for t in sample.turns if t.role == "assistant"]
        return replies[-1] if replies else None

    def __call__(self, samples: Sequence[Sample]) -> TempoBatch:
        if not samples:
            raise ValueError("cannot collate an empty list of samples")
        encoded = [self.encode(s) for s in samples]
        if self.max_length is not None:
            encoded = [(ids[: self.max_length], labels[: self.max_length]) for ids, labels in encoded]
        length = max(len(ids) for ids, _ in encoded)
        input_ids = torch.full((len(samples), length), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(samples), length), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((len(samples), length), dtype=torch.long)
        for row, (ids, row_labels) in enumerate(encoded):
            input_ids[row, : len(ids)] = ids
            labels[row, : len(ids)] = row_labels
            attention_mask[row, : len(ids)] = 1
        return TempoBatch(
            segments=[s.segments for s in samples],
            queries=[self.query(s) for s in samples],
            input_ids=input_ids,
            labels=labels,
            attention_mask=attention_mask,
            ids=[s.id for s in samples],
            answers=[self.answer(s) for s in samples],
            segment_labels=[s.segment_labels for s in samples],
        )
