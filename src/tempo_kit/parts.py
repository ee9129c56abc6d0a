"""The names of Tempo's parts, in one place: every module that loops over them imports these.

A *component* is a weight-holding module of ``TempoModel`` (an attribute of that name, saved in a
folder of that name). A *trainable part* is what a recipe's ``trainable:``, ``optim.lr:`` and the
optimiser's named groups are keyed by: the components plus the compressor's memory tokens, which
stage 0 trains on their own (paper Table A).
"""

from __future__ import annotations

#: The model's weight-holding components, in data-flow order.
COMPONENTS: tuple[str, ...] = ("compressor", "projector", "decoder")

#: The memory tokens' trainable-part name, and where they live inside the model.
MEMORY_TOKENS_PART = "memory_tokens"
MEMORY_TOKENS = "compressor.memory_tokens"

#: Trainable parts in optimiser-group order (stable, so a resumed optimiser state matches).
TRAINABLE_PARTS: tuple[str, ...] = (COMPONENTS[0], MEMORY_TOKENS_PART, *COMPONENTS[1:])
