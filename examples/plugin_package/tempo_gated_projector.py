"""A gated linear projector: ``W x ⊙ σ(G x)``, registered with tempo-kit through an entry point.

The package's ``pyproject.toml`` names it in the ``tempo_kit.projectors`` entry-point group, so
after ``pip install`` a recipe selects it with ``model.projector.name: gated`` and
``tempo-kit components`` lists it with this package's name. A model exported with it records the
package in ``tempo_config.json``, so loading it where the package is missing says what to install.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tempo_kit.projectors import Projector


class GatedProjector(Projector):
    """``[*, in_features]`` → ``[*, out_features]`` through a sigmoid-gated linear map."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.value = nn.Linear(in_features, out_features)
        self.gate = nn.Linear(in_features, out_features)

    def forward(self, x: Tensor) -> Tensor:
        return self.value(x) * torch.sigmoid(self.gate(x))
