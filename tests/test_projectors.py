"""Projector shapes, names and errors."""

import pytest
import torch

from tempo_kit.projectors import IdentityProjector, LinearProjector, MLPProjector, build_projector


@pytest.mark.parametrize("name", ["linear", "mlp1x_gelu", "mlp2x_gelu", "mlp3x_gelu", "mlp6x_gelu"])
def test_projectors_map_width(name):
    proj = build_projector(name, 12, 20)
    out = proj(torch.randn(2, 5, 12))
    assert out.shape == (2, 5, 20)
    assert (proj.in_features, proj.out_features) == (12, 20)


def test_linear_projector_is_one_affine_layer_with_bias():
    proj = LinearProjector(4, 6)
    params = dict(proj.named_parameters())
    assert set(params) == {"proj.weight", "proj.bias"}
    x = torch.randn(3, 4)
    torch.testing.assert_close(proj(x), x @ params["proj.weight"].T + params["proj.bias"])


def test_mlp_depth_counts_linear_layers():
    proj = MLPProjector(4, 6, depth=3)
    assert sum(isinstance(m, torch.nn.Linear) for m in proj.modules()) == 3
    assert sum(isinstance(m, torch.nn.GELU) for m in proj.modules()) == 2


def test_identity_rejects_width_change():
    x = torch.randn(2, 8)
    assert IdentityProjector(8)(x) is x
    with pytest.raises(ValueError, match="in_features == out_features"):
        build_projector("identity", 8, 16)


def test_unknown_projector_name_suggests():
    with pytest.raises(KeyError, match=r"unknown projector 'linaer' \(did you mean 'linear'\?\)"):
        build_projector("linaer", 2, 2)


def test_memory_is_projected_in_the_projectors_dtype():
    """fp32 memory into a bf16 projector (training, inference and the feature store all go this way)."""
    from tempo_kit.model.visual_selection import project

    projector = LinearProjector(4, 3).to(torch.bfloat16)
    tokens = torch.randn(5, 4)
    out = project(projector, tokens)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out, projector(tokens.bfloat16()))
    assert project(IdentityProjector(4), tokens) is tokens  # no weights: nothing to match
