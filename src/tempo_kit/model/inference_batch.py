"""Questions → a :class:`~tempo_kit.types.TempoBatch` of generation prompts for ``TempoModel.generate``."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tempo_kit.errors import ConfigError
from tempo_kit.model.prompts import Turn, encode_decoder_prompt
from tempo_kit.types import IGNORE_INDEX, Segments, TempoBatch


def inference_batch(
    tokenizer,
    segments: Sequence[Segments],
    questions: Sequence[str],
    ids: Sequence[str] | None = None,
    histories: Sequence[Sequence[Turn]] | None = None,
) -> TempoBatch:
    """A :class:`TempoBatch` of generation prompts, one question per sample (the compressor query too).

    A sample whose segments have ``kind="text"`` gets a prompt without the visual placeholder.
    ``histories`` gives each sample's earlier turns (user, assistant, …), encoded as chat turns
    before its question, the visual sequence in the first user turn.
    """
    if len(segments) != len(questions):
        raise ConfigError(
            f"{len(segments)} samples but {len(questions)} questions; give one question per sample"
        )
    histories = histories if histories is not None else [()] * len(questions)
    encoded = [
        encode_decoder_prompt(
            tokenizer, [*history, Turn("user", q)], has_visual=s.kind != "text", add_generation_prompt=True
        )[0]
        for s, q, history in zip(segments, questions, histories)
    ]
    length = max(len(e) for e in encoded)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(encoded), length), pad, dtype=torch.long)
    mask = torch.zeros_like(input_ids)
    for row, e in enumerate(encoded):
        input_ids[row, : len(e)] = e
        mask[row, : len(e)] = 1
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    return TempoBatch(
        segments=list(segments),
        queries=list(questions),
        input_ids=input_ids,
        labels=labels,
        attention_mask=mask,
        ids=list(ids) if ids is not None else [str(i) for i in range(len(segments))],
    )
