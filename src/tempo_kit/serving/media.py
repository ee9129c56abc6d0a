"""Where a request's video comes from, under the server's rules: a local file, an upload, a URL.

- ``file://`` paths are read only inside ``--media-root``: the path is resolved (symbolic links
  and ``..`` followed) and anything that lands outside the root is refused with 403.
- ``data:video/…;base64,…`` uploads are decoded under ``--max-upload-mb`` (413 past it) and kept
  in the server's upload folder under their content hash, so the same upload is stored once.
- ``http(s)://`` URLs are fetched only with ``--allow-url`` (403 otherwise), under the same size cap.

Every video is named by the SHA-256 of its bytes, the content half of the video cache's key; a
file's hash is remembered per (path, size, modification time), so a file read again is not hashed
again while it is unchanged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tempo_kit.atomic import atomic_file
from tempo_kit.serving.protocol import RequestError

#: Bytes read at a time when hashing or downloading.
CHUNK_BYTES = 1 << 20
#: Seconds a remote URL may take to answer (``--allow-url``).
URL_TIMEOUT_S = 30.0
#: File endings given to uploads by their media type (the decoders pick the container from it).
UPLOAD_SUFFIXES = {"video/mp4": ".mp4", "video/webm": ".webm", "video/x-matroska": ".mkv", "video/quicktime": ".mov"}


@dataclass(frozen=True)
class LocalVideo:
    """A video the server may read: its path on this machine and the SHA-256 of its bytes."""

    path: Path
    sha256: str


class MediaPolicy:
    """The rules above, applied to one URL at a time (:meth:`resolve`); safe across threads."""

    def __init__(
        self, media_roots: list[Path], upload_dir: Path, max_upload_bytes: int, allow_url: bool
    ) -> None:
        self.media_roots = [Path(root).resolve(strict=True) for root in media_roots]
        self.upload_dir = Path(upload_dir)
        self.max_upload_bytes = max_upload_bytes
        self.allow_url = allow_url
        self._hashes: dict[tuple[str, int, int], str] = {}
        self._lock = threading.Lock()

    def resolve(self, url: str) -> LocalVideo:
        """The local video behind ``url``, or a :class:`RequestError` with its status."""
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme == "file":
            return self._file(url)
        if scheme == "data":
            return self._upload(url)
        if scheme in ("http", "https"):
            if not self.allow_url:
                raise RequestError(403, f"{url[:80]}: remote URLs are off on this server (start it with --allow-url)")
            return self._download(url)
        raise RequestError(400, f"video URL {url[:80]!r}: use file://, data:video/…;base64, or https://")

    # ------------------------------------------------------------------------------ file://
    def _file(self, url: str) -> LocalVideo:
        parsed = urllib.parse.urlparse(url)
        if parsed.netloc not in ("", "localhost"):
            raise RequestError(400, f"{url}: a file:// URL names a path on this server (file:///path)")
        if not self.media_roots:
            raise RequestError(403, f"{url}: file:// URLs are off on this server (start it with --media-root DIR)")
        raw = Path(urllib.parse.unquote(parsed.path))
        try:
            path = raw.resolve(strict=True)
        except (OSError, RuntimeError):
            path = None
        if path is None or not any(path.is_relative_to(root) for root in self.media_roots):
            # the same answer for a missing file outside the root: nothing about other folders leaks
            if path is None and any(raw.resolve().is_relative_to(root) for root in self.media_roots):
                raise RequestError(404, f"{raw}: no such file under the media root")
            raise RequestError(403, f"{raw}: outside the media root; only files under --media-root are served")
        if not path.is_file():
            raise RequestError(404, f"{raw}: not a file")
        return LocalVideo(path, self._file_hash(path))

    def _file_hash(self, path: Path) -> str:
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            known = self._hashes.get(key)
        if known is None:
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                while chunk := handle.read(CHUNK_BYTES):
                    digest.update(chunk)
            known = digest.hexdigest()
            with self._lock:
                self._hashes[key] = known
        return known

    # ------------------------------------------------------------------------------ data:
    def _upload(self, url: str) -> LocalVideo:
        header, sep, payload = url.partition(",")
        if not sep or not header.endswith(";base64"):
            raise RequestError(400, "a data: video must be base64: data:video/mp4;base64,<bytes>")
        media_type = header[len("data:") : -len(";base64")].lower()
        if not media_type.startswith("video/"):
            raise RequestError(400, f"data:{media_type}: send a video (data:video/mp4;base64,…)")
        if len(payload) * 3 // 4 > self.max_upload_bytes:  # before decoding a byte
            raise RequestError(413, self._too_large(len(payload) * 3 // 4))
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(400, "the data: video is not valid base64") from None
        return self._store(data, UPLOAD_SUFFIXES.get(media_type, ".mp4"))

    def _store(self, data: bytes, suffix: str) -> LocalVideo:
        sha = hashlib.sha256(data).hexdigest()
        path = self.upload_dir / f"{sha}{suffix}"
        if not path.exists():
            with atomic_file(path, "wb", encoding=None) as handle:
                handle.write(data)
        return LocalVideo(path, sha)

    def _too_large(self, size: int) -> str:
        return (
            f"the video is {size / 2**20:.1f} MiB, over this server's upload limit of "
            f"{self.max_upload_bytes / 2**20:.1f} MiB (--max-upload-mb)"
        )

    # ------------------------------------------------------------------------------ https://
    def _download(self, url: str) -> LocalVideo:
        chunks, size = [], 0
        try:
            with urllib.request.urlopen(url, timeout=URL_TIMEOUT_S) as response:  # noqa: S310 (scheme checked)
                while chunk := response.read(CHUNK_BYTES):
                    size += len(chunk)
                    if size > self.max_upload_bytes:
                        raise RequestError(413, self._too_large(size))
                    chunks.append(chunk)
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise RequestError(422, f"{url[:80]}: could not fetch the video ({error})") from None
        suffix = Path(urllib.parse.urlparse(url).path).suffix.lower() or ".mp4"
        return self._store(b"".join(chunks), suffix)


def container_duration(path: str | Path) -> float | None:
    """Seconds the container's header gives for ``path`` (PyAV reads the header, decodes no frame),
    or ``None`` when it gives none or cannot be read (the decoder then reports the real problem).

    The server checks its duration limit with this before decoding, so an over-long upload costs
    a header read, not a decode."""
    try:
        import av

        with av.open(str(path)) as container:
            if container.duration:
                return container.duration / av.time_base
            streams = container.streams.video
            if streams and streams[0].duration and streams[0].time_base:
                return float(streams[0].duration * streams[0].time_base)
    except Exception:  # noqa: BLE001 - an unreadable file is the decoder's to report, with its reason
        return None
    return None
