"""A sharded checkpoint folder (what an FSDP2 run saves): checked whole, and read on any strategy.

An FSDP2 run with ``state_dict_type: sharded`` saves each checkpoint as a folder:
``torch.distributed.checkpoint``'s index (:data:`INDEX_FILE`), one shard file per rank that the
index names, and Lightning's ``meta.pt`` (:data:`LIGHTNING_META`: step, loops, callbacks,
recipe). Under ``fsdp`` Lightning's own loader reads it back into the sharded model, at the same
or another number of processes (the index says which part of each tensor a file holds, so the
shards are re-cut on load). Any other strategy — one process, DDP — goes through
:func:`read_sharded_checkpoint`, which joins the shards into full tensors, so ``validate`` /
``test --ckpt`` take the folder wherever they run. :func:`sharded_damage` finds a partial folder
(no index, a missing or cut shard file, a shard whose bytes differ from those saved) before any
process starts.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from tempo_kit.errors import ConfigError

#: ``torch.distributed.checkpoint``'s index of a sharded checkpoint: every tensor's shape, dtype
#: and which file holds which part of it.
INDEX_FILE = ".metadata"
#: What Lightning saves beside the shards: everything in the checkpoint but the model and optimizer.
LIGHTNING_META = "meta.pt"
#: The top-level key of the model's weights in a Lightning checkpoint.
MODEL_KEY = "state_dict"


def is_sharded_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a sharded checkpoint (a folder), not a single ``.ckpt`` file."""
    return Path(path).is_dir()


def _index(path: Path):
    from torch.distributed.checkpoint import FileSystemReader

    return FileSystemReader(str(path)).read_metadata()


def sharded_damage(path: Path) -> str | None:
    """Why the sharded checkpoint folder ``path`` cannot be read whole (``None`` when it can).

    Checks that the index and Lightning's ``meta.pt`` are there, that every shard file the index
    names exists and is long enough for the parts it should hold, then every file's checksum
    against the ``manifest.json`` the save wrote (folders saved before it had one: sizes only).
    """
    if not (path / INDEX_FILE).is_file():
        return f"it has no {INDEX_FILE} (the index torch.distributed.checkpoint writes last)"
    try:
        index = _index(path)
    except Exception as error:  # a cut or overwritten index: pickle/EOF errors of every kind
        return f"its {INDEX_FILE} cannot be read ({type(error).__name__}: {error})"
    if not (path / LIGHTNING_META).is_file():
        return f"it has no {LIGHTNING_META} (the step, loops and recipe Lightning saves beside the shards)"
    needed: dict[str, int] = {}
    for item in (index.storage_data or {}).values():
        name = getattr(item, "relative_path", None)
        if name is not None:
            end = int(getattr(item, "offset", 0)) + int(getattr(item, "length", 0))
            needed[name] = max(needed.get(name, 0), end)
    missing = sorted(name for name in needed if not (path / name).is_file())
    if missing:
        return (
            f"shard file{'s' if len(missing) > 1 else ''} {', '.join(missing)} named by its {INDEX_FILE} missing "
            "(every rank's shard must be in this one folder: a run on several nodes saves to a shared filesystem)"
        )
    short = sorted(name for name, end in needed.items() if (path / name).stat().st_size < end)
    if short:
        return f"shard file{'s' if len(short) > 1 else ''} {', '.join(short)} cut short"
    from tempo_kit.manifest import manifest_damage

    return manifest_damage(path)  # the content: a same-size shard of another run, or flipped bytes


def read_sharded_checkpoint(path: str | Path, weights_only: bool | None = None) -> dict[str, Any]:
    """The folder ``path`` as one Lightning checkpoint dict whose ``state_dict`` holds full tensors.

    The model's tensors are allocated at their full shapes from the index and filled from every
    shard in this process alone (no process group takes part, so each DDP rank or a lone process
    reads it the same way). Optimizer states are not read: a sharded checkpoint resumes training
    under ``fsdp`` only (see :func:`check_resume_strategy`).
    """
    from torch.distributed.checkpoint import FileSystemReader, load
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    path = Path(path)
    reader = FileSystemReader(str(path))
    index = reader.read_metadata()
    names = index.planner_data or {}
    weights: dict[str, torch.Tensor] = {}
    for key, item in index.state_dict_metadata.items():
        nested = names.get(key) or tuple(key.split(".", 1))
        if isinstance(item, TensorStorageMetadata) and len(nested) == 2 and nested[0] == MODEL_KEY:
            weights[nested[1]] = torch.empty(item.size, dtype=item.properties.dtype)
    with warnings.catch_warnings():  # "assuming the intent is to load in a single process": it is
        warnings.filterwarnings("ignore", message=r".*assuming the intent is to load in a single process")
        load({MODEL_KEY: weights}, storage_reader=reader, no_dist=True)
    checkpoint = torch.load(path / LIGHTNING_META, map_location="cpu", weights_only=weights_only)
    checkpoint[MODEL_KEY] = weights
    return checkpoint


def check_resume_strategy(path: str | Path, sharded_strategy: bool) -> None:
    """``fit --resume`` of a sharded folder needs ``fsdp``: its optimizer state is keyed by
    parameter name, which only the sharded loader maps back."""
    if is_sharded_checkpoint(path) and not sharded_strategy:
        raise ConfigError(
            f"--resume {path} is a sharded checkpoint (a folder an FSDP run saved): continue it with "
            "trainer.strategy.name=fsdp (trainer.devices 2 or more, any number); its weights alone can be "
            "evaluated on any strategy with validate/test --ckpt"
        )
