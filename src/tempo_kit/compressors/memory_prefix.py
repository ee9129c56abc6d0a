"""The memory-token core with a prefix cache (:mod:`tempo_kit.compressors.prefix_cache`).

Only families whose adapter declares ``prefix_cache = True`` derive from this class: it is what
makes a compressor a :class:`~tempo_kit.compressors.prefix_cache.PrefixCaching` one, so a family
that cannot cache (its question sits before the visual block, or its cache format differs) is
never offered to a session as one.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch
from torch import nn

from tempo_kit.compressors.inputs import validate_inputs
from tempo_kit.compressors.memory import MemoryTokenCompressor
from tempo_kit.compressors.prefix_cache import PrefixCompression, SegmentPrefix, stack_left_padded
from tempo_kit.errors import ConfigError
from tempo_kit.types import Segments


class PrefixCachedMemoryCompressor(MemoryTokenCompressor):
    """:class:`MemoryTokenCompressor` plus the two methods of the prefix-cache protocol."""

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        family = cls.__dict__.get("family")
        if family is not None and not family.prefix_cache:
            raise TypeError(f"{cls.__name__}: family {family.name!r} declares prefix_cache = False")

    def encode_prefixes(
        self, segments: Segments, indices: Sequence[int], system_prompt: str | None = None
    ) -> list[SegmentPrefix]:
        """Keys and values of each segment's question-independent prefix (vision tower included).

        The prefix holds the system prompt (:meth:`prompt_for` ``system_prompt``), so a cache is
        only valid for that prompt.
        """
        validate_inputs([segments], ["prefix"])
        device = self.memory_tokens.device
        adapter = self.adapter
        visuals = adapter.encode_visual([segments], [(0, j) for j in indices], device)
        prompt = self.prompt_for(system_prompt)
        sequences = [adapter.prefix_ids(v, prompt) for v in visuals]
        width = max(len(s) for s in sequences)
        input_ids = torch.full((len(sequences), width), self.pad_token_id, dtype=torch.long, device=device)
        attention_mask = torch.zeros_like(input_ids)
        for row, ids in enumerate(sequences):
            input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long, device=device)
            attention_mask[row, : len(ids)] = 1
        visual = adapter.visual_inputs(visuals, device)
        position_ids = adapter.positions(self.svlm, input_ids, attention_mask, visual)
        out = self.svlm(
            inputs_embeds=self.svlm.get_input_embeddings()(input_ids),
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=True,
            **visual,
        )
        cache = out.cache if hasattr(out, "cache") else out.past_key_values
        prefixes = []
        for row, ids in enumerate(sequences):
            length = len(ids)
            keys = tuple(layer.keys[row, :, :length].clone() for layer in cache.layers)
            values = tuple(layer.values[row, :, :length].clone() for layer in cache.layers)
            prefixes.append(SegmentPrefix(keys, values, adapter.next_position(position_ids, row, length)))
        return prefixes

    def compress_with_prefixes(
        self, prefixes: Sequence[SegmentPrefix], queries: Sequence[str]
    ) -> PrefixCompression:
        """Memory and relevance from cached prefixes: only question + generation prompt + memory run."""
        from transformers import DynamicCache

        if len(prefixes) != len(queries):
            raise ConfigError(f"got {len(prefixes)} cached prefixes but {len(queries)} queries; pass one each")
        device = self.memory_tokens.device
        layers, prefix_mask = stack_left_padded(prefixes, device)
        suffixes = [self.adapter.suffix_ids(query) for query in queries]
        input_ids, suffix_mask, memory_mask, last_real = self._pad(suffixes, device)
        start = torch.tensor([p.next_position for p in prefixes], device=device)
        position_ids = self.adapter.continued_positions(start, input_ids.shape[1])
        embeds = self._with_memory(self.svlm.get_input_embeddings()(input_ids), memory_mask)
        hidden = self.svlm(
            inputs_embeds=embeds,
            attention_mask=torch.cat([prefix_mask, suffix_mask], dim=1),
            position_ids=position_ids,
            use_cache=True,
            **{cache_argument(self.svlm): DynamicCache(ddp_cache_data=layers)},
        ).last_hidden_state
        memory, relevance = self._read_out(hidden, memory_mask, last_real)
        return PrefixCompression(memory, relevance, tokens=int(suffix_mask.sum()), row_tokens=suffix_mask.sum(1).tolist())


def cache_argument(model: nn.Module) -> str:
    """The key/value-cache argument of a Hugging Face forward (``past_key_values`` before transformers 5.x)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
