"""Reading and writing Hugging Face style weight files (single or sharded safetensors, or .bin).

Kept separate from the key mapping so the mapping stays pure; shows a tqdm bar per shard so a
6B conversion is visibly alive.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor
from tqdm.auto import tqdm

from tempo_kit import atomic
from tempo_kit.errors import CheckpointError

#: Shard size when writing weights (Hugging Face's default for ``save_pretrained``).
DEFAULT_MAX_SHARD_BYTES = 5 * 1024**3

#: Files that belong to a tokenizer and travel with the LLM weights.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
    "chat_template.json",
)

SAFE_INDEX = "model.safetensors.index.json"
BIN_INDEX = "pytorch_model.bin.index.json"


def read_json(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path} is not valid JSON: {error}") from error


def read_json_if_present(path: Path) -> dict:
    """:func:`read_json` of an optional file (a processor config a checkpoint may lack): ``{}`` when absent."""
    return read_json(path) if path.is_file() else {}


def write_json(path: Path, data: Mapping) -> None:
    atomic.write_json(path, data, sort_keys=True)


def weight_files(folder: Path, safetensors_only: bool = False) -> list[Path]:
    """The weight files of a checkpoint folder, in shard order (a :class:`CheckpointError` if none).

    ``safetensors_only``: what the kit's components load: PyTorch ``.bin`` weights are refused
    (with the fix), and so is an index naming a shard that is not there.
    """
    found = _listed_weight_files(folder)
    if not safetensors_only:
        return found
    if any(path.suffix != ".safetensors" for path in found):
        raise CheckpointError(
            f"{folder} holds PyTorch .bin weights; the kit reads safetensors: save the checkpoint again with "
            "save_pretrained(..., safe_serialization=True)"
        )
    missing = [path.name for path in found if not path.is_file()]
    if missing:
        raise CheckpointError(f"{folder}: {', '.join(missing)} listed in {SAFE_INDEX} but missing")
    return found


def _listed_weight_files(folder: Path) -> list[Path]:
    for index_name in (SAFE_INDEX, BIN_INDEX):
        index = folder / index_name
        if index.is_file():
            names = sorted(set(read_json(index).get("weight_map", {}).values()))
            return [folder / n for n in names]
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return [folder / name]
    raise CheckpointError(
        f"{folder} holds no weights: expected model.safetensors, {SAFE_INDEX}, pytorch_model.bin or {BIN_INDEX}"
    )


def load_state_dict(folder: str | Path, progress: bool = True, desc: str = "reading") -> dict[str, Tensor]:
    """Every tensor of a checkpoint folder (all shards), on the CPU."""
    from safetensors.torch import load_file

    folder = Path(folder)
    out: dict[str, Tensor] = {}
    for file in tqdm(weight_files(folder), desc=desc, unit="shard", disable=not progress):
        if not file.is_file():
            raise CheckpointError(f"{file} is listed in the index of {folder} but missing")
        try:
            part = (
                load_file(str(file))
                if file.suffix == ".safetensors"
                else torch.load(file, map_location="cpu", weights_only=True)
            )
        except Exception as error:  # safetensors / torch report a damaged file in their own types
            reason = " ".join(str(error).split())[:300]
            raise CheckpointError(f"{file} cannot be read ({reason}): it is truncated or damaged") from None
        overlap = set(part) & set(out)
        if overlap:
            raise CheckpointError(f"{file} repeats keys of another shard: {sorted(overlap)[:5]}")
        out.update(part)
    return out


def read_tensor(folder: Path, *keys: str) -> Tensor | None:
    """The first of ``keys`` found in a safetensors checkpoint, read without loading the rest."""
    from safetensors import safe_open

    for file in weight_files(folder):
        if file.suffix != ".safetensors":
            state = torch.load(file, map_location="cpu", weights_only=True)
            for key in keys:
                if key in state:
                    return state[key]
            continue
        with safe_open(str(file), framework="pt") as handle:
            names = set(handle.keys())
            for key in keys:
                if key in names:
                    return handle.get_tensor(key)
    return None


def _unshare(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """safetensors refuses tensors sharing memory (tied weights): clone only the repeats."""
    seen: set[tuple[int, int]] = set()
    out = {}
    for key, value in state_dict.items():
        value = value.detach()
        ident = (value.untyped_storage().data_ptr(), value.storage_offset())
        out[key] = value.clone().contiguous() if ident in seen else value.contiguous()
        seen.add(ident)
    return out


def save_state_dict(
    state_dict: Mapping[str, Tensor],
    folder: str | Path,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    progress: bool = True,
    desc: str = "writing",
) -> list[Path]:
    """Write safetensors, sharded with a Hugging Face index when over ``max_shard_bytes``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = _unshare(state_dict)
    shards: list[dict[str, Tensor]] = [{}]
    size = 0
    for key, value in tensors.items():
        nbytes = value.numel() * value.element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][key] = value
        size += nbytes
    metadata = {"format": "pt"}
    if len(shards) == 1:
        path = folder / "model.safetensors"
        with atomic.atomic_path(path) as partial:
            save_file(shards[0], str(partial), metadata=metadata)
        return [path]
    paths, weight_map = [], {}
    for number, shard in enumerate(tqdm(shards, desc=desc, unit="shard", disable=not progress), start=1):
        path = folder / f"model-{number:05d}-of-{len(shards):05d}.safetensors"
        with atomic.atomic_path(path) as partial:
            save_file(shard, str(partial), metadata=metadata)
        paths.append(path)
        weight_map.update(dict.fromkeys(shard, path.name))
    total = sum(v.numel() * v.element_size() for v in tensors.values())
    write_json(folder / SAFE_INDEX, {"metadata": {"total_size": total}, "weight_map": weight_map})
    return paths


def copy_files(
    source: Path, target: Path, names: tuple[str, ...] | None = None, skip_weights: bool = True
) -> None:
    """Copy the non-weight files of a checkpoint folder (configs, tokenizer, processor)."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.iterdir()):
        if not path.is_file():
            continue
        if names is not None and path.name not in names:
            continue
        if skip_weights and (
            path.suffix in (".safetensors", ".bin", ".pt", ".pth") or path.name in (SAFE_INDEX, BIN_INDEX)
        ):
            continue
        shutil.copy2(path, target / path.name)
