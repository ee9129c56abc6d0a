"""Validation at a binding budget: one compressor pass per batch, answered under several allocators.

Tempo's claim is that spending a visual-token budget where the relevance points answers better
than spending it evenly. With ``validation.compare_budget`` set, every validation batch is
compressed once and answered once per ``validation.compare_allocators`` entry at that budget, and
the run reports each one's accuracy beside the usual one (``val/ata_accuracy@28``,
``val/uniform_accuracy@28``): the demo's ATA-vs-even-split printout. Sharing the compressor pass
keeps the comparison cheap and makes the allocation the only thing that differs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from tempo_kit.registry import ALLOCATORS, check_spec, parse_spec

#: Where the settings live in a recipe.
WHERE = "validation.compare_allocators"


class BudgetComparison(nn.Module):
    """The allocators to compare at ``budget`` and one accuracy accumulator each.

    Args:
        budget: visual tokens per sample; binding when it is below ``segments × k_max``.
        specs: allocator specs as the command line writes them (``ata``, ``ata:mode=exact``).
    """

    def __init__(self, budget: int, specs: Sequence[str]) -> None:
        super().__init__()
        from torchmetrics import MeanMetric

        self.budget = int(budget)
        self.labels = [str(s) for s in specs]
        built = []
        for text in self.labels:  # every name and argument checked before any training
            spec = parse_spec(text, WHERE)
            check_spec(ALLOCATORS, spec, WHERE)
            built.append(ALLOCATORS.build(spec))
        self.allocators = nn.ModuleList(built)
        self.accuracy = nn.ModuleList(MeanMetric() for _ in self.labels)

    @classmethod
    def from_recipe(cls, recipe: Mapping[str, Any]) -> BudgetComparison | None:
        """The comparison the recipe's ``validation:`` section asks for, or ``None`` (the default)."""
        settings = recipe.get("validation") or {}
        budget = settings.get("compare_budget")
        if budget is None:
            return None
        return cls(budget, settings.get("compare_allocators") or ["ata", "uniform"])

    def update(
        self, model, prompt, compressed, answers: Sequence[str | None], settings: Mapping[str, Any]
    ) -> None:
        """Answer ``prompt`` (a prompt-only batch) from ``compressed`` under each allocator; score it."""
        from tempo_kit.training.scoring import answer_hits

        for allocator, accuracy in zip(self.allocators, self.accuracy):
            texts = model.generate(
                prompt,
                budget=self.budget,
                allocator=allocator,
                compressed=compressed,
                max_new_tokens=int(settings["max_new_tokens"]),
            ).texts
            hits = answer_hits(list(texts), list(answers), int(settings["num_options"]))
            if hits:
                accuracy.update(sum(hits) / len(hits), weight=len(hits))

    def compute(self, stage: str) -> dict[str, float]:
        """``{stage}/<allocator>_accuracy@<budget>`` of every allocator that scored a row; then reset.

        Collective across devices (torchmetrics syncs in ``compute``): every rank calls it.
        """
        import math
        import warnings

        out = {}
        for label, accuracy in zip(self.labels, self.accuracy):
            with warnings.catch_warnings():  # no row with a reference anywhere: nan, left out
                warnings.filterwarnings("ignore", message=r".*was called before the ``update`` method")
                value = float(accuracy.compute())
            if not math.isnan(value):
                out[f"{stage}/{label}_accuracy@{self.budget}"] = value
            accuracy.reset()
        return out
