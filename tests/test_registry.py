"""Registry behaviour: registration, lookup errors, listing, building, entry-point plugins."""

import sys

import pytest

from tempo_kit.errors import ConfigError, check_choice, did_you_mean
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
    with pytest.raises(RegistryError, match=r"^unknown widget 'alpah' \(did you mean 'alpha'\?\)\. Known: alpha, beta\.$"):
        reg.get("alpah")
    with pytest.raises(RegistryError, match="Known: alpha, beta"):
        reg.get("zzz")


def test_did_you_mean_is_one_style_for_every_suggestion():
    assert did_you_mean("alpah", ["alpha", "beta"]) == " (did you mean 'alpha'?)"
    # only the closest, though 'longvideobench' is alike enough (ratio 0.6) to be suggested alone
    assert did_you_mean("lvbnch", ["mlvu", "longvideobench", "lvbench"]) == " (did you mean 'lvbench'?)"
    assert did_you_mean("lvbnch", ["mlvu", "longvideobench"]) == " (did you mean 'longvideobench'?)"
    assert did_you_mean("lvbnch", ["mlvu", "videomme"]) == ""  # ratios 0.4 and 0.14: no guess
    assert did_you_mean("zzz", ["alpha", "beta"]) == ""
    assert did_you_mean(None, [None, "auto"]) == " (did you mean 'None'?)"  # non-strings are compared as text
    with pytest.raises(ConfigError, match=r"^mode='exakt' \(did you mean 'exact'\?\): use one of released, exact$"):
        check_choice("exakt", ("released", "exact"), "mode")
    assert check_choice("exact", ("released", "exact"), "mode") == "exact"


def test_unknown_kwarg_is_named_with_hint():
    reg = make_registry()
    with pytest.raises(RegistryError, match=r"unknown argument 'sclae' \(did you mean 'scale'\?\)"):
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


def install_distribution(site, name: str, group: str, entry_points: dict[str, str], modules: dict[str, str]):
    """A real installed distribution, as pip leaves one: a ``.dist-info`` folder with METADATA and
    ``entry_points.txt`` beside its modules, in a folder that is then put on ``sys.path``."""
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "".join(f"{key} = {value}\n" for key, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{group}]\n{lines}")
    for module, code in modules.items():
        (site / f"{module}.py").write_text(code)


def test_an_installed_plugin_is_discovered_lazily(tmp_path, monkeypatch):
    install_distribution(
        tmp_path, "tempo-widget-plugin", "tempo_kit.widgets", {"gadget": "tempo_widget_plugin:Gadget"},
        {"tempo_widget_plugin": "class Gadget:\n    def __init__(self, size: int):\n        self.size = size\n"},
    )  # fmt: skip
    widgets = Registry("widgets")  # made before the plugin is importable: nothing is read at construction
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "tempo_widget_plugin" not in sys.modules
    gadget = widgets.build({"name": "gadget", "size": 3})
    assert type(gadget).__module__ == "tempo_widget_plugin" and gadget.size == 3
    assert widgets.origin("gadget") == "tempo-widget-plugin"
    with pytest.raises(RegistryError, match=r"widget 'gadget' got unknown argument 'sise' \(did you mean 'size'\?\)"):
        widgets.build({"name": "gadget", "sise": 3})
    assert widgets.list() == ["gadget"]


def test_broken_plugin_names_the_entry_point(tmp_path, monkeypatch):
    install_distribution(
        tmp_path, "tempo-broken-widget", "tempo_kit.widgets", {"broken": "tempo_broken_widget:Widget"},
        {"tempo_broken_widget": "import a_module_that_is_not_installed\n"},
    )  # fmt: skip
    monkeypatch.syspath_prepend(str(tmp_path))
    widgets = Registry("widgets")
    assert widgets.list() == []  # set aside, not raised: the other names keep working
    with pytest.raises(
        RegistryError,
        match=r"plugin 'broken' \(tempo_broken_widget:Widget, package 'tempo-broken-widget'\) in entry-point "
        r"group 'tempo_kit.widgets' failed to import: ModuleNotFoundError: No module named "
        r"'a_module_that_is_not_installed'; fix or reinstall 'tempo-broken-widget'",
    ):
        widgets.get("broken")


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


def test_every_registered_component_refuses_an_argument_it_does_not_take():
    """Whatever signature a builder shows (``uniform`` inherits ``(*args, **kwargs)`` from
    nn.Module), an unknown argument is a RegistryError before it is called, never a TypeError."""
    from tempo_kit.registry import ALLOCATORS, PROJECTORS, REDUCTIONS, RegistryError

    for registry in (ALLOCATORS, PROJECTORS, REDUCTIONS):
        for name in registry.list():
            with pytest.raises(RegistryError, match=rf"{registry.noun} {name!r} got unknown argument 'not_an_option'"):
                registry.build({"name": name, "not_an_option": 1})
