"""Projectors: map memory tokens from the compressor's width to the LLM's.

Names follow the LLaVA family the released weights come from: ``linear`` (one layer with bias,
Tempo-6B's ``mm_projector_type: linear``), ``mlp{N}x_gelu`` (N linear layers with GELU between),
``identity`` (widths already match).
"""

from __future__ import annotations

from torch import Tensor, nn

from tempo_kit.registry import PROJECTORS


class Projector(nn.Module):
    """Maps ``[*, in_features]`` to ``[*, out_features]``."""

    in_features: int
    out_features: int

    def forward(self, x: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError


@PROJECTORS.register("linear")
class LinearProjector(Projector):
    """One affine layer (with bias): the released Tempo-6B projector, 2048 → 2560."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.proj = nn.Linear(in_features, out_features, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


class MLPProjector(Projector):
    """``depth`` linear layers with GELU between them (LLaVA's ``mlp2x_gelu`` for depth 2)."""

    def __init__(self, in_features: int, out_features: int, depth: int = 2) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"MLP projector depth must be ≥ 1, got {depth}")
        self.in_features, self.out_features = in_features, out_features
        layers: list[nn.Module] = [nn.Linear(in_features, out_features)]
        for _ in range(depth - 1):
            layers += [nn.GELU(), nn.Linear(out_features, out_features)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


#: LLaVA's MLP projector names: ``mlp{N}x_gelu`` for any depth N ≥ 1.
MLP_NAME_PATTERN = r"mlp([1-9]\d*)x_gelu"


def _mlp_builder(depth: int):
    def build(in_features: int, out_features: int) -> MLPProjector:
        return MLPProjector(in_features, out_features, depth=depth)

    build.__doc__ = f"{depth}-layer MLP projector with GELU (``mlp{depth}x_gelu``)."
    return build


PROJECTORS.register_family(MLP_NAME_PATTERN, lambda match: _mlp_builder(int(match.group(1))))
for _depth in (1, 2, 3, 4):  # the usual depths, so that ``PROJECTORS.list()`` shows them
    PROJECTORS.register(f"mlp{_depth}x_gelu")(_mlp_builder(_depth))


@PROJECTORS.register("identity")
class IdentityProjector(Projector):
    """No-op for a compressor whose width already equals the LLM's."""

    def __init__(self, in_features: int, out_features: int | None = None) -> None:
        super().__init__()
        out_features = in_features if out_features is None else out_features
        if out_features != in_features:
            raise ValueError(
                f"identity projector needs in_features == out_features, got {in_features} → {out_features}; "
                "use 'linear' or 'mlp2x_gelu' to change width"
            )
        self.in_features = self.out_features = in_features

    def forward(self, x: Tensor) -> Tensor:
        return x


def build_projector(name: str, in_features: int, out_features: int, **kwargs) -> Projector:
    """Build a projector by registry name (``mlp{N}x_gelu`` works for any N, LLaVA naming)."""
    return PROJECTORS.build(
        {"name": name, "in_features": in_features, "out_features": out_features, **kwargs}
    )
