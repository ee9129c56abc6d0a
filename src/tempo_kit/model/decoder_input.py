"""What the decoder receives for one call: the call's allocation settings, then select → assemble.

``TempoModel.forward`` (training) and ``TempoModel.generate`` (inference) share this one path and
differ only in its arguments: training keeps every token and pads right, inference allocates and
pads left. Kept apart from the model class so that the path can be read (and changed) in one
place, whichever of the two calls it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from tempo_kit.model.assembly import AssembledInputs, SequenceAssembler
from tempo_kit.model.build import build_component
from tempo_kit.model.config import TempoConfig, check_model_settings
from tempo_kit.model.timing import PhaseTimer
from tempo_kit.model.visual_selection import allocation_records, select_visuals
from tempo_kit.registry import ALLOCATORS
from tempo_kit.types import Allocation, CompressorOutput, TempoBatch


def allocation_settings(
    config: TempoConfig,
    model_allocator: nn.Module,
    budget: int | None,
    k_min: int | None,
    reduction: str | Mapping[str, Any] | None,
    allocator: str | Mapping[str, Any] | nn.Module | None,
) -> dict[str, Any]:
    """This call's allocation settings: the arguments given, ``config``'s (and ``model_allocator``) for the rest.

    ``allocator`` may be a registry name, a spec or a built module; ``reduction`` a name or a spec
    ``{name: merge, ...arguments}``. Budget and ``k_min`` are checked here, before any work.
    """
    if allocator is None:
        allocator = model_allocator
    elif not isinstance(allocator, nn.Module):
        allocator = build_component(
            ALLOCATORS, {"name": allocator} if isinstance(allocator, str) else allocator, "allocator"
        )
    budget = config.budget if budget is None else budget
    k_min = config.k_min if k_min is None else k_min
    check_model_settings({"budget": budget, "k_min": k_min}, "")  # True, 0 or 2.5 are not budgets
    if reduction is None:
        name, kwargs = config.reduction_name, config.reduction_kwargs
    elif isinstance(reduction, Mapping):
        name, kwargs = reduction["name"], {k: v for k, v in reduction.items() if k != "name"}
    else:
        name, kwargs = reduction, {}
    return {"allocator": allocator, "budget": budget, "k_min": k_min, "reduction": name, "reduction_kwargs": kwargs}


def decoder_input(
    batch: TempoBatch,
    compressed: CompressorOutput,
    settings: Mapping[str, Any],
    *,
    projector: nn.Module,
    assembler: SequenceAssembler,
    config: TempoConfig,
    allocate: bool,
    labels: Tensor | None,
    max_context: int,
    reserve: int,
    padding_side: str,
    timer: PhaseTimer,
) -> tuple[AssembledInputs, Tensor, list[Allocation | None] | None]:
    """Select each segment's tokens, assemble the time-tagged decoder input, add the DDP anchor.

    ``settings`` are :func:`allocation_settings`'; ``config`` gives ``tag_images`` and
    ``context_cut``. Returns the assembled inputs, their embeddings (anchor added) and, with
    ``allocate``, each sample's :class:`~tempo_kit.types.Allocation` as fed to the decoder.
    """
    with timer.phase("allocate"):
        visuals, anchor = select_visuals(
            batch, compressed, projector, allocate=allocate, tag_images=config.tag_images, **settings
        )
    with timer.phase("assemble"):
        assembled = assembler(
            batch.input_ids,
            batch.attention_mask,
            visuals,
            labels,
            max_context=max_context,
            reserve=reserve,
            cut=config.context_cut,
            padding_side=padding_side,
            sample_ids=batch.ids,
        )
        embeds = assembled.inputs_embeds
        if anchor is not None:
            embeds = embeds + anchor.to(embeds.dtype)
        allocations = None
        if allocate:
            allocations = allocation_records(
                batch, compressed, assembled.counts, settings["budget"], settings["k_min"]
            )
    return assembled, embeds, allocations
