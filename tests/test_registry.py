"""Registry behaviour: registration, lookup errors, listing, building, entry-point plugins."""

from importlib import metadata

import pytest
import torch

from tempo_kit import registry as registry_module
from tempo_kit.registry import PROJECTORS, Registry, RegistryError


def make_registry() -> Registry:
    reg = Registry("widgets")

    @reg.register("alpha")
    def alpha(size: int, scale: float = 1.0):
        return ("alpha", size, scale)

    @reg.register("beta")
    class Beta:
        def __init__(self, depth: int = 2) -> None:
            self.depth = depth

    return reg


def test_register_and_build_with_kwargs():
    reg = make_registry()
    assert reg.build({"name": "alpha", "size": 3}) == ("alpha", 3, 1.0)
    assert reg.build("beta").depth == 2
    assert reg.build({"name": "beta"}, depth=5).depth == 5


def test_unknown_name_suggests_close_match():
    reg = make_registry()
    with pytest.raises(RegistryError, match=r"unknown widget 'alpah'\. Did you mean 'alpha'\?"):
        reg.get("alpah")
    with pytest.raises(RegistryError, match="Known: alpha, beta"):
        reg.get("zzz")


def test_unknown_kwarg_is_named_with_hint():
    reg = make_registry()
    with pytest.raises(RegistryError, match=r"unknown argument\(s\) 'sclae' \(did you mean 'scale'\?\)"):
        reg.build({"name": "alpha", "size": 1, "sclae": 2.0})


def test_missing_required_kwarg_is_named():
    with pytest.raises(RegistryError, match="missing required argument.*'size'"):
        make_registry().build({"name": "alpha"})


def test_spec_without_name_lists_choices():
    with pytest.raises(RegistryError, match="needs a 'name' key.*alpha, beta"):
        make_registry().build({"size": 1})


def test_duplicate_registration_is_refused_unless_override():
    reg = make_registry()
    with pytest.raises(ValueError, match="already registered"):
        reg.register("alpha")(lambda: None)
    replacement = reg.register("alpha", override=True)(lambda: "new")
    assert reg.get("alpha") is replacement


def test_list_filters_with_glob():
    reg = make_registry()
    assert reg.list() == ["alpha", "beta"]
    assert reg.list("b*") == ["beta"]
    assert "alpha" in reg and "gamma" not in reg


class _FakeEntryPoint:
    def __init__(self, name, target, group):
        self.name, self._target, self.group = name, target, group
        self.value = f"fake_pkg:{name}"

    def load(self):
        if isinstance(self._target, Exception):
            raise self._target
        return self._target


def test_entry_point_plugins_are_discovered_lazily(monkeypatch):
    calls = []

    def fake_entry_points(group):
        calls.append(group)
        return [_FakeEntryPoint("plugin_proj", lambda in_features, out_features: torch.nn.Identity(), group)]

    monkeypatch.setattr(registry_module.metadata, "entry_points", fake_entry_points)
    reg = Registry("projectors")
    assert calls == []  # nothing read at construction
    built = reg.build({"name": "plugin_proj", "in_features": 2, "out_features": 2})
    assert isinstance(built, torch.nn.Identity)
    assert calls == ["tempo_kit.projectors"]
    reg.list()
    assert calls == ["tempo_kit.projectors"]  # read once


def test_broken_plugin_names_the_entry_point(monkeypatch):
    def fake_entry_points(group):
        return [_FakeEntryPoint("broken", ImportError("no module named fake_pkg"), group)]

    monkeypatch.setattr(registry_module.metadata, "entry_points", fake_entry_points)
    widgets = Registry("widgets")
    assert widgets.list() == []  # set aside, not raised: the other names keep working
    with pytest.raises(RegistryError, match="plugin 'broken'.*tempo_kit.widgets.*no module named fake_pkg"):
        widgets.get("broken")


def test_real_entry_point_api_is_used():
    # The discovery path calls importlib.metadata.entry_points(group=...); make sure it exists.
    assert list(metadata.entry_points(group="tempo_kit.nonexistent_kind")) == []


def test_kit_projectors_are_registered():
    assert {"linear", "identity", "mlp2x_gelu"} <= set(PROJECTORS.list())


def test_kit_registries_fill_themselves_on_first_lookup():
    """``from tempo_kit import PROJECTORS; PROJECTORS.list()`` (the docs' first snippet) needs no other import."""
    import subprocess
    import sys

    code = (
        "from tempo_kit import ALLOCATORS, PROJECTORS, REDUCTIONS; "
        "print(PROJECTORS.list('lin*'), 'ata' in ALLOCATORS, REDUCTIONS.list('he*'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['linear'] True ['head']"
