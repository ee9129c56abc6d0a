"""Error types for bad user input: each message names the file, key or value and the fix.

The CLI prints these without a traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class TempoKitError(Exception):
    """Base of the kit's user-facing errors."""


class ConfigError(TempoKitError, ValueError):
    """A recipe or argument is wrong (unknown key, impossible value)."""


class MediaError(TempoKitError, ValueError):
    """A video or image cannot be read or is unusable (missing, corrupt, 0 frames, bad fps)."""


class CheckpointError(TempoKitError, FileNotFoundError):
    """A checkpoint is missing, not local, or does not have the expected layout."""
