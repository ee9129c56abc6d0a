"""Error types for bad user input: each message names the file, key or value and the fix.

The CLI prints these without a traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class TempoKitError(Exception):
    """Base of the kit's user-facing errors."""


class ConfigError(TempoKitError, ValueError):
    """A recipe or argument is wrong (unknown key, impossible value)."""


class MediaError(TempoKitError, ValueError):
    """A video or image cannot be read or is unusable (missing, corrupt, 0 frames, bad fps)."""


class CheckpointError(TempoKitError, FileNotFoundError):
    """A checkpoint is missing, not local, or does not have the expected layout."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices`` to a misspelt ``word``, else ``""``."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_choice(value: object, choices: Iterable[str], key: str) -> str:
    """``value`` if it is one of ``choices``, else a :class:`ConfigError` naming ``key`` and the choices."""
    choices = list(choices)
    if value not in choices:
        raise ConfigError(f"{key}={value!r}{did_you_mean(str(value), choices)}: use one of {', '.join(choices)}")
    return value  # type: ignore[return-value]
