"""Key checks against the schema: unknown keys get a did-you-mean, fixed keys may not be deleted."""

from __future__ import annotations

from collections.abc import Mapping

from tempo_kit.errors import ConfigError, did_you_mean
from tempo_kit.recipes.schema import DEFAULTS, OPEN_SECTIONS


def check_keys(user: Mapping, source: str) -> None:
    """Reject keys that :data:`DEFAULTS` does not know, with a did-you-mean."""
    _walk_unknown(user, DEFAULTS, "", source)


def _walk_unknown(user: Mapping, schema: Mapping, prefix: str, source: str) -> None:
    for key, value in user.items():
        dotted = f"{prefix}{key}"
        if dotted == "base":
            continue
        if key not in schema:
            known = ", ".join(sorted(schema)) or "(none)"
            where = f"under {prefix[:-1]!r}" if prefix else "at the top level"
            raise ConfigError(
                f"recipe {source!r}: unknown key {dotted!r}{did_you_mean(key, schema)}. "
                f"Known keys {where}: {known}."
            )
        if dotted in OPEN_SECTIONS:
            continue
        if isinstance(schema[key], Mapping) and schema[key] and isinstance(value, Mapping):
            _walk_unknown(value, schema[key], dotted + ".", source)


def check_present(cfg: Mapping, source: str, schema: Mapping = DEFAULTS, prefix: str = "") -> None:
    """Every fixed key must stay present (``~key`` may only delete within open sections)."""
    for key, default in schema.items():
        dotted = f"{prefix}{key}"
        if key not in cfg:
            raise ConfigError(
                f"recipe {source!r}: key {dotted!r} is missing (deleted with ~{dotted}?); "
                f"set it instead, e.g. {dotted}={default!r}"
            )
        nested = isinstance(default, Mapping) and default and isinstance(cfg[key], Mapping)
        if nested and dotted not in OPEN_SECTIONS:
            check_present(cfg[key], source, default, dotted + ".")
