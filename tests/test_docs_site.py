"""The documentation as readers get it: built strictly, no raw Sphinx roles, the home page's
way in, and the home page and gallery pages rendered by a real browser (headless Chromium)."""

from __future__ import annotations

import re

import pytest
from repo_scripts import load_script

from tempo_kit.browser import find_chromium

pytestmark = pytest.mark.slow

screenshots = load_script("scripts/docs_screenshots.py")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return screenshots.build_site(tmp_path_factory.mktemp("site") / "site")


def test_no_raw_roles_and_api_pages_link(site):
    pages = {p: p.read_text() for p in site.rglob("*.html")}
    raw = {str(p.relative_to(site)): re.findall(r":(?:class|func|meth|mod|data|attr|exc):`[^`]*`", text) for p, text in pages.items()}
    assert not {p: r for p, r in raw.items() if r}
    model_page = (site / "reference" / "model" / "index.html").read_text()
    assert re.search(r'<a class="autorefs autorefs-internal"[^>]*href="[^"]*#tempo_kit\.types\.TempoBatch"', model_page)
    assert not any("huggingface-cli" in text for text in pages.values())


def test_home_page_is_a_way_in(site):
    home = (site / "index.html").read_text()
    for needle in (
        'id="install"', 'id="quickstart"', 'href="https://arxiv.org/abs/2604.08120"',
        'href="https://github.com/FeiElysia/Tempo"', 'src="assets/infer-allocation.png"', 'href="commands/fit/"',
    ):  # fmt: skip
        assert needle in home, needle
    text = re.sub(r"<[^>]+>", "", home)  # code blocks split commands into highlighted spans
    for command in ("bash scripts/demo.sh", "bash scripts/test.sh", "hf download Qwen/Qwen3-4B"):
        assert command in text, command
    assert (site / "commands" / "fit" / "index.html").is_file()
    for page in ("compressor_and_ata", "plugin_package"):  # gallery pages include their sources
        text = (site / "examples" / page / "index.html").read_text()
        assert "--8&lt;--" not in text and ("reduce_tokens" in text or "GatedProjector" in text)


@pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed (.ci/run installs it)")
@pytest.mark.parametrize("name", sorted(screenshots.PAGES))
def test_pages_render_in_chromium(site, name, tmp_path):
    from PIL import Image

    shot = screenshots.screenshot(site / screenshots.PAGES[name], tmp_path / f"{name}.png")
    with Image.open(shot) as image:
        assert image.size == (1280, 900)
        grey = image.convert("L").resize((64, 45))
        colours = len(set(grey.tobytes()))
    assert colours > 20, f"{name} rendered (nearly) blank: {colours} grey levels"


def test_tables_show_no_escape_backslashes_and_the_build_code_is_not_published(site):
    cells = {
        str(page.relative_to(site)): re.findall(r"<td>(?:(?!</td>).)*\\\|(?:(?!</td>).)*</td>", page.read_text(), re.S)
        for page in site.rglob("*.html")
    }
    assert not {page: found for page, found in cells.items() if found}
    assert "--relevance {trained,base}" in (site / "commands" / "infer" / "index.html").read_text()
    assert not (site / "hooks").exists() and not list(site.rglob("griffe_roles.py"))


def test_api_pages_show_the_value_of_a_constant_default(site):
    """``k_max=K_MAX`` is shown as ``128``: a reader of the page cannot look the name up."""
    page = " ".join(re.sub(r"<[^>]+>", " ", (site / "reference" / "compressors" / "index.html").read_text()).split())
    assert re.search(r"\bk_max int [^:]{0,80}? 128\b", page)  # the parameter table's default column
    assert "K_MAX" not in page


def test_constant_defaults_resolve_to_their_values():
    """The griffe extension alone (no site build): constants, arithmetic on them, names left alone."""
    from pathlib import Path

    import griffe

    root = Path(__file__).resolve().parents[1]
    extensions = griffe.load_extensions(f"{root / 'docs' / 'hooks' / 'griffe_constants.py'}:ConstantValues")
    package = griffe.load("tempo_kit", search_paths=[str(root / "src")], extensions=extensions)
    defaults = {p.name: str(p.default) for p in package["compressors.qwen3_vl.Qwen3VLCompressor.__init__"].parameters}
    assert defaults["k_max"] == "128"
    loading = {p.name: str(p.default) for p in package["video.decode.load_video"].parameters}
    assert loading["fps"] == "2.0" and loading["chunk_bytes"] == "64 * 2 ** 20"
