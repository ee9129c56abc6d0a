"""Tokens out of the LLM as they are generated, as text pieces for server-sent events.

``TempoPipeline.answer`` passes extra keywords on to ``transformers``' ``generate``, so a
:class:`~transformers.TextStreamer` (``streamer=``) sees each new token; in a batch of several
questions each row gets its own (:class:`~tempo_kit.inference.batched.RowStreamers`), and a
client that has gone stops its own row (:class:`~tempo_kit.inference.batched.RowStops`). The
pieces are stripped as the final answer is (``TempoModel.generate`` strips it), so the streamed
text joins to exactly the non-streamed answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transformers import TextStreamer


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
