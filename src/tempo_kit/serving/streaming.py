"""Tokens out of the LLM as they are generated, and a stop when the client has gone.

``TempoPipeline.answer`` passes extra keywords on to ``transformers``' ``generate``, so a
:class:`~transformers.TextStreamer` (``streamer=``) sees each new token and a
:class:`~transformers.StoppingCriteria` (``stopping_criteria=``) can end the answer early; no hook
in the kit is needed. The pieces are stripped as the final answer is (``TempoModel.generate``
strips it), so the streamed text joins to exactly the non-streamed answer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList, TextStreamer


class StrippedPieces:
    """Pass text pieces on with the answer's leading and trailing whitespace held back."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self.emit = emit
        self.started = False
        self.held = ""

    def __call__(self, text: str) -> None:
        if not self.started:
            text = text.lstrip()
            if not text:
                return
            self.started = True
        text = self.held + text
        body = text.rstrip()
        self.held = text[len(body) :]
        if body:
            self.emit(body)


class PieceStreamer(TextStreamer):
    """``transformers``' text streamer, handing each finished piece to a callback instead of stdout."""

    def __init__(self, tokenizer: Any, on_text: Callable[[str], None]) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.on_text = StrippedPieces(on_text)

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if text:
            self.on_text(text)


class StopWhenCancelled(StoppingCriteria):
    """Ends generation at the next token once ``cancelled`` is set (the client disconnected)."""

    def __init__(self, cancelled: threading.Event) -> None:
        self.cancelled = cancelled

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self.cancelled.is_set(), dtype=torch.bool, device=input_ids.device)


def generation_hooks(tokenizer: Any, cancelled: threading.Event, on_text: Callable[[str], None] | None) -> dict:
    """The ``generate`` keywords for one request: stop on ``cancelled``, stream to ``on_text``."""
    hooks: dict[str, Any] = {"stopping_criteria": StoppingCriteriaList([StopWhenCancelled(cancelled)])}
    if on_text is not None:
        hooks["streamer"] = PieceStreamer(tokenizer, on_text)
    return hooks
