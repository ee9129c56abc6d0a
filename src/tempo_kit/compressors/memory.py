"""Tempo's memory-token compressor on any VLM family (paper Eq. 2, Sec. 3.2–3.3, compatibility §2).

Per segment, the family's sequence [prompt | segment | query | generation prompt] (built by its
:class:`~tempo_kit.compressors.family.FamilyAdapter`) is followed by ``k_max`` learnable memory
tokens. The final hidden states (after the final norm) at the memory positions are the segment's
memory; the hidden state just before the first memory token, read through the LM-head rows of
"Yes" and "No", is its relevance — both from the same forward pass.

How the forward is done: the core builds ``inputs_embeds`` itself (token embeddings with the
memory tokens written after each sequence's last real token), asks the adapter for position ids
(memory tokens count as text) and the pixel arguments, and calls the family's own Hugging Face
model forward. The model runs its own vision tower and scatters the visual features onto its
placeholder positions exactly as for any input of that family; nothing of the model is
re-implemented.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from tempo_kit.compressors.base import DEFAULT_SEGMENT_BATCH_SIZE, Compressor, padded_tokens
from tempo_kit.compressors.family import FamilyAdapter
from tempo_kit.compressors.inputs import K_MAX, check_sizes, validate_inputs
from tempo_kit.compressors.packed import check_packing, pack_call
from tempo_kit.compressors.prompts import compressor_prompt_text
from tempo_kit.compressors.segment_attention import SEGMENT_ATTENTION  # noqa: F401  (registers it)
from tempo_kit.errors import CheckpointError, ConfigError
from tempo_kit.hf import (
    build_from_config,
    building_on_meta,
    initial_tensors,
    load_tensors,
    read_config,
    save_component_folder,
    set_activation_checkpointing,
)
from tempo_kit.hub import local_checkpoint
from tempo_kit.types import CompressorOutput, Segments

#: Tokens whose LM-head rows define the relevance direction (paper Sec. 3.3).
YES_TOKEN, NO_TOKEN = "Yes", "No"


def relevance_direction(
    lm_head_weight: Tensor, tokenizer, yes: str = YES_TOKEN, no: str = NO_TOKEN
) -> Tensor:
    """``w_Yes − w_No`` in float32 from an SVLM LM head ``[V, d]`` (compatibility §2).

    Raises :class:`ConfigError` if either word is not exactly one token of ``tokenizer``.
    """
    ids = []
    for word in (yes, no):
        token_ids = tokenizer(word, add_special_tokens=False)["input_ids"]
        if len(token_ids) != 1:
            raise ConfigError(
                f"the SVLM tokenizer splits {word!r} into {token_ids}; relevance needs it as one token "
                "(Qwen tokenizers do this)"
            )
        ids.append(int(token_ids[0]))
    weight = lm_head_weight.detach()
    return weight[ids[0]].float() - weight[ids[1]].float()


def initial_memory_tokens(embeddings: Tensor, k_max: int) -> Tensor:
    """``k_max`` fresh memory tokens, each dimension drawn from a normal with the mean and standard
    deviation of the SVLM's input-embedding rows (compatibility §2); in the embeddings' dtype."""
    rows = embeddings.detach().float()
    return (torch.randn(k_max, rows.shape[1]) * rows.std(0) + rows.mean(0)).to(embeddings.dtype)


def resolve_prompt(prompt: str) -> str:
    """A prompt name from :data:`~tempo_kit.compressors.prompts.COMPRESSOR_PROMPTS` or a literal system prompt."""
    return compressor_prompt_text(prompt, "compressor prompt")


class MemoryTokenCompressor(Compressor):
    """Tempo's compressor on a Hugging Face checkpoint of the family :attr:`family` names.

    Args:
        pretrained: local folder of a checkpoint of the family (``hf download``). Its LM head is
            read once for the relevance direction and then dropped.
        k_max: memory tokens per segment (paper: 128).
        train_prompt: system prompt while ``self.training``: ``"standard"`` (paper Appendix E),
            ``"routing"``, or any literal text.
        eval_prompt: system prompt in eval mode: ``"routing"`` (standard + the Yes/No instruction
            that elicits the relevance prior) by default.
        prompt: if given, one prompt for both modes (overrides the two above).
        segment_batch_size: segments per forward (micro-batch). Outputs do not depend on it.
        call_token_budget: most tokens one forward may hold, counted as the forward runs them
            (:meth:`call_tokens`: padded, segments × the longest sequence with its memory tokens;
            packed, their sum); ``None``: no token budget.
        pack_segments: run each forward as one packed row, the segments one after another with
            no padding, each attending only to itself (:mod:`tempo_kit.compressors.packed`;
            flash-attention 2's varlen kernels on a GPU, a block-diagonal mask under SDPA).
            Results equal the padded forward's up to float rounding. Off by default: with a
            dense mask, CPU attention runs over the whole row, so it only pays where padding is
            large or attention is varlen (measured in ``benchmarks/bench_call_budget.py``).
        padding_side: ``"right"`` or ``"left"``; memory tokens always follow each sequence's last
            real token, so outputs do not depend on it.
        dtype: parameter dtype (``"auto"``: the checkpoint config's), a :mod:`tempo_kit.dtypes` name.
        attn_implementation: ``"sdpa"``, ``"eager"``, ``"flash_attention_2"`` … (Hugging Face).
        require_prefix_cache: refuse to build unless the family can cache a question-independent
            prefix for follow-up questions (a family that cannot makes sessions recompress).
        **options: the family adapter's own settings (e.g. pixel bounds, a time-tag template).
    """

    #: the VLM family this compressor reads (set by each registered subclass)
    family: ClassVar[type[FamilyAdapter]]
    takes_system_prompt = True
    scores_relevance = True

    def __init__(
        self,
        pretrained: str,
        k_max: int = K_MAX,
        train_prompt: str = "standard",
        eval_prompt: str = "routing",
        prompt: str | None = None,
        segment_batch_size: int = DEFAULT_SEGMENT_BATCH_SIZE,
        call_token_budget: int | None = None,
        padding_side: str = "right",
        dtype: str | torch.dtype = "auto",
        attn_implementation: str | None = "sdpa",
        require_prefix_cache: bool = False,
        pack_segments: bool = False,
        **options: Any,
    ) -> None:
        super().__init__()
        from transformers import AutoTokenizer

        family = self.family
        check_sizes(k_max, segment_batch_size, call_token_budget)
        if padding_side not in ("right", "left"):
            raise ConfigError(f"compressor padding_side must be 'right' or 'left', got {padding_side!r}")
        check_capabilities(family, require_prefix_cache, options)
        check_packing(family, pack_segments, attn_implementation)
        where = f"compressor {family.name!r}"
        path = family_checkpoint(pretrained, family)
        self.pretrained = str(path)
        # two maps, equal only for some families: where the tensors of ``svlm`` sit in the checkpoint
        # files (weights are read and written through it; Qwen2.5-VL's and LLaVA-OneVision's files keep
        # an older layout), and where its modules sit in XForConditionalGeneration (``svlm`` is its
        # ``.model``), which peft adapters are keyed against
        self.hf_module_paths = dict(family.checkpoint_paths)
        self.hf_model_paths = {"svlm": "model"}
        self.k_max = k_max
        self.train_prompt = resolve_prompt(prompt or train_prompt)
        self.eval_prompt = resolve_prompt(prompt or eval_prompt)
        self.segment_batch_size = segment_batch_size
        self.call_token_budget = call_token_budget
        self.pack_segments = pack_segments
        self.padding_side = padding_side
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        config = read_config(path, where)
        #: the family's conventions (not a module: it holds no weights)
        self.adapter = family(path, self.tokenizer, config, **options)
        #: the Hugging Face model without its LM head (vision tower + language model)
        self.svlm = build_from_config(family.model_class()._from_config, config, dtype, attn_implementation, where)
        if pack_segments:  # ``None`` lets transformers choose: check what it chose
            check_packing(family, True, getattr(self.svlm.config, "_attn_implementation", None) or "eager")
        text = family.text_config(self.adapter)
        self.hidden_size = int(text.hidden_size)
        self.tie_word_embeddings = bool(getattr(config, "tie_word_embeddings", False) or text.tie_word_embeddings)
        #: ``w_Yes − w_No`` (float32); set from the weights by :meth:`initial_state_dict`
        self.register_buffer("relevance_direction", torch.empty(self.hidden_size), persistent=True)
        self.memory_tokens = nn.Parameter(torch.empty(k_max, self.hidden_size, dtype=self.svlm.dtype))
        self.pad_token_id = int(
            self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        )
        #: module classes an FSDP auto-wrap / activation-checkpointing policy should wrap
        self.decoder_layer_classes = family.layer_classes()
        if not building_on_meta():  # on the meta device the structure is all there is
            load_tensors(self, self.initial_state_dict(), f"{where} built from {path}")

    # ------------------------------------------------------------------ weights
    def initial_state_dict(self) -> dict[str, Tensor]:
        """Every tensor of this compressor, read from ``pretrained`` in one pass over its weights.

        A saved compressor folder holds its memory tokens and relevance direction beside the SVLM
        (:data:`~tempo_kit.hf.OWN_TENSORS_NAME`); a base checkpoint gives the direction from its LM
        head (``w_Yes − w_No``, compatibility §2) and fresh memory tokens drawn from its
        input-embedding statistics (:func:`initial_memory_tokens`).
        """
        path = Path(self.pretrained)
        family = self.family
        state, extras = initial_tensors(self, path, extra=(family.lm_head_key,))
        if "memory_tokens" in state and "relevance_direction" in state:
            return state
        embeddings = state.get(family.embeddings_key)
        head = extras.get(family.lm_head_key, embeddings if self.tie_word_embeddings else None)
        if embeddings is None or head is None:
            raise CheckpointError(
                f"{path} holds no {'input embeddings' if embeddings is None else family.lm_head_key}: the SVLM "
                "checkpoint is incomplete (download or save it again)"
            )
        state["relevance_direction"] = relevance_direction(head, self.tokenizer)
        state["memory_tokens"] = initial_memory_tokens(embeddings, self.k_max)
        return state

    def save_pretrained(self, folder: str | Path) -> None:
        """Write this compressor as a checkpoint folder of its family plus memory tokens and direction.

        SVLM tensors still equal to ``pretrained``'s are written in that checkpoint's dtype (a frozen
        SVLM is stored once, as it came); trained ones in the training dtype. ``pretrained=folder``
        rebuilds it.
        """
        save_component_folder(self, Path(self.pretrained), Path(folder))

    @property
    def system_prompt(self) -> str:
        """The prompt in use by default: ``train_prompt`` in training mode, ``eval_prompt`` in eval mode."""
        return self.train_prompt if self.training else self.eval_prompt

    def prompt_for(self, system_prompt: str | None) -> str:
        """The text of a call's system prompt: a name or literal text, ``None`` for :attr:`system_prompt`."""
        return self.system_prompt if system_prompt is None else resolve_prompt(system_prompt)

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict | None = None) -> None:
        """Activation checkpointing of the SVLM's layers (Hugging Face's implementation)."""
        set_activation_checkpointing(self.svlm, True, gradient_checkpointing_kwargs)

    def gradient_checkpointing_disable(self) -> None:
        set_activation_checkpointing(self.svlm, False)

    def _apply(self, fn, recurse: bool = True):
        # ``.to(bfloat16)`` / ``.half()`` must move the relevance direction but keep it float32.
        direction = self.relevance_direction.detach().clone()  # a parameter's data is swapped in place
        super()._apply(fn, recurse)
        if self.relevance_direction.dtype != torch.float32:
            restored = direction.detach().to(self.relevance_direction.device, torch.float32)
            if isinstance(self.relevance_direction, nn.Parameter):  # the router stage trains it
                self.relevance_direction.data = restored
            else:
                self.relevance_direction = restored
        return self

    # ------------------------------------------------------------------ compression
    def forward(
        self, segments: Sequence[Segments], queries: Sequence[str], system_prompt: str | None = None
    ) -> CompressorOutput:
        """One SVLM pass over every segment given (the kit gives at most ``segment_batch_size``)."""
        validate_inputs(segments, queries)
        items = [(i, j) for i, sample in enumerate(segments) for j in range(len(sample))]
        visuals = self.adapter.encode_visual(segments, items, self.memory_tokens.device)
        memory, relevance = self.compress(visuals, [queries[i] for i, _ in items], system_prompt)
        return CompressorOutput(memory=memory, relevance=relevance, num_segments=[len(s) for s in segments])

    def describe_inputs(self, segments: Segments) -> list[dict[str, object]]:
        """Per segment, what this compressor feeds its SVLM (grid, time tags, frames)."""
        return self.adapter.describe(segments)

    def segment_tokens(self, segments: Segments, query: str, system_prompt: str | None = None) -> list[int]:
        """Length of each segment's sequence for ``query``: exactly the ids :meth:`compress` builds
        plus the ``k_max`` memory tokens, from frame sizes alone (no pixels are resized)."""
        lengths = self.adapter.sequence_lengths(segments, self.prompt_for(system_prompt), query)
        return [n + self.k_max for n in lengths]

    def call_tokens(self, counts: Sequence[int]) -> int:
        """Tokens a forward over segments of ``counts`` runs: their sum packed, else the padded batch."""
        return sum(counts) if self.pack_segments else padded_tokens(counts)

    def compress(self, visuals: Sequence, queries: Sequence[str], system_prompt: str | None = None) -> tuple[Tensor, Tensor]:
        """One SVLM forward over a micro-batch: ``(memory [B, k_max, d], relevance [B] float32)``."""
        device = self.memory_tokens.device
        prompt = self.prompt_for(system_prompt)
        adapter = self.adapter
        sequences = [adapter.sequence_ids(v, prompt, q) for v, q in zip(visuals, queries)]
        input_ids, attention_mask, memory_mask, last_real = self._pad(sequences, device)
        visual = adapter.visual_inputs(visuals, device)
        position_ids = adapter.positions(self.svlm, input_ids, attention_mask, visual)
        if self.pack_segments:
            return self._compress_packed(input_ids, attention_mask, memory_mask, last_real, position_ids, visual)
        embeds = self._with_memory(self.svlm.get_input_embeddings()(input_ids), memory_mask)
        hidden = self.svlm(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=False,
            **visual,
        ).last_hidden_state
        return self._read_out(hidden, memory_mask, last_real)

    def _compress_packed(self, input_ids, attention_mask, memory_mask, last_real, position_ids, visual):
        """The same forward as one packed row (:mod:`tempo_kit.compressors.packed`): no attention
        mask, so transformers attends within each segment from the restarting positions."""
        packed = pack_call(input_ids, attention_mask, memory_mask, last_real)
        positions = self.adapter.packed_positions(position_ids, attention_mask)
        embeds = self._with_memory(self.svlm.get_input_embeddings()(packed.input_ids), packed.memory_mask)
        hidden = self.svlm(
            inputs_embeds=embeds, attention_mask=None, position_ids=positions, use_cache=False, **visual
        ).last_hidden_state
        rows = len(packed.lengths)
        memory = hidden[packed.memory_mask].view(rows, self.k_max, -1)
        return memory, self._relevance(hidden[0, packed.last_real])

    # ------------------------------------------------------------------ pieces every path shares
    def _with_memory(self, embeds: Tensor, memory_mask: Tensor) -> Tensor:
        """Write the learnable memory tokens into their slots of ``embeds`` (once per run of
        ``k_max`` slots, in order: one per padded row, or one per segment of a packed row)."""
        copies = int(memory_mask.sum()) // self.k_max
        memory = self.memory_tokens.to(embeds.dtype).repeat(copies, 1)
        return embeds.masked_scatter(memory_mask.unsqueeze(-1), memory)

    def _read_out(self, hidden: Tensor, memory_mask: Tensor, last_real: Tensor) -> tuple[Tensor, Tensor]:
        """Memory = final states at the memory slots; relevance = sigmoid((w_Yes − w_No)·h_last) in fp32."""
        rows = hidden.shape[0]
        memory_states = hidden[memory_mask].view(rows, self.k_max, -1)
        query_state = hidden[torch.arange(rows, device=hidden.device), last_real]
        return memory_states, self._relevance(query_state)

    def _relevance(self, query_state: Tensor) -> Tensor:
        """sigmoid((w_Yes − w_No)·h) in fp32 per row of ``query_state`` ``[B, d]``: a per-row
        product and sum, not a matrix-vector product, so its value does not depend on how many
        rows the call holds and the cut into calls never changes a score by a rounding."""
        return torch.sigmoid((query_state.float() * self.relevance_direction).sum(-1))

    def _pad(self, sequences: list[list[int]], device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Ids ``[B, L+k]`` with memory slots right after each sequence; masks; last real index."""
        width = max(len(s) for s in sequences) + self.k_max
        input_ids = torch.full((len(sequences), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
        memory_mask = torch.zeros((len(sequences), width), dtype=torch.bool)
        last_real = torch.empty(len(sequences), dtype=torch.long)
        for row, ids in enumerate(sequences):
            start = 0 if self.padding_side == "right" else width - len(ids) - self.k_max
            end = start + len(ids)
            input_ids[row, start:end] = torch.tensor(ids, dtype=torch.long)
            attention_mask[row, start : end + self.k_max] = 1
            memory_mask[row, end : end + self.k_max] = True
            last_real[row] = end - 1
        return input_ids.to(device), attention_mask.to(device), memory_mask.to(device), last_real.to(device)


def family_checkpoint(pretrained: str, family: type[FamilyAdapter]) -> Path:
    """``pretrained`` as a local checkpoint folder of ``family``, or a one-line :class:`CheckpointError`
    naming the compressor that reads it (a supported family) or the adapter file to write."""
    from tempo_kit.registry import COMPRESSORS

    path = local_checkpoint(pretrained, "SVLM", example_hub=family.hub_example)
    found = read_config_type(path)
    if found in family.model_types:
        return path
    families = {
        builder.family.model_types[0]: name
        for name in COMPRESSORS.list()
        if isinstance(builder := COMPRESSORS.get(name), type) and issubclass(builder, MemoryTokenCompressor)
    }
    owner = next((name for name in families.values() if found in COMPRESSORS.get(name).family.model_types), None)
    expected = family.model_types[0]
    fix = (
        f"it is read by model.compressor.name={owner}"
        if owner
        else "supported families (model.compressor.name: model_type): "
        + ", ".join(f"{name}: {model_type}" for model_type, name in families.items())
        + "; another architecture needs one adapter file (a FamilyAdapter subclass, like "
        "tempo_kit/compressors/qwen2_5_vl.py; see the docs page 'The compressor')"
    )
    raise CheckpointError(
        f"SVLM checkpoint {str(path)!r} is a {found!r} model, not {expected!r}: point it at a {expected} "
        f"checkpoint folder; {fix}"
    )


def read_config_type(path: Path) -> str | None:
    """``model_type`` of a checkpoint folder's ``config.json`` (checked readable by :func:`local_checkpoint`)."""
    import json

    return json.loads((path / "config.json").read_text()).get("model_type")


def check_capabilities(family: type[FamilyAdapter], require_prefix_cache: bool, options: dict) -> None:
    """Refuse, before any work, a setting the family cannot honour (one-line :class:`ConfigError`)."""
    if require_prefix_cache and not family.prefix_cache:
        raise ConfigError(
            f"compressor {family.name!r} cannot cache a question-independent prefix (its sequence puts "
            "the question where the prefix would end); remove model.compressor.require_prefix_cache"
        )
    accepted = [n for n in inspect.signature(family.__init__).parameters if n not in ("self", "path", "tokenizer", "config")]
    for key in options:
        if key == "time_tag_template" and family.time_encoding != "per_patch":
            raise ConfigError(
                f"compressor {family.name!r} tells time by {family.time_encoding!r}, not per-patch time tags: "
                "remove model.compressor.time_tag_template"
            )
        if key not in accepted:
            raise ConfigError(
                f"compressor {family.name!r} has no setting {key!r}; its own settings are: "
                f"{', '.join(accepted) or 'none'} (plus the memory-token core's)"
            )

