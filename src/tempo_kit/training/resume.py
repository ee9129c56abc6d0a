"""What makes ``fit --resume`` continue exactly where a run stopped, and never from a half-written file.

- :class:`AtomicCheckpointIO` writes every Lightning checkpoint beside its name and renames it into
  place, so a crash or full disk during a save leaves the previous checkpoint whole;
- :class:`RandomState` stores the Python, NumPy and torch random states in every checkpoint and
  restores them (dropout, LoRA dropout and random reductions draw from them);
- the data module stores the position inside the epoch (see :mod:`tempo_kit.data.sampler`);
- :func:`readable_checkpoint` checks a checkpoint (a file, or an FSDP run's sharded folder) before
  Lightning loads it and, when it is damaged, names the newest readable one in the same folder.
"""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch import Callback

from tempo_kit.atomic import atomic_file
from tempo_kit.errors import CheckpointError


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint writer, made atomic (write beside, sync, rename); it also reads
    an FSDP run's sharded checkpoint folder, so strategies other than ``fsdp`` can evaluate it."""

    def load_checkpoint(self, path, *args: Any, **kwargs: Any) -> dict[str, Any]:
        from tempo_kit.training.sharded_folder import is_sharded_checkpoint, read_sharded_checkpoint

        if is_sharded_checkpoint(path):
            return read_sharded_checkpoint(path, kwargs.get("weights_only"))
        return super().load_checkpoint(path, *args, **kwargs)

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        buffer = io.BytesIO()  # serialised first (as Lightning does), so a full disk fails in Python's
        torch.save(checkpoint, buffer)  # own write with its errno, not inside torch's zip writer
        with atomic_file(path, "wb") as handle:
            handle.write(buffer.getbuffer())


class RandomState(Callback):
    """Keeps the global random generators' states in checkpoints, so a resumed run draws the same
    numbers as a run that never stopped."""

    def state_dict(self) -> dict[str, Any]:
        # plain types and tensors only: Lightning reads checkpoints with torch.load(weights_only=True)
        name, keys, position, has_gauss, gauss = np.random.get_state()
        return {
            "python": random.getstate(),
            "numpy": [name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss],
            "torch": torch.get_rng_state(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        random.setstate(state_dict["python"])
        name, keys, position, has_gauss, gauss = state_dict["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
        torch.set_rng_state(state_dict["torch"])


def damage(path: Path) -> str | None:
    """Why a checkpoint file cannot be read (``None`` when it reads whole).

    A torch checkpoint is a zip archive: every member's CRC is checked, so a truncated or
    overwritten file is found without unpickling it. A folder (FSDP's sharded checkpoint) must
    hold its index, Lightning's ``meta.pt`` and every shard file the index names, whole
    (:func:`~tempo_kit.training.sharded_folder.sharded_damage`).
    """
    if path.is_dir():
        from tempo_kit.training.sharded_folder import LIGHTNING_META, sharded_damage

        reason = sharded_damage(path)
        meta = None if reason else damage(path / LIGHTNING_META)
        return reason or (meta and f"its {LIGHTNING_META} is damaged: {meta}")
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        return f"not a complete checkpoint ({error})"
    return None if bad is None else f"member {bad} is damaged"


def readable_checkpoint(path: Path, flag: str = "--resume") -> Path:
    """``path`` if it reads whole; else a :class:`CheckpointError` naming the newest readable one."""
    reason = damage(path)
    if reason is None:
        return path
    others = sorted(
        (p for p in path.parent.glob("*.ckpt") if p != path), key=lambda p: p.stat().st_mtime, reverse=True
    )
    newest = next((p for p in others if damage(p) is None), None)
    if newest is not None:
        fix = f"the newest readable checkpoint is {newest}: pass {flag} {newest}"
    else:
        instead = f"start over without {flag}" if flag == "--resume" else f"pass {flag} a whole checkpoint"
        fix = f"no other checkpoint in {path.parent} reads whole: {instead}"
    raise CheckpointError(f"{flag}: {path} is damaged: {reason}; {fix}")


def check_checkpoint_shapes(saved: dict[str, Any], current: dict[str, Any], source: str) -> None:
    """A checkpoint of a model of another shape (another ``k_max``, LLM or projector) is refused
    with the first differing tensors named, before Lightning's ``load_state_dict`` dumps every
    size mismatch; tensors only one side has are left to the strict load's own message."""
    differ = [
        f"{key} {tuple(value.shape)} in the checkpoint, {tuple(current[key].shape)} in the model"
        for key, value in saved.items()
        if isinstance(value, torch.Tensor) and key in current and tuple(value.shape) != tuple(current[key].shape)
    ]
    if differ:
        more = f" (and {len(differ) - 3} more)" if len(differ) > 3 else ""
        raise CheckpointError(
            f"{source} was saved by a model of another shape: {'; '.join(differ[:3])}{more}; use the recipe "
            "that wrote it (the recipe.yaml beside its checkpoints/), or start over without it"
        )
