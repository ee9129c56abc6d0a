"""A griffe extension for the API pages: Sphinx roles in docstrings become cross-references.

The kit's docstrings name other objects with Sphinx roles (``:class:`~tempo_kit.types.Segments```),
which mkdocstrings would print verbatim. Each role becomes an optional autorefs link: a link where
the target has an API entry, plain code where it has none. ``~`` shows only the last name, as in
Sphinx; a short name is resolved in the scope of the object whose docstring holds it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import escape

import griffe

ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj):`(?P<tilde>~?)(?P<name>[^`]+)`")


def _walk(obj: griffe.Object) -> Iterator[griffe.Object]:
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _walk(member)


def _target(obj: griffe.Object, name: str) -> str | None:
    """The full path ``name`` stands for inside ``obj``'s docstring, or None."""
    if name.startswith("."):  # relative to the module's package, as in an import
        depth = len(name) - len(name.lstrip("."))
        base = obj.module.path.split(".")
        return ".".join(base[: len(base) - depth + 1] + [name.lstrip(".")]) if depth <= len(base) else None
    first, _, rest = name.partition(".")
    for scope in (obj, obj.parent, obj.module):
        if scope is None:
            continue
        try:
            resolved = scope.resolve(first)
        except (griffe.NameResolutionError, AttributeError, KeyError):
            continue
        return f"{resolved}.{rest}" if rest else resolved
    return name if "." in name else None


def _rewrite(obj: griffe.Object, text: str) -> str:
    def link(match: re.Match) -> str:
        name = match["name"]
        shown = escape(name.rsplit(".", 1)[-1] if match["tilde"] else name)
        path = _target(obj, name)
        if path is None:
            return f"`{name}`"
        return f'<autoref identifier="{escape(path)}" optional><code>{shown}</code></autoref>'

    return ROLE.sub(link, text)


class SphinxRoles(griffe.Extension):
    """Rewrites the roles of every docstring once the package is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        for obj in _walk(pkg):
            if obj.docstring is not None and ":`" in obj.docstring.value:
                obj.docstring.value = _rewrite(obj, obj.docstring.value)
