"""A real ``huggingface_hub`` cache, populated offline in the hub's own layout, and a local
stand-in for the hub's HTTP answers: the hub tests never reach the network."""

from __future__ import annotations

import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def cache_repo(cache: Path, repo_id: str, files: Path, commit: str, refs: tuple[str, ...] = ("main",)) -> Path:
    """Lay ``files`` out as the hub cache does: ``models--org--name/{blobs,snapshots/<commit>,refs/<ref>}``,
    each snapshot file a symlink to its blob. Returns the snapshot folder."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    for path in sorted(files.rglob("*")):
        if not path.is_file():
            continue
        blob = repo / "blobs" / f"{commit[:8]}-{path.relative_to(files).as_posix().replace('/', '-')}"
        blob.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, blob)
        link = snapshot / path.relative_to(files)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(blob)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    for ref in refs:
        (repo / "refs" / ref).write_text(commit)
    return snapshot


def use_cache(monkeypatch, cache: Path, *, offline: bool = True, endpoint: str | None = None) -> None:
    """Point ``huggingface_hub`` at ``cache`` (its constants are read at import, so set both)."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    monkeypatch.setenv("HF_TOKEN", "")
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(cache / "no-token"))
    if endpoint is not None:
        monkeypatch.setattr(constants, "ENDPOINT", endpoint)


class HubAnswers:
    """A local HTTP server answering every request with one status and ``X-Error-Code``, as the hub
    does for a missing repository (404 RepoNotFound), revision (404 RevisionNotFound) or gate (401 GatedRepo)."""

    def __init__(self, status: int, code: str) -> None:
        answer = (status, code)

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.send_response(answer[0])
                self.send_header("X-Error-Code", answer[1])
                self.send_header("Content-Type", "application/json")
                body = b'{"error": "' + answer[1].encode() + b'"}'
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_HEAD = do_POST = _answer

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
