"""A griffe extension for the API pages: a default that names a constant shows the constant's value.

``k_max: int = K_MAX`` tells a reader nothing on a page where ``K_MAX`` has no entry of its own;
each parameter default that is the name of a module-level constant of the package with a literal
value (a number, a string, a tuple of them, arithmetic on numbers, followed through a few names) is shown as that value:
``k_max: int = 128``. Anything else (a call, a name from another package) is left as written.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

import griffe

#: what a shown value may be made of: literals and arithmetic on them (``64 * 2**20``), no names
LITERAL_NODES = (ast.Expression, ast.Constant, ast.Tuple, ast.List, ast.BinOp, ast.UnaryOp, ast.operator, ast.unaryop, ast.Load)

#: names followed from one constant to the next (``A = B``, ``B = 128``) before giving up
MAX_HOPS = 4


def _functions(obj: griffe.Object) -> Iterator[griffe.Function]:
    if obj.is_function:
        yield obj
    for member in obj.members.values():
        if not member.is_alias and (member.is_module or member.is_class or member.is_function):
            yield from _functions(member)


def constant_value(obj: griffe.Object, expression: object, hops: int = MAX_HOPS) -> str | None:
    """The literal value ``expression`` names, as source text, or ``None``."""
    if not isinstance(expression, griffe.ExprName) or hops == 0:
        return None
    try:
        target = obj.modules_collection.get_member(expression.canonical_path)
        if target.is_alias:
            target = target.final_target
    except (griffe.AliasResolutionError, griffe.CyclicAliasError, KeyError, ValueError, AttributeError):
        return None
    if not target.is_attribute or target.value is None:
        return None
    if isinstance(target.value, griffe.ExprName):
        return constant_value(target, target.value, hops - 1)
    text = str(target.value)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return None
    return text if all(isinstance(node, LITERAL_NODES) for node in ast.walk(tree)) else None


class ConstantValues(griffe.Extension):
    """Replaces each parameter default naming a literal constant by its value, once the package is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        for function in _functions(pkg):
            for parameter in function.parameters:
                value = constant_value(function, parameter.default)
                if value is not None:
                    parameter.default = value
