"""What a server is started with: the limits and switches every request is checked against."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tempo_kit.generation import DEFAULT_MAX_NEW_TOKENS
from tempo_kit.serving.worker import DEFAULT_BATCH_WINDOW_S, DEFAULT_MAX_BATCH_SIZE

#: Default cap on the video cache (frames and SVLM prefixes of every cached video), in GiB.
DEFAULT_MAX_CACHE_GB = 16.0
#: Default cap on one uploaded or downloaded video, in MiB.
DEFAULT_MAX_UPLOAD_MB = 512.0
#: Default cap on a video's length, in seconds (the released sampling reads at most 1024 frames anyway).
DEFAULT_MAX_DURATION_S = 4 * 3600.0
#: JSON a request body may add around its upload (messages, options), in bytes.
BODY_SLACK_BYTES = 1 << 20


@dataclass
class ServerSettings:
    """The ``tempo-kit serve`` switches, checked by the command before the model loads."""

    model_id: str
    media_roots: list[Path] = field(default_factory=list)
    upload_dir: Path | None = None
    allow_url: bool = False
    api_key: str | None = None
    max_cache_bytes: int = int(DEFAULT_MAX_CACHE_GB * 2**30)
    cache_device: str | None = None
    max_upload_bytes: int = int(DEFAULT_MAX_UPLOAD_MB * 2**20)
    max_duration_s: float = DEFAULT_MAX_DURATION_S
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    batch_window_s: float = DEFAULT_BATCH_WINDOW_S
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE

    @property
    def max_body_bytes(self) -> int:
        """Largest request body read: one base64 upload (4/3 of its bytes) plus the JSON around it."""
        return self.max_upload_bytes * 4 // 3 + BODY_SLACK_BYTES
