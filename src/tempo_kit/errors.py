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


class OutputError(TempoKitError):
    """An output cannot be written: full or read-only disk, a file where a folder should be, a
    name too long, or a folder already holding another run."""


#: How alike (difflib's ratio, 0 to 1) a name must be to a misspelt word to be suggested.
SIMILARITY = 0.6


def did_you_mean(word: object, choices: Iterable[object]) -> str:
    """`` (did you mean 'x'?)`` for the one name in ``choices`` closest to a misspelt ``word``,
    else ``""``: the kit's one way of suggesting a name (one guess reads faster than a list, and
    the messages list every choice anyway)."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=SIMILARITY)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_choice(value: object, choices: Iterable[object], key: str) -> str:
    """``value`` if it is one of ``choices``, else a :class:`ConfigError` naming ``key``, the
    closest choice and all of them: the kit's one check of a value against a fixed set."""
    choices = list(choices)
    if value not in choices:
        raise ConfigError(f"{key}={value!r}{did_you_mean(value, choices)}: use one of {', '.join(map(str, choices))}")
    return value  # type: ignore[return-value]
