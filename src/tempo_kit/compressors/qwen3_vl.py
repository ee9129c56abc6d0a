"""Tempo's query-aware compressor: a Qwen3-VL SVLM reading [prompt | segment | query | memory].

Per segment, one causal sequence (see :mod:`tempo_kit.compressors.sequence`) is followed by
``k_max`` learnable memory tokens. The final hidden states (after the final norm) at the memory
positions are the segment's memory; the hidden state just before the first memory token, read
through the LM-head rows of "Yes" and "No", is its relevance — both from the same forward pass
(paper Sec. 3.2–3.3, compatibility §2).

How the forward is done: the kit builds ``inputs_embeds`` itself (token embeddings with the memory
tokens written after each sequence's last real token), computes M-RoPE positions with the model's
own ``get_rope_index`` (memory tokens count as text), and calls the Hugging Face ``Qwen3VLModel``
forward with those embeddings, positions and the pixel patches. The model then runs its own vision
tower, scatters the visual features onto the placeholder positions and adds the DeepStack features
in its first layers, exactly as for any Qwen3-VL input; nothing of the model is re-implemented.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from tempo_kit.compressors.base import DEFAULT_SEGMENT_BATCH_SIZE, Compressor
from tempo_kit.compressors.checkpoint import QWEN3_VL_MODEL_TYPE, patch_configs
from tempo_kit.compressors.inputs import K_MAX, check_sizes, validate_inputs
from tempo_kit.compressors.prefix_cache import PrefixCompression, SegmentPrefix, stack_left_padded
from tempo_kit.compressors.prompts import compressor_prompt_text
from tempo_kit.compressors.sequence import SequenceBuilder
from tempo_kit.compressors.visual import SegmentPatches, describe_segments, patch_segments, segment_grids
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
from tempo_kit.hub import SVLM_HUB_NAME, local_checkpoint
from tempo_kit.registry import COMPRESSORS
from tempo_kit.time_tags import TIME_TAG_TEMPLATE
from tempo_kit.types import CompressorOutput, Segments

#: Tokens whose LM-head rows define the relevance direction (paper Sec. 3.3).
YES_TOKEN, NO_TOKEN = "Yes", "No"
#: Checkpoint keys of the SVLM's LM head and input embeddings (Qwen3VLForConditionalGeneration).
LM_HEAD_KEY = "lm_head.weight"
EMBEDDINGS_KEY = "svlm.language_model.embed_tokens.weight"


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


@COMPRESSORS.register("qwen3_vl")
class Qwen3VLCompressor(Compressor):
    """Tempo's compressor on a Hugging Face Qwen3-VL checkpoint.

    Args:
        pretrained: local folder of a Qwen3-VL checkpoint (e.g. Qwen3-VL-2B-Instruct downloaded
            with ``hf download``). Its LM head is read once for the relevance
            direction and then dropped.
        k_max: memory tokens per segment (paper: 128).
        train_prompt: system prompt while ``self.training``: ``"standard"`` (paper Appendix E,
            the training prompt), ``"routing"``, or any literal text.
        eval_prompt: system prompt in eval mode: ``"routing"`` (standard + the Yes/No
            instruction that elicits the relevance prior) by default.
        prompt: if given, one prompt for both modes (overrides the two above).
        segment_batch_size: segments per SVLM forward (micro-batch). Outputs do not depend on it.
        call_token_budget: most tokens one SVLM forward may hold, counted as the padded batch the
            language model runs: segments × the longest sequence (prompt, visual tokens, query and
            the ``k_max`` memory tokens; :meth:`segment_tokens`). ``None``: calls are cut by
            ``segment_batch_size`` alone. Outputs do not depend on it.
        padding_side: where the padding of a micro-batch goes (``"right"`` or ``"left"``); memory
            tokens always follow each sequence's last real token, so outputs do not depend on it.
        dtype: parameter dtype (``"auto"``: the checkpoint config's, e.g. bf16); any name
            :mod:`tempo_kit.dtypes` accepts (``bf16``, ``bfloat16``, ``torch.bfloat16``) or a torch dtype.
        attn_implementation: ``"sdpa"``, ``"eager"``, ``"flash_attention_2"`` … (Hugging Face).
        min_pixels: lower video pixel bound (whole segment); default from the checkpoint's
            ``video_preprocessor_config.json``.
        max_pixels: upper video pixel bound (whole segment), same default source.
        image_min_pixels: lower image pixel bound; default from ``preprocessor_config.json``.
        image_max_pixels: upper image pixel bound, same default source.
        time_tag_template: Qwen3-VL's per-temporal-patch time tag.
    """

    takes_system_prompt = True

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
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        image_min_pixels: int | None = None,
        image_max_pixels: int | None = None,
        time_tag_template: str = TIME_TAG_TEMPLATE,
    ) -> None:
        super().__init__()
        from transformers import AutoTokenizer
        from transformers.models.qwen3_vl.modeling_qwen3_vl import (
            Qwen3VLModel,
            Qwen3VLTextDecoderLayer,
            Qwen3VLVisionBlock,
        )

        check_sizes(k_max, segment_batch_size, call_token_budget)
        if padding_side not in ("right", "left"):
            raise ConfigError(f"compressor padding_side must be 'right' or 'left', got {padding_side!r}")
        where = "compressor 'qwen3_vl'"
        path = local_checkpoint(pretrained, "SVLM", model_type=QWEN3_VL_MODEL_TYPE, example_hub=SVLM_HUB_NAME)
        self.pretrained = str(path)
        # where this component's modules sit in the checkpoint's own Hugging Face model
        # (Qwen3VLForConditionalGeneration.model is ``svlm``): weights and peft adapters are keyed against it
        self.hf_module_paths = {"svlm": "model"}
        self.k_max = k_max
        self.train_prompt = resolve_prompt(prompt or train_prompt)
        self.eval_prompt = resolve_prompt(prompt or eval_prompt)
        self.segment_batch_size = segment_batch_size
        self.call_token_budget = call_token_budget
        self.padding_side = padding_side
        self.video_config, self.image_config = patch_configs(
            path,
            min_pixels=min_pixels,
            max_pixels=max_pixels,
            image_min_pixels=image_min_pixels,
            image_max_pixels=image_max_pixels,
        )
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.sequences = SequenceBuilder(self.tokenizer, time_tag_template)
        config = read_config(path, where)
        #: the Hugging Face ``Qwen3VLModel`` (vision tower + language model, no LM head)
        self.svlm = build_from_config(Qwen3VLModel._from_config, config, dtype, attn_implementation, where)
        if config.video_token_id != self.sequences.video_token_id:
            raise ConfigError(
                f"tokenizer and config of {str(path)!r} disagree on <|video_pad|> "
                f"({self.sequences.video_token_id} vs {config.video_token_id})"
            )
        self.hidden_size = int(config.text_config.hidden_size)
        #: ``w_Yes − w_No`` (float32); set from the weights by :meth:`initial_state_dict`
        self.register_buffer("relevance_direction", torch.empty(self.hidden_size), persistent=True)
        self.memory_tokens = nn.Parameter(torch.empty(k_max, self.hidden_size, dtype=self.svlm.dtype))
        self.pad_token_id = int(
            self.tokenizer.pad_token_id
            if self.tokenizer.pad_token_id is not None
            else self.tokenizer.eos_token_id
        )
        #: module classes an FSDP auto-wrap / activation-checkpointing policy should wrap
        self.decoder_layer_classes = (Qwen3VLTextDecoderLayer, Qwen3VLVisionBlock)
        if not building_on_meta():  # on the meta device the structure is all there is
            load_tensors(self, self.initial_state_dict(), f"{where} built from {path}")

    # ------------------------------------------------------------------ weights
    def initial_state_dict(self) -> dict[str, Tensor]:
        """Every tensor of this compressor, read from ``pretrained`` in one pass over its weights.

        A saved compressor folder holds its memory tokens and relevance direction beside the SVLM
        (:data:`~tempo_kit.hf.OWN_TENSORS_NAME`); a base Qwen3-VL checkpoint gives the direction
        from its LM head (``w_Yes − w_No``, compatibility §2) and fresh memory tokens drawn from
        its input-embedding statistics (:func:`initial_memory_tokens`).
        """
        path = Path(self.pretrained)
        state, extras = initial_tensors(self, path, extra=(LM_HEAD_KEY,))
        if "memory_tokens" in state and "relevance_direction" in state:
            return state
        embeddings = state.get(EMBEDDINGS_KEY)
        head = extras.get(LM_HEAD_KEY, embeddings if self.svlm.config.tie_word_embeddings else None)
        if embeddings is None or head is None:
            raise CheckpointError(
                f"{path} holds no {'input embeddings' if embeddings is None else LM_HEAD_KEY}: the SVLM checkpoint "
                "is incomplete (download or save it again)"
            )
        state["relevance_direction"] = relevance_direction(head, self.tokenizer)
        state["memory_tokens"] = initial_memory_tokens(embeddings, self.k_max)
        return state

    def save_pretrained(self, folder: str | Path) -> None:
        """Write this compressor as a Qwen3-VL checkpoint folder plus its memory tokens and direction.

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

    def forward(
        self, segments: Sequence[Segments], queries: Sequence[str], system_prompt: str | None = None
    ) -> CompressorOutput:
        """One SVLM pass over every segment given (the kit gives at most ``segment_batch_size``)."""
        validate_inputs(segments, queries)
        items = [(i, j) for i, sample in enumerate(segments) for j in range(len(sample))]
        patches = patch_segments(segments, items, self.video_config, self.image_config, self.memory_tokens.device)
        memory, relevance = self.compress(patches, [queries[i] for i, _ in items], system_prompt)
        return CompressorOutput(memory=memory, relevance=relevance, num_segments=[len(s) for s in segments])

    def describe_inputs(self, segments: Segments) -> list[dict[str, object]]:
        """Per segment, the patch grid and per-patch time tags this compressor feeds its SVLM."""
        return describe_segments(segments, self.video_config, self.image_config)

    def segment_tokens(self, segments: Segments, query: str, system_prompt: str | None = None) -> list[int]:
        """Length of each segment's SVLM sequence for ``query``: exactly the ids :meth:`compress`
        builds (system turn, time-tagged visual blocks, query, generation prompt) plus the
        ``k_max`` memory tokens, from the patch grid alone (no pixels are resized)."""
        prompt = self.prompt_for(system_prompt)
        suffix = len(self.sequences.suffix(query))
        return [
            len(self.sequences.prefix(prompt, slot=g.slot, tokens_per_patch=g.tokens_per_patch, patch_times=g.times))
            + suffix
            + self.k_max
            for g in segment_grids(segments, self.video_config, self.image_config)
        ]

    def compress(
        self, patches: Sequence[SegmentPatches], queries: Sequence[str], system_prompt: str | None = None
    ) -> tuple[Tensor, Tensor]:
        """One SVLM forward over a micro-batch: ``(memory [B, k_max, d], relevance [B] float32)``."""
        device = self.memory_tokens.device
        prompt = self.prompt_for(system_prompt)
        sequences = [self._prefix_ids(p, prompt) + self.sequences.suffix(query) for p, query in zip(patches, queries)]
        input_ids, attention_mask, memory_mask, last_real = self._pad(sequences, device)
        visual = _visual_inputs(patches, device)
        position_ids = self._positions(input_ids, attention_mask, visual)
        embeds = self._with_memory(self.svlm.get_input_embeddings()(input_ids), memory_mask)
        hidden = self.svlm(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=False,
            **visual,
        ).last_hidden_state
        return self._read_out(hidden, memory_mask, last_real)

    # ------------------------------------------------------------------ prefix cache (one video, many questions)
    def encode_prefixes(
        self, segments: Segments, indices: Sequence[int], system_prompt: str | None = None
    ) -> list[SegmentPrefix]:
        """Keys and values of each segment's question-independent prefix (vision tower included).

        See :mod:`tempo_kit.compressors.prefix_cache`. The prefix holds the system prompt
        (:meth:`prompt_for` ``system_prompt``), so a cache is only valid for that prompt.
        """
        validate_inputs([segments], ["prefix"])
        device = self.memory_tokens.device
        patches = patch_segments(
            [segments], [(0, j) for j in indices], self.video_config, self.image_config, device
        )
        prompt = self.prompt_for(system_prompt)
        sequences = [self._prefix_ids(p, prompt) for p in patches]
        width = max(len(s) for s in sequences)
        input_ids = torch.full((len(sequences), width), self.pad_token_id, dtype=torch.long, device=device)
        attention_mask = torch.zeros_like(input_ids)
        for row, ids in enumerate(sequences):
            input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long, device=device)
            attention_mask[row, : len(ids)] = 1
        visual = _visual_inputs(patches, device)
        position_ids = self._positions(input_ids, attention_mask, visual)
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
            next_position = int(position_ids[:, row, :length].max()) + 1
            prefixes.append(SegmentPrefix(keys, values, next_position))
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
        suffixes = [self.sequences.suffix(query) for query in queries]
        input_ids, suffix_mask, memory_mask, last_real = self._pad(suffixes, device)
        start = torch.tensor([p.next_position for p in prefixes], device=device)
        columns = torch.arange(input_ids.shape[1], device=device)
        position_ids = (start[:, None] + columns[None, :]).unsqueeze(0).expand(3, -1, -1)
        embeds = self._with_memory(self.svlm.get_input_embeddings()(input_ids), memory_mask)
        hidden = self.svlm(
            inputs_embeds=embeds,
            attention_mask=torch.cat([prefix_mask, suffix_mask], dim=1),
            position_ids=position_ids,
            use_cache=True,
            **{_cache_argument(self.svlm): DynamicCache(ddp_cache_data=layers)},
        ).last_hidden_state
        memory, relevance = self._read_out(hidden, memory_mask, last_real)
        return PrefixCompression(memory, relevance, tokens=int(suffix_mask.sum()))

    # ------------------------------------------------------------------ shared pieces of both paths
    def _prefix_ids(self, patches: SegmentPatches, prompt: str) -> list[int]:
        return self.sequences.prefix(
            prompt, slot=patches.slot, tokens_per_patch=patches.tokens_per_patch, patch_times=patches.times
        )

    def _positions(self, input_ids: Tensor, attention_mask: Tensor, visual: dict[str, Tensor]) -> Tensor:
        """Qwen3-VL's own M-RoPE positions ``[3, B, L]`` (memory tokens count as text)."""
        token_types = torch.zeros_like(input_ids, dtype=torch.int32)
        token_types[input_ids == self.sequences.image_token_id] = 1
        token_types[input_ids == self.sequences.video_token_id] = 2
        position_ids, _ = self.svlm.get_rope_index(
            input_ids,
            mm_token_type_ids=token_types,
            image_grid_thw=visual.get("image_grid_thw"),
            video_grid_thw=visual.get("video_grid_thw"),
            attention_mask=attention_mask,
        )
        return position_ids

    def _with_memory(self, embeds: Tensor, memory_mask: Tensor) -> Tensor:
        """Write the learnable memory tokens into their slots of ``embeds``."""
        memory = self.memory_tokens.to(embeds.dtype).expand(embeds.shape[0], -1, -1)
        return embeds.masked_scatter(memory_mask.unsqueeze(-1), memory)

    def _read_out(self, hidden: Tensor, memory_mask: Tensor, last_real: Tensor) -> tuple[Tensor, Tensor]:
        """Memory = final states at the memory slots; relevance = sigmoid((w_Yes − w_No)·h_last) in fp32."""
        rows = hidden.shape[0]
        memory_states = hidden[memory_mask].view(rows, self.k_max, -1)
        query_state = hidden[torch.arange(rows, device=hidden.device), last_real]
        # a per-row product and sum, not a matrix-vector product: its value does not depend on how
        # many rows the call holds, so the cut into calls never changes a score by a rounding
        relevance = torch.sigmoid((query_state.float() * self.relevance_direction).sum(-1))
        return memory_states, relevance

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


def _cache_argument(model: nn.Module) -> str:
    """The key/value-cache argument of a Hugging Face forward (``past_key_values`` before transformers 5.x)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _visual_inputs(patches: Sequence[SegmentPatches], device) -> dict[str, Tensor]:
    """The pixel and grid arguments of a Qwen3-VL forward for a micro-batch of segments."""
    visual = {}
    video = [p for p in patches if p.slot == "video"]
    image = [p for p in patches if p.slot == "image"]
    if video:
        visual["pixel_values_videos"] = torch.cat([p.pixel_values for p in video]).to(device)
        visual["video_grid_thw"] = torch.stack([p.grid_thw for p in video]).to(device)
    if image:
        visual["pixel_values"] = torch.cat([p.pixel_values for p in image]).to(device)
        visual["image_grid_thw"] = torch.stack([p.grid_thw for p in image]).to(device)
    return visual
