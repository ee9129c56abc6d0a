"""How to fetch a model-hub checkpoint: the kit never downloads, so its errors say which command does.

``hf`` is the command line that ships with ``huggingface_hub`` (a dependency of transformers);
its older name ``huggingface-cli`` is no longer installed by current releases.
"""

from __future__ import annotations

from pathlib import Path

#: The hub checkpoints Tempo is built from: the SVLM (compressor) and the global LLM (decoder).
SVLM_HUB_NAME = "Qwen/Qwen3-VL-2B-Instruct"
LLM_HUB_NAME = "Qwen/Qwen3-4B"

#: The download command of ``huggingface_hub``'s command line.
DOWNLOAD_COMMAND = "hf download"


def download_command(repo: str, local_dir: str | None = None) -> str:
    """``hf download REPO --local-dir checkpoints/NAME``: the command that fetches ``repo`` locally."""
    target = local_dir or f"checkpoints/{Path(str(repo)).name}"
    return f"{DOWNLOAD_COMMAND} {repo} --local-dir {target}"


def looks_like_hub_name(text: str) -> bool:
    """``org/name`` that is not a relative or absolute local path (``./x``, ``/x``, ``~/x``)."""
    text = str(text)
    return text.count("/") == 1 and not text.startswith((".", "/", "~"))
