"""TempoModel: compressor → allocator → reduction → projector → sequence assembly → decoder.

A plain ``nn.Module`` (no Lightning inside) so other projects can use it in their own loops:
``forward`` for training (every segment keeps all ``k_max`` tokens, as in the paper) and
``generate`` for inference (the allocator spends a per-sample budget). ``save_pretrained`` /
``from_pretrained`` use the kit format (:mod:`tempo_kit.kit_format`): one folder holding
``tempo_config.json`` (registry names + arguments) and one subfolder per component.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

import tempo_kit.allocators  # noqa: F401  (registers the built-in allocators and reductions)
import tempo_kit.compressors  # noqa: F401  (registers the built-in compressors)
import tempo_kit.decoders  # noqa: F401  (registers hf_causal_lm)
from tempo_kit import __version__, kit_format
from tempo_kit.allocators import reduce_tokens
from tempo_kit.assembly import AssembledInputs, SequenceAssembler, TokenStats, VisualSequence
from tempo_kit.errors import ConfigError, TempoKitError
from tempo_kit.model_config import TempoConfig
from tempo_kit.projectors import build_projector
from tempo_kit.prompts import Turn, encode_decoder_prompt
from tempo_kit.registry import ALLOCATORS, COMPRESSORS, DECODERS, RegistryError
from tempo_kit.types import IGNORE_INDEX, Allocation, CompressorOutput, Segments, TempoBatch

#: Components saved in their own subfolders, in this order.
COMPONENTS = ("compressor", "projector", "decoder")


@dataclass
class TempoOutput:
    """What :meth:`TempoModel.forward` returns.

    Attributes:
        loss: mean cross-entropy over supervised (assistant) tokens, or ``None`` without labels.
        logits: ``[B, L, V]`` over the assembled sequence.
        visual_tokens: memory tokens inserted per sample (0 for text-only samples).
        counts: per sample, tokens inserted per segment (``None`` for text-only samples).
        relevance: ``[S_total]`` compressor relevance (``None`` if query-agnostic).
        stats: per-sample :class:`~tempo_kit.assembly.TokenStats`.
        labels, attention_mask: ``[B, L]`` of the assembled sequence.
        allocations: per sample, only with ``forward(allocate=True)``.
    """

    loss: Tensor | None
    logits: Tensor
    visual_tokens: list[int]
    counts: list[Tensor | None]
    relevance: Tensor | None
    stats: list[TokenStats]
    labels: Tensor | None
    attention_mask: Tensor
    allocations: list[Allocation | None] | None = None


@dataclass
class GenerationOutput:
    """What :meth:`TempoModel.generate` returns.

    Attributes:
        texts: decoded answers, special tokens removed.
        token_ids: ``[B, N]`` generated ids (no prompt), pad id after the end.
        allocations: per sample, the :class:`~tempo_kit.types.Allocation` that was fed to the LLM
            (counts after the context cap); ``None`` for a text-only sample.
        stats: per-sample :class:`~tempo_kit.assembly.TokenStats` of the LLM input.
    """

    texts: list[str]
    token_ids: Tensor
    allocations: list[Allocation | None]
    stats: list[TokenStats]


class TempoModel(nn.Module):
    """Tempo's four components and the glue between them.

    Args:
        compressor: a built :class:`~tempo_kit.compressors.Compressor` (see :meth:`from_config`).
        projector: maps ``compressor.hidden_size`` to ``decoder.hidden_size``.
        decoder: a built :class:`~tempo_kit.decoders.Decoder` (holds the tokenizer).
        allocator: an :class:`~tempo_kit.allocators.Allocator` used by ``generate``.
        config: the :class:`~tempo_kit.model_config.TempoConfig` they were built from; it holds
            the allocation and assembly settings and is what ``save_pretrained`` writes. Without
            one (components built by hand) the settings take their defaults — change them on
            ``model.config`` — and ``save_pretrained`` is unavailable, since nothing says how to
            rebuild the parts; build with :meth:`from_config` to save.
    """

    def __init__(
        self,
        compressor: nn.Module,
        projector: nn.Module,
        decoder: nn.Module,
        allocator: nn.Module,
        config: TempoConfig | None = None,
    ) -> None:
        super().__init__()
        self.compressor = compressor
        self.projector = projector
        self.decoder = decoder
        self.allocator = allocator
        #: whether ``config`` names registry specs these components can be rebuilt from
        self.buildable = config is not None
        if config is None:
            parts = {
                "compressor": compressor,
                "projector": projector,
                "decoder": decoder,
                "allocator": allocator,
            }
            config = TempoConfig(**{key: {"name": type(part).__name__} for key, part in parts.items()})
        self.config = config
        self._tag_cache: dict[str, list[int]] = {}

    # ------------------------------------------------------------------------------ building
    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | TempoConfig) -> TempoModel:
        """Build every component from registry specs; projector widths come from the other two."""
        config = TempoConfig.from_mapping(cfg)
        compressor = _build(COMPRESSORS, config.compressor, "compressor")
        decoder = _build(DECODERS, config.decoder, "decoder")
        projector = _build_projector(config.projector, compressor, decoder)
        allocator = _build(ALLOCATORS, config.allocator, "allocator")
        return cls(compressor, projector, decoder, allocator, config)

    @property
    def assembler(self) -> SequenceAssembler:
        """Sequence assembly bound to the current decoder (looked up per call: wrappers may replace it)."""
        return SequenceAssembler(
            self.decoder.tokenizer, self.decoder.embed, self.config.time_tag_template, self._tag_cache
        )

    @property
    def tokenizer(self):
        """The decoder's tokenizer (prompts are encoded with it)."""
        return self.decoder.tokenizer

    # ------------------------------------------------------------------------------ compression
    def compress(self, batch: TempoBatch, *, skip_text: bool = False) -> CompressorOutput:
        """Run the compressor over every segment, ``compressor_micro_batch`` segments per call at most.

        With ``skip_text`` a text-only sample's blank image is not compressed (it only exists so
        that training touches every parameter); it gets 0 segments in the output.
        """
        if not skip_text or all(s.kind != "text" for s in batch.segments):
            return self._compress(batch.segments, batch.queries)
        keep = [i for i, s in enumerate(batch.segments) if s.kind != "text"]
        width = (self.compressor.k_max, self.compressor.hidden_size)
        parts = iter(
            self._compress([batch.segments[i] for i in keep], [batch.queries[i] for i in keep]).split()
            if keep
            else []
        )
        memories, relevances, counts = [], [], []
        for segments in batch.segments:
            if segments.kind == "text":
                memory, relevance = torch.zeros(0, *width), torch.zeros(0)
            else:
                memory, relevance = next(parts)
            memories.append(memory)
            relevances.append(relevance)
            counts.append(len(memory))
        reference = next((m for m in memories if len(m)), memories[0])
        memory = torch.cat([m.to(reference) for m in memories])
        query_agnostic = any(r is None for r in relevances)
        relevance = (
            None if query_agnostic else torch.cat([r.to(reference.device, torch.float32) for r in relevances])
        )
        return CompressorOutput(memory, relevance, counts)

    def _compress(self, samples: Sequence[Segments], queries: Sequence[str]) -> CompressorOutput:
        limit = self.config.compressor_micro_batch
        total = sum(len(s) for s in samples)
        if limit is None or total <= limit:
            return self._checked(self.compressor(samples, queries), samples)
        pieces: list[tuple[Segments, str]] = []
        for segments, query in zip(samples, queries):
            for start in range(0, len(segments), limit):
                pieces.append((segments.slice(start, start + limit), query))
        memories, relevances, call, size = [], [], [], 0
        for piece in [*pieces, None]:
            if piece is None or (call and size + len(piece[0]) > limit):
                chunk = [p[0] for p in call]
                out = self._checked(self.compressor(chunk, [p[1] for p in call]), chunk)
                memories.append(out.memory)
                relevances.append(out.relevance)
                call, size = [], 0
            if piece is not None:
                call.append(piece)
                size += len(piece[0])
        relevance = None if any(r is None for r in relevances) else torch.cat(relevances)
        return CompressorOutput(torch.cat(memories), relevance, [len(s) for s in samples])

    def _checked(self, out: CompressorOutput, segments: Sequence[Segments]) -> CompressorOutput:
        expected = [len(s) for s in segments]
        if list(out.num_segments) != expected:
            raise TempoKitError(
                f"compressor {type(self.compressor).__name__} returned {out.num_segments} segments per sample "
                f"for inputs with {expected}; a compressor must keep one memory per input segment"
            )
        return out

    # ------------------------------------------------------------------------------ selection
    def _visuals(
        self,
        batch: TempoBatch,
        compressed: CompressorOutput,
        *,
        allocate: bool,
        allocator: nn.Module,
        budget: int,
        k_min: int,
        reduction: str,
        reduction_kwargs: Mapping[str, Any],
    ) -> tuple[list[VisualSequence | None], Tensor | None]:
        """Per sample kept + projected tokens (``None`` for text-only), and the DDP anchor.

        Training keeps all ``k_max`` tokens; with ``allocate`` the allocator picks counts and the
        reduction picks which tokens. All kept tokens of the batch go through the projector in
        one call. A text-only sample's memory is projected too and enters the graph as
        ``0 * sum`` (so does the relevance) so every parameter takes part in each step (DDP).
        """
        k_max = compressed.memory.shape[1]
        flat: list[Tensor] = []
        plans: list[tuple[str, Tensor | None]] = []
        for index, ((memory, relevance), segments) in enumerate(zip(compressed.split(), batch.segments)):
            if segments.kind == "text":
                flat.append(memory.reshape(-1, memory.shape[-1]))
                plans.append(("text", None))
                continue
            if allocate:
                counts = allocator(relevance, k_max, budget, k_min, num_segments=len(segments))
                _check_counts(counts, len(segments), k_max, budget, allocator, batch, index)
                kept = reduce_tokens(memory, counts, reduction, **reduction_kwargs)
                counts = torch.tensor([len(t) for t in kept], dtype=torch.long)
                flat.append(torch.cat(kept) if kept else memory[:0].reshape(0, memory.shape[-1]))
            else:
                counts = torch.full((len(segments),), k_max, dtype=torch.long)
                flat.append(memory.reshape(-1, memory.shape[-1]))
            plans.append(("visual", counts))

        weight = next(self.projector.parameters(), None)
        stacked = torch.cat(flat)
        if weight is not None:
            stacked = stacked.to(dtype=weight.dtype, device=weight.device)
        projected = self.projector(stacked).split([len(f) for f in flat])

        visuals: list[VisualSequence | None] = []
        anchor: Tensor | None = None
        for (kind, counts), tokens, segments in zip(plans, projected, batch.segments):
            if kind == "text":
                zero = 0 * tokens.sum()
                anchor = zero if anchor is None else anchor + zero
                visuals.append(None)
            else:
                tagged = segments.kind == "video" or self.config.tag_images
                visuals.append(VisualSequence(tokens, counts, segments.times.detach().cpu(), tagged=tagged))
        if compressed.relevance is not None and compressed.relevance.requires_grad:
            # relevance takes no part in the loss; a relevance head with its own weights must still
            # be in the graph for DDP
            zero = 0 * compressed.relevance.sum()
            anchor = zero if anchor is None else anchor + zero
        return visuals, anchor

    # ------------------------------------------------------------------------------ training
    def forward(
        self,
        batch: TempoBatch,
        *,
        allocate: bool = False,
        budget: int | None = None,
        k_min: int | None = None,
        reduction: str | None = None,
        max_context: int | None = None,
    ) -> TempoOutput:
        """Teacher-forced loss over the assistant tokens.

        By default every segment keeps all ``k_max`` tokens (the paper trains without the
        allocator) and the context cap is ``train_max_context``. ``allocate=True`` applies the
        inference allocation instead (e.g. to measure a loss under a budget).
        """
        compressed = self.compress(batch)
        visuals, anchor = self._visuals(
            batch, compressed, allocate=allocate, **self._allocation_args(budget, k_min, reduction, None)
        )
        assembled = self.assembler(
            batch.input_ids,
            batch.attention_mask,
            visuals,
            batch.labels,
            max_context=self.config.train_max_context if max_context is None else max_context,
            padding_side="right",
            sample_ids=batch.ids,
        )
        embeds = (
            assembled.inputs_embeds
            if anchor is None
            else assembled.inputs_embeds + anchor.to(assembled.inputs_embeds.dtype)
        )
        out = self.decoder(embeds, assembled.attention_mask, assembled.labels)
        allocations = None
        if allocate:
            allocations = self._allocations(batch, compressed, assembled, budget, k_min)
        return TempoOutput(
            loss=getattr(out, "loss", None),
            logits=out.logits,
            visual_tokens=[s.visual for s in assembled.stats],
            counts=assembled.counts,
            relevance=compressed.relevance,
            stats=assembled.stats,
            labels=assembled.labels,
            attention_mask=assembled.attention_mask,
            allocations=allocations,
        )

    # ------------------------------------------------------------------------------ inference
    @torch.no_grad()
    def generate(
        self,
        batch: TempoBatch,
        *,
        budget: int | None = None,
        k_min: int | None = None,
        reduction: str | None = None,
        allocator: str | Mapping[str, Any] | nn.Module | None = None,
        max_context: int | None = None,
        max_new_tokens: int = 1024,
        do_sample: bool = False,
        compressed: CompressorOutput | None = None,
        **generation_kwargs: Any,
    ) -> GenerationOutput:
        """Answer every sample: allocation under ``budget`` per sample, then greedy decoding.

        ``budget``, ``k_min``, ``reduction``, ``allocator`` (name, spec or instance) and
        ``max_context`` override the config for this call. ``batch.input_ids`` must end with the
        generation prompt (``<|im_start|>assistant\\n``); see :func:`inference_batch`.
        ``compressed`` reuses a compressor output computed earlier for the same batch (e.g. one
        video asked several questions, or a budget sweep), skipping the compressor.
        """
        if compressed is None:
            compressed = self.compress(batch, skip_text=True)
        args = self._allocation_args(budget, k_min, reduction, allocator)
        visuals, _ = self._visuals(batch, compressed, allocate=True, **args)
        assembled = self.assembler(
            batch.input_ids,
            batch.attention_mask,
            visuals,
            None,
            max_context=self.config.max_context if max_context is None else max_context,
            padding_side="left",
            sample_ids=batch.ids,
        )
        new_ids = self.decoder.generate(
            assembled.inputs_embeds,
            assembled.attention_mask,
            max_new_tokens=max_new_tokens,
            do_sample=do_sample,
            **generation_kwargs,
        )
        texts = [t.strip() for t in self.tokenizer.batch_decode(new_ids, skip_special_tokens=True)]
        allocations = self._allocations(batch, compressed, assembled, args["budget"], args["k_min"])
        return GenerationOutput(texts, new_ids, allocations, assembled.stats)

    def answer(self, segments: Segments, question: str, **kwargs: Any) -> GenerationOutput:
        """Answer one question about one video (or image): builds the prompt, then :meth:`generate`."""
        return self.generate(inference_batch(self.tokenizer, [segments], [question]), **kwargs)

    def _allocation_args(self, budget, k_min, reduction, allocator) -> dict[str, Any]:
        config = self.config
        if allocator is None:
            allocator = self.allocator
        elif not isinstance(allocator, nn.Module):
            allocator = _build(
                ALLOCATORS, {"name": allocator} if isinstance(allocator, str) else allocator, "allocator"
            )
        return {
            "allocator": allocator,
            "budget": config.budget if budget is None else budget,
            "k_min": config.k_min if k_min is None else k_min,
            "reduction": config.reduction_name if reduction is None else reduction,
            "reduction_kwargs": config.reduction_kwargs if reduction is None else {},
        }

    def _allocations(
        self, batch: TempoBatch, compressed: CompressorOutput, assembled: AssembledInputs, budget, k_min
    ) -> list[Allocation | None]:
        config = self.config
        budget = config.budget if budget is None else budget
        k_min = config.k_min if k_min is None else k_min
        allocations: list[Allocation | None] = []
        for (_, relevance), segments, counts in zip(compressed.split(), batch.segments, assembled.counts):
            if counts is None:
                allocations.append(None)
                continue
            allocations.append(
                Allocation(
                    counts=counts,
                    relevance=None if relevance is None else relevance.detach().float().cpu(),
                    times=segments.times.detach().cpu(),
                    budget=budget,
                    k_min=k_min,
                    k_max=compressed.memory.shape[1],
                )
            )
        return allocations

    # ------------------------------------------------------------------------------ persistence
    def save_pretrained(self, out_dir: str | Path) -> Path:
        """Write the kit format (:mod:`tempo_kit.kit_format`): ``tempo_config.json`` + one folder per part.

        A component with its own ``save_pretrained`` (the HF decoder) writes its folder itself; one
        built from a local ``pretrained`` checkpoint gets a copy of it plus the tensors that differ;
        any other gets its state dict. Loading never needs the original paths.
        """
        if not self.buildable:
            raise ConfigError(
                "this TempoModel was assembled from component instances, so there is no registry spec to "
                "rebuild it from; build it with TempoModel.from_config({...}) to use save_pretrained"
            )
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        saved = self.config.to_dict()
        for name in COMPONENTS:
            saved[name] = kit_format.save_component(getattr(self, name), saved[name], out / name, name)
        kit_format.write_config(out, saved, __version__)
        return out

    @classmethod
    def from_pretrained(cls, path: str | Path, **overrides: Any) -> TempoModel:
        """Load a kit-format folder.

        ``overrides`` replace top-level config keys (``budget=4096``). A mapping for a component
        merges into its saved arguments when it names the same component or no name
        (``decoder={"dtype": "bfloat16"}``) and replaces the spec when it names another one
        (``allocator={"name": "uniform"}``).
        """
        root = Path(path).expanduser()
        document = kit_format.read_config(root, COMPONENTS)
        for key, value in overrides.items():
            saved = document.get(key)
            if (
                isinstance(value, Mapping)
                and isinstance(saved, dict)
                and value.get("name", saved.get("name")) == saved.get("name")
            ):
                document[key] = {**saved, **value}  # e.g. decoder={"dtype": "bfloat16"}
            else:
                document[key] = value
        model = cls.from_config(document)
        for name in COMPONENTS:
            kit_format.load_component_state(getattr(model, name), root / name, f"{name} built from {root}")
        return model


def inference_batch(
    tokenizer, segments: Sequence[Segments], questions: Sequence[str], ids: Sequence[str] | None = None
) -> TempoBatch:
    """A :class:`TempoBatch` of generation prompts, one question per sample (the compressor query too).

    A sample whose segments have ``kind="text"`` gets a prompt without the visual placeholder.
    """
    if len(segments) != len(questions):
        raise ConfigError(
            f"{len(segments)} samples but {len(questions)} questions; give one question per sample"
        )
    encoded = [
        encode_decoder_prompt(
            tokenizer, [Turn("user", q)], has_visual=s.kind != "text", add_generation_prompt=True
        )[0]
        for s, q in zip(segments, questions)
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


# ---------------------------------------------------------------------------------- helpers
def _build(registry, spec: Mapping[str, Any], key: str):
    try:
        return registry.build(spec)
    except RegistryError as error:
        raise ConfigError(f"model config: {key}: {error}") from None


def _build_projector(spec: Mapping[str, Any], compressor: nn.Module, decoder: nn.Module) -> nn.Module:
    kwargs = dict(spec)
    name = kwargs.pop("name")
    widths = {"in_features": int(compressor.hidden_size), "out_features": int(decoder.hidden_size)}
    for key, inferred in widths.items():
        given = kwargs.pop(key, None)
        if given is not None and int(given) != inferred:
            raise ConfigError(
                f"model config: projector.{key}={given} contradicts the {'compressor' if key == 'in_features' else 'decoder'} "
                f"width {inferred}; drop the key (it is inferred) or fix the component"
            )
    try:
        return build_projector(name, widths["in_features"], widths["out_features"], **kwargs)
    except RegistryError as error:
        raise ConfigError(f"model config: projector: {error}") from None


def _check_counts(
    counts, num_segments: int, k_max: int, budget: int, allocator, batch: TempoBatch, index: int
) -> None:
    """Hold every allocator (including plugins) to the contract: ``[S]`` longs in [0, k_max], Σk ≤ B."""
    name = type(allocator).__name__
    where = f"allocator {name} on sample {batch.ids[index] if index < len(batch.ids) else index!r}"
    if not isinstance(counts, Tensor) or counts.shape != (num_segments,) or counts.is_floating_point():
        shape = tuple(counts.shape) if isinstance(counts, Tensor) else type(counts).__name__
        raise TempoKitError(
            f"{where} returned {shape}; it must return an integer tensor [S] = [{num_segments}]"
        )
    if num_segments and (int(counts.min()) < 0 or int(counts.max()) > k_max):
        raise TempoKitError(f"{where} returned counts outside [0, k_max={k_max}]: {counts.tolist()}")
    if int(counts.sum()) > budget:
        raise TempoKitError(f"{where} spent {int(counts.sum())} tokens over the budget {budget}")
