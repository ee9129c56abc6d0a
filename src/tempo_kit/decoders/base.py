"""The Decoder interface: the global LLM that reads the assembled sequence."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from torch import Tensor, nn


class Decoder(nn.Module, ABC):
    """A causal language model driven by ``inputs_embeds``.

    The model assembles text embeddings (from :meth:`embed`) and projected memory tokens into one
    sequence; the decoder turns it into a loss (training) or generated ids (inference).
    Implementations register with ``@DECODERS.register("name")``.
    """

    #: width d_llm of the input embeddings
    hidden_size: int
    #: the tokenizer matching :meth:`embed` (a Hugging Face tokenizer)
    tokenizer: Any

    @abstractmethod
    def embed(self, input_ids: Tensor) -> Tensor:
        """Input embeddings ``[..., d_llm]`` of token ids ``[...]``."""

    @abstractmethod
    def forward(
        self,
        inputs_embeds: Tensor,
        attention_mask: Tensor | None,
        labels: Tensor | None = None,
        position_ids: Tensor | None = None,
    ) -> Any:
        """Run the LLM; returns an object with ``.loss`` (when labels are given) and ``.logits``.

        Packed rows (:mod:`tempo_kit.model.packing`) come with ``attention_mask=None`` and
        ``position_ids`` restarting at each sample; only a decoder whose :meth:`packing_problem` is
        ``None`` is given them.
        """

    def packing_problem(self) -> str | None:
        """Why this decoder cannot train on packed rows, or ``None`` when it can (default: cannot)."""
        return f"{type(self).__name__} does not declare support for packed rows"

    @abstractmethod
    def generate(self, inputs_embeds: Tensor, attention_mask: Tensor, **generation_kwargs: Any) -> Tensor:
        """Generate new token ids ``[B, N]`` (the prompt not included) from embedded prompts."""
