"""The kit's on-disk model format: one folder, ``tempo_config.json`` and one subfolder per component.

```
model/
  tempo_config.json     {"format": "tempo-kit", "format_version": 1, ...TempoConfig}
  compressor/           see below
  projector/state_dict.safetensors
  decoder/              Hugging Face save_pretrained (model + tokenizer)
```

A component is stored in one of three ways, chosen by what it offers:

1. it has ``save_pretrained(folder)``: it writes the folder itself and is rebuilt with
   ``pretrained=<folder>`` (the ``hf_causal_lm`` decoder);
2. its spec names a local ``pretrained`` checkpoint but it has no ``save_pretrained`` (the
   ``qwen3_vl`` and ``pooling`` compressors): a copy of that checkpoint goes to
   ``<folder>/pretrained/`` and it is rebuilt from the copy; then its state dict is restored.
   Tensors bit-identical to one in the copy are not written twice: ``base_tensors.json`` maps
   them to the copy's file and key, the others go to ``state_dict.safetensors``. A converted
   release or a stage with a frozen SVLM stores only its memory tokens and relevance direction;
3. anything else (the projector): rebuilt from its spec, state dict from ``state_dict.safetensors``.

Paths inside ``tempo_config.json`` are relative to the folder, so loading never needs the paths
the model was first built from.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from tempo_kit.atomic import atomic_path, write_json
from tempo_kit.errors import CheckpointError
from tempo_kit.hub import download_command, looks_like_hub_name

#: Name of the kit-format config file inside a saved model folder.
CONFIG_NAME = "tempo_config.json"
#: Tensors of a component's state dict that its base checkpoint does not already hold.
STATE_DICT_NAME = "state_dict.safetensors"
#: ``{state-dict key: [file, key]}`` of tensors read back from the base checkpoint copy.
BASE_TENSORS_NAME = "base_tensors.json"
#: Subfolder holding the copy of a component's base checkpoint.
BASE_CHECKPOINT_DIR = "pretrained"
#: ``tempo_config.json`` key: ``{part: distribution}`` of the parts that come from plugin packages.
PACKAGES_KEY = "packages"
#: Kit-format version written into ``tempo_config.json``.
FORMAT_VERSION = 1


def local_pretrained(spec: Mapping[str, Any]) -> Path | None:
    """The local folder a spec's ``pretrained`` names, if any."""
    value = spec.get("pretrained") if isinstance(spec, Mapping) else None
    if value is None or not Path(value).expanduser().is_dir():
        return None
    return Path(value).expanduser()


def save_component(module: nn.Module, spec: Mapping[str, Any], folder: Path, name: str) -> dict[str, Any]:
    """Write one component into ``folder``; returns its spec as ``tempo_config.json`` stores it."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = dict(spec)
    if callable(getattr(module, "save_pretrained", None)):
        module.save_pretrained(folder)
        return {**spec, "pretrained": name}
    base = local_pretrained(spec)
    base_tensors: dict[str, list[str]] = {}
    if base is not None:
        copy = folder / BASE_CHECKPOINT_DIR
        if copy.resolve() != base.resolve():
            shutil.copytree(base, copy, dirs_exist_ok=True)
        spec["pretrained"] = f"{name}/{BASE_CHECKPOINT_DIR}"
        base_tensors = _match_base(module.state_dict(), copy)
    _write_state(module.state_dict(), base_tensors, folder)
    return spec


def load_component_state(module: nn.Module, folder: Path, where: str) -> None:
    """Restore a component saved by :func:`save_component` without ``save_pretrained`` (no-op otherwise)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    state_file, index_file = folder / STATE_DICT_NAME, folder / BASE_TENSORS_NAME
    if callable(getattr(module, "save_pretrained", None)):
        return  # it wrote and read back its own folder
    if not state_file.is_file():  # never leave a component at its random initialisation
        raise CheckpointError(
            f"{state_file} is missing: the {where} has no saved weights; the folder is incomplete "
            "(copy it again, or save/convert the model again)"
        )
    state = _read_safetensors(state_file, load_file)
    if index_file.is_file():
        by_file: dict[str, list[tuple[str, str]]] = {}
        for key, (file, base_key) in json.loads(index_file.read_text()).items():
            by_file.setdefault(file, []).append((key, base_key))
        for file, pairs in by_file.items():
            path = folder / BASE_CHECKPOINT_DIR / file
            if not path.is_file():
                raise CheckpointError(
                    f"{index_file} refers to {path}, which is missing; the folder is incomplete"
                )
            with safe_open(str(path), framework="pt") as handle:
                for key, base_key in pairs:
                    state[key] = handle.get_tensor(base_key)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:  # missing / unexpected keys, shape mismatches
        reason = " ".join(str(error).split())  # torch's message spans several tab-indented lines
        raise CheckpointError(f"{state_file} does not fit the {where}: {reason}") from None


def write_config(out: Path, config: Mapping[str, Any], kit_version: str) -> None:
    document = {"format": "tempo-kit", "format_version": FORMAT_VERSION, "kit_version": kit_version, **config}
    write_json(out / CONFIG_NAME, document)


def read_config(root: Path, components: tuple[str, ...]) -> dict[str, Any]:
    """The stored config with component ``pretrained`` paths resolved against ``root``."""
    config_file = root / CONFIG_NAME
    if not root.exists():
        hub = looks_like_hub_name(str(root))
        hint = (
            f" '{root}' looks like a hub id: tempo-kit never downloads; fetch it into a local folder "
            f"({download_command(str(root))}), convert released Tempo "
            f"weights with `tempo-kit convert to-kit`, and pass that folder."
            if hub
            else " Pass the folder a training run wrote (outputs/<run>/final) or one `tempo-kit convert to-kit` wrote."
        )
        raise CheckpointError(f"model folder {root} does not exist.{hint}")
    if not config_file.is_file():
        raise CheckpointError(
            f"{root} is not a tempo-kit model folder: {CONFIG_NAME} is missing. Save one with "
            "TempoModel.save_pretrained, or convert released weights with `tempo-kit convert`."
        )
    try:
        document = json.loads(config_file.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{config_file} is not valid JSON: {error}") from None
    if document.pop("format", None) != "tempo-kit":
        raise CheckpointError(f'{config_file} is not a tempo-kit config (no "format": "tempo-kit")')
    version = document.pop("format_version", None)
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{config_file} has format_version {version!r}; this kit reads {FORMAT_VERSION}"
        )
    document.pop("kit_version", None)
    from tempo_kit.registry import check_packages_installed

    check_packages_installed(document, document.pop(PACKAGES_KEY, None) or {}, str(root))
    for name in components:
        spec = document.get(name)
        if isinstance(spec, dict) and "pretrained" in spec and not Path(spec["pretrained"]).is_absolute():
            spec["pretrained"] = str(root / spec["pretrained"])
    return document


# ---------------------------------------------------------------------------------- helpers
def _read_safetensors(path: Path, load_file) -> dict[str, Tensor]:
    """A safetensors file's tensors; a truncated or damaged file is a one-line CheckpointError."""
    from safetensors import SafetensorError

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, RuntimeError) as error:
        reason = " ".join(str(error).split())
        raise CheckpointError(f"{path} cannot be read ({reason}): it is truncated or damaged") from None


def _digest(tensor: Tensor) -> str:
    flat = tensor.detach().contiguous().cpu().reshape(-1)
    data = flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""
    return f"{flat.dtype}|{tuple(tensor.shape)}|{hashlib.blake2b(data, digest_size=16).hexdigest()}"


def _match_base(state: Mapping[str, Tensor], base: Path) -> dict[str, list[str]]:
    """State-dict keys whose tensor equals, bit for bit, a tensor of the base checkpoint."""
    from safetensors import safe_open

    shapes = {(str(t.dtype), tuple(t.shape)) for t in state.values()}
    index: dict[str, list[str]] = {}
    for path in sorted(base.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                sliced = handle.get_slice(key)
                dtype = {"BF16": "torch.bfloat16", "F16": "torch.float16", "F32": "torch.float32"}.get(
                    sliced.get_dtype()
                )
                if dtype is None or (dtype, tuple(sliced.get_shape())) not in shapes:
                    continue  # cannot match any component tensor: skip without reading it
                index.setdefault(_digest(handle.get_tensor(key)), [path.name, key])
    return {key: index[d] for key, tensor in state.items() if (d := _digest(tensor)) in index}


def _write_state(state: Mapping[str, Tensor], skip: Mapping[str, Any], folder: Path) -> None:
    from safetensors.torch import save_file

    rest: dict[str, Tensor] = {}
    seen: set[int] = set()
    for key, tensor in state.items():
        if key in skip:
            continue
        tensor = tensor.detach().cpu().contiguous()
        pointer = tensor.untyped_storage().data_ptr()
        rest[key] = tensor.clone() if pointer in seen else tensor  # tied weights: one copy each
        seen.add(pointer)
    with atomic_path(folder / STATE_DICT_NAME) as partial:
        save_file(rest, str(partial))
    index_file = folder / BASE_TENSORS_NAME
    if skip:
        write_json(index_file, dict(skip), indent=1)
    elif index_file.exists():
        index_file.unlink()
