"""The recipes shipped inside the package: found by name, listed, shown and copied.

The wheel carries ``recipes/*.yaml`` as package data (``tempo_kit/shipped_recipes``), so
``--recipe stage2`` works from any folder once the kit is installed, like ``tune ls`` / ``tune cp``
in torchtune. A recipe's description is the comment under its launch line.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from tempo_kit.errors import ConfigError, did_you_mean

#: The package-data folder holding the shipped recipes.
SHIPPED_DIR = "shipped_recipes"


def shipped_dir() -> Path:
    """The folder of the installed package's recipes."""
    return Path(str(resources.files("tempo_kit") / SHIPPED_DIR))


def shipped_recipes() -> dict[str, Path]:
    """``{name: path}`` of every shipped recipe (``stage2`` → ``.../stage2.yaml``), sorted by name."""
    folder = shipped_dir()
    return {path.stem: path for path in sorted(folder.glob("*.yaml"))} if folder.is_dir() else {}


#: Longest description ``recipes list`` prints; a longer one is cut at a word boundary with "…".
DESCRIPTION_WIDTH = 110


def describe(path: Path, width: int = DESCRIPTION_WIDTH) -> str:
    """A recipe's one-line summary: the first sentence of its heading comment (the launch command
    left out), which may run over several comment lines, shortened at a word boundary."""
    import re
    import textwrap

    words: list[str] = []
    for line in path.read_text().splitlines():
        if not line.strip():
            if words:
                break
            continue
        if not line.startswith("#"):
            break
        text = line.lstrip("#").strip()
        if text.startswith("tempo-kit ") or not text:
            if words:
                break
            continue
        words.append(text)
    paragraph = " ".join(words)
    sentence = re.split(r"(?<=[.!])\s+(?=[A-Z])", paragraph, maxsplit=1)[0]
    return textwrap.shorten(sentence, width=width, placeholder=" …")


def shipped_recipe(name: str) -> Path:
    """The shipped recipe called ``name``, or a ConfigError listing the names there are."""
    recipes = shipped_recipes()
    if name not in recipes:
        raise ConfigError(
            f"no shipped recipe {name!r}{did_you_mean(name, recipes)}; shipped: {', '.join(recipes)} "
            "(`tempo-kit recipes list`), or pass a YAML file path"
        )
    return recipes[name]


def resolve_recipe(value: str | Path) -> Path:
    """``--recipe`` value → file: an existing path as given, else a shipped recipe's name."""
    path = Path(value).expanduser()
    if path.exists() or path.suffix in (".yaml", ".yml") or len(path.parts) > 1:
        return path
    return shipped_recipe(str(value))


def base_chain(path: Path) -> list[Path]:
    """The recipe file and the ``base:`` files it builds on, in that order (bases relative to it)."""
    from omegaconf import OmegaConf

    chain = [path]
    while True:
        base = OmegaConf.load(chain[-1]).get("base")
        if base is None or (chain[-1].parent / str(base)) in chain:
            return chain
        chain.append(chain[-1].parent / str(base))


def copy_recipe(name: str, folder: str | Path) -> list[Path]:
    """Copy a shipped recipe and its ``base:`` chain into ``folder`` (made if needed); never overwrites."""
    from tempo_kit.atomic import check_output_path

    chain = base_chain(shipped_recipe(name))
    out = check_output_path(folder, what="recipes copy", kind="folder")
    targets = [out / source.name for source in chain]
    existing = [str(t) for t in targets if t.exists()]
    if existing:
        raise ConfigError(f"{', '.join(existing)} already exist(s); copy into another folder or remove them first")
    out.mkdir(parents=True, exist_ok=True)
    for source, target in zip(chain, targets):
        shutil.copyfile(source, target)
    return targets
