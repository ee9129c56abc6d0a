"""TempoModel: compressor → allocator → reduction → projector → sequence assembly → decoder.

A plain ``nn.Module`` (no Lightning inside) so other projects can use it in their own loops:
``forward`` for training (every segment keeps all ``k_max`` tokens, as in the paper) and
``generate`` for inference (the allocator spends a per-sample budget). ``save_pretrained`` /
``from_pretrained`` use the kit format (:mod:`tempo_kit.model.storage`): one folder holding
``tempo_config.json`` (registry names + arguments) and one subfolder per component.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from tempo_kit.data.features import is_stored, stored_output
from tempo_kit.errors import ConfigError
from tempo_kit.generation import DEFAULT_MAX_NEW_TOKENS
from tempo_kit.model import storage
from tempo_kit.model.assembly import SequenceAssembler
from tempo_kit.model.build import build_component, build_projector_between
from tempo_kit.model.compression import compress_batch
from tempo_kit.model.config import TempoConfig
from tempo_kit.model.decoder_input import allocation_settings, decoder_input
from tempo_kit.model.inference_batch import inference_batch
from tempo_kit.model.initial_weights import initial_state_dict, load_initial_weights
from tempo_kit.model.outputs import GenerationOutput, TempoOutput
from tempo_kit.model.packing import pack_rows
from tempo_kit.model.saving import apply_overrides, push_model, save_model_folder
from tempo_kit.model.timing import PhaseTimer
from tempo_kit.parts import COMPONENTS
from tempo_kit.registry import ALLOCATORS, COMPRESSORS, DECODERS
from tempo_kit.types import CompressorOutput, Segments, TempoBatch

__all__ = ["COMPONENTS", "GenerationOutput", "TempoModel", "TempoOutput", "inference_batch"]


class TempoModel(nn.Module):
    """Tempo's four components and the glue between them.

    Args:
        compressor: a built :class:`~tempo_kit.compressors.Compressor` (see :meth:`from_config`).
        projector: maps ``compressor.hidden_size`` to ``decoder.hidden_size``.
        decoder: a built :class:`~tempo_kit.decoders.Decoder` (holds the tokenizer).
        allocator: an :class:`~tempo_kit.allocators.Allocator` used by ``generate``.
        config: the :class:`~tempo_kit.model.config.TempoConfig` they were built from; it holds
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
        if config.train_pack_tokens is not None:  # refused when built, not at the first step
            problem = decoder.packing_problem() if hasattr(decoder, "packing_problem") else "it has no packing_problem()"
            if problem:
                raise ConfigError(f"model config: train_pack_tokens={config.train_pack_tokens}: {problem}")
        self.config = config
        #: the kit-format folder this model was loaded from (:meth:`from_pretrained`), else None
        self.saved_at: Path | None = None
        self._tag_cache: dict[str, list[int]] = {}

    # ------------------------------------------------------------------------------ building
    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | TempoConfig, *, load_weights: bool = True) -> TempoModel:
        """Build every component from registry specs; projector widths come from the other two.

        With ``load_weights=False`` everything is built on the meta device from the checkpoints'
        configs alone: no weight file is opened and no memory is used (as under
        ``with torch.device("meta"):``, which works too). Shard it (FSDP), ``to_empty`` it, and
        load :meth:`initial_state_dict`, or call :meth:`load_initial_weights`.
        """
        config = TempoConfig.from_mapping(cfg)
        with nullcontext() if load_weights else torch.device("meta"):
            compressor = build_component(COMPRESSORS, config.compressor, "compressor")
            decoder = build_component(DECODERS, config.decoder, "decoder")
            projector = build_projector_between(config.projector, compressor, decoder)
            allocator = build_component(ALLOCATORS, config.allocator, "allocator")
        return cls(compressor, projector, decoder, allocator, config)

    def initial_state_dict(self) -> dict[str, Tensor]:
        """The full state dict this model starts from, on the CPU, each component's weights read once.

        A component built from a checkpoint folder (the base checkpoints, or the folders of a saved
        model after :meth:`from_pretrained`) reads it; a component with no saved weights (the
        projector of a new model) gives the values it was built with, or, built on the meta
        device, those of a fresh build of its spec on the CPU. Tied weights appear under each of
        their names (one tensor), so ``load_state_dict(strict=True)`` takes it as it is. On FSDP
        ranks built with ``load_weights=False``, rank 0 reads this and broadcasts it into the shards.
        """
        return initial_state_dict(self)

    def load_initial_weights(self, state: Mapping[str, Tensor] | None = None) -> TempoModel:
        """Fill a model built without weights: tensors on the meta device are allocated on the CPU
        (tied weights stay tied), then ``state`` (default: :meth:`initial_state_dict`) is loaded
        component by component — a one-line :class:`~tempo_kit.errors.CheckpointError` names the
        component whose weights do not fit — and the rotary frequencies are recomputed."""
        load_initial_weights(self, state)
        return self

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
    def compress(
        self,
        batch: TempoBatch,
        *,
        skip_text: bool = False,
        system_prompt: str | None = None,
        on_chunk: Callable[[int], object] | None = None,
    ) -> CompressorOutput:
        """Run the compressor over every segment, ``compressor.segment_batch_size`` per call at most.

        With ``skip_text`` a text-only sample's blank image is not compressed (it only exists so
        that training touches every parameter); it gets 0 segments in the output.
        ``system_prompt`` overrides the compressor's own (a name such as ``"routing"`` or text);
        ``on_chunk(n)`` hears after each call how many segments it compressed (progress bars).
        See :func:`~tempo_kit.model.compression.compress_batch`.
        """
        if is_stored(batch.segments):  # a feature-store batch: the frozen parts ran when it was made
            return stored_output(batch.segments)
        return compress_batch(
            self.compressor, batch, skip_text=skip_text, system_prompt=system_prompt, on_chunk=on_chunk
        )

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
        allocator: str | Mapping[str, Any] | nn.Module | None = None,
        compressed: CompressorOutput | None = None,
    ) -> TempoOutput:
        """Teacher-forced loss over the assistant tokens.

        By default every segment keeps all ``k_max`` tokens (the paper trains without the
        allocator) and the context cap is ``train_max_context``. ``allocate=True`` applies the
        inference allocation instead (e.g. to measure a loss under a budget, or to train the LLM
        on truncated allocations), with ``allocator`` overriding the config's.
        ``compressed`` reuses a compressor output computed earlier for this batch (a frozen
        compressor's memory cached across epochs), skipping the compressor.
        """
        settings = allocation_settings(self.config, self.allocator, budget, k_min, reduction, allocator)
        timer = PhaseTimer(self)
        if compressed is None:
            compressed = self.compress(batch)
        assembled, embeds, allocations = self._decoder_input(
            batch,
            compressed,
            settings,
            allocate=allocate,
            labels=batch.labels,
            max_context=self.config.train_max_context if max_context is None else max_context,
            reserve=0,
            padding_side="right",
            timer=timer,
        )
        labels, attention_mask = assembled.labels, assembled.attention_mask
        if self.config.train_pack_tokens is None:
            out = self.decoder(embeds, attention_mask, labels)
        else:
            packed = pack_rows(embeds, attention_mask, labels, self.config.train_pack_tokens)
            out = self.decoder(packed.inputs_embeds, None, packed.labels, position_ids=packed.position_ids)
            labels, attention_mask = packed.labels, packed.token_mask
        return TempoOutput(
            loss=getattr(out, "loss", None),
            logits=out.logits,
            visual_tokens=[s.visual for s in assembled.stats],
            counts=assembled.counts,
            relevance=compressed.relevance,
            stats=assembled.stats,
            labels=labels,
            attention_mask=attention_mask,
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
        reduction: str | Mapping[str, Any] | None = None,
        allocator: str | Mapping[str, Any] | nn.Module | None = None,
        max_context: int | None = None,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        do_sample: bool = False,
        compressed: CompressorOutput | None = None,
        system_prompt: str | None = None,
        **generation_kwargs: Any,
    ) -> GenerationOutput:
        """Answer every sample: allocation under ``budget`` per sample, then greedy decoding.

        ``budget``, ``k_min``, ``reduction``, ``allocator`` (name, spec or instance) and
        ``max_context`` override the config for this call. ``batch.input_ids`` must end with the
        generation prompt (``<|im_start|>assistant\\n``); see :func:`inference_batch`.
        ``compressed`` reuses a compressor output computed earlier for the same batch (e.g. one
        video asked several questions, or a budget sweep), skipping the compressor;
        ``system_prompt`` is the compressor's prompt otherwise. The output's ``timings`` hold
        each phase's seconds.
        """
        settings = allocation_settings(self.config, self.allocator, budget, k_min, reduction, allocator)  # checked before any work
        timer = PhaseTimer(self)
        with timer.phase("compress"):
            if compressed is None:
                compressed = self.compress(batch, skip_text=True, system_prompt=system_prompt)
        assembled, embeds, allocations = self._decoder_input(
            batch,
            compressed,
            settings,
            allocate=True,
            labels=None,
            max_context=self.config.max_context if max_context is None else max_context,
            reserve=self.config.answer_room,
            padding_side="left",
            timer=timer,
        )
        with timer.phase("generate"):
            new_ids = self.decoder.generate(
                embeds,
                assembled.attention_mask,
                max_new_tokens=max_new_tokens,
                do_sample=do_sample,
                **generation_kwargs,
            )
            texts = [t.strip() for t in self.tokenizer.batch_decode(new_ids, skip_special_tokens=True)]
        return GenerationOutput(texts, new_ids, allocations, assembled.stats, timer.seconds)

    def answer(self, segments: Segments, question: str, **kwargs: Any) -> GenerationOutput:
        """Answer one question about one video (or image): builds the prompt, then :meth:`generate`."""
        return self.generate(inference_batch(self.tokenizer, [segments], [question]), **kwargs)

    def _decoder_input(self, batch: TempoBatch, compressed: CompressorOutput, settings: dict[str, Any], **path: Any):
        """The path :meth:`forward` and :meth:`generate` share (:func:`~tempo_kit.model.decoder_input.decoder_input`)."""
        return decoder_input(
            batch, compressed, settings, projector=self.projector, assembler=self.assembler, config=self.config, **path
        )

    # ------------------------------------------------------------------------------ persistence
    def save_pretrained(self, out_dir: str | Path, *, training: Mapping[str, Any] | None = None) -> Path:
        """Write the kit format (:mod:`tempo_kit.model.storage`): ``tempo_config.json`` + one folder per part.

        ``README.md`` is the model card (:mod:`tempo_kit.model.card`): the parts and their base
        checkpoints, and, given ``training`` (what a fit's export knows), the recipe, data and metrics.

        A component with its own ``save_pretrained`` (the HF compressors and decoder) writes its
        folder in the Hugging Face layout, tensors it did not change in its base checkpoint's dtype;
        any other gets its state dict. Loading never needs the original paths. The folder is
        written beside ``out_dir`` and renamed into place at the end (a crash leaves the previous
        one whole), with ``manifest.json`` listing every file's size and checksum.
        """
        if not self.buildable:
            raise ConfigError(
                "this TempoModel was assembled from component instances, so there is no registry spec to "
                "rebuild it from; build it with TempoModel.from_config({...}) to use save_pretrained"
            )
        return save_model_folder(self, self.config, out_dir, training)

    def push_to_hub(self, repo_id: str, *, token: str | None = None, **options: Any) -> str:
        """Save this model (with its card) and upload it to ``repo_id``; ``options`` are
        :func:`tempo_kit.push.push_folder`'s (``private``, ``revision``, ``commit_message``,
        ``create_pr``). The token is checked before anything is written."""
        return push_model(self, repo_id, token=token, **options)

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        revision: str | None = None,
        verify: bool = True,
        load_weights: bool = True,
        **overrides: Any,
    ) -> TempoModel:
        """Load a kit-format folder: every component built from its folder's configs, then each
        folder's weights read once.

        ``path`` may be a hub id (``org/name``, optionally ``org/name@revision``; ``revision=``
        picks a branch, tag or commit): it is fetched into the user's hub cache, and a repository
        in the released Tempo layout is converted on load (:func:`tempo_kit.hub.model_folder`).

        Every file listed in its ``manifest.json`` must be present with its saved size and, with
        ``verify`` (the default), its saved checksum; see :mod:`tempo_kit.manifest`.
        ``load_weights=False`` stops after building on the meta device (see :meth:`from_config`);
        :meth:`load_initial_weights` then reads this folder's weights.

        ``overrides`` replace top-level config keys (``budget=4096``). A mapping for a component
        merges into its saved arguments when it names the same component or no name
        (``decoder={"dtype": "bfloat16"}``) and replaces the spec when it names another one
        (``allocator={"name": "uniform"}``).
        """
        from tempo_kit.hub import model_folder
        from tempo_kit.manifest import verify_folder

        root = model_folder(path, revision=revision)
        document = storage.read_config(root, COMPONENTS)
        verify_folder(root, checksums=verify)
        apply_overrides(document, overrides)
        model = cls.from_config(document, load_weights=False)
        model.saved_at = root
        return model.load_initial_weights() if load_weights else model
