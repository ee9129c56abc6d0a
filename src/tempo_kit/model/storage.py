"""The kit's on-disk model format: ``tempo_config.json`` and one folder per component.

```
model/
  tempo_config.json     {"format": "tempo-kit", "format_version": 2, ...TempoConfig}
  manifest.json         every file's size and checksum (tempo_kit.manifest)
  compressor/           a Qwen3-VL checkpoint folder (config, tokenizer, processor configs,
                        model*.safetensors without the LM head) + state_dict.safetensors
                        (memory tokens, relevance direction)
  projector/            state_dict.safetensors
  decoder/              a Hugging Face causal-LM checkpoint folder (config, weights, tokenizer)
```

Each component stores itself, chosen by what it offers:

1. it has ``save_pretrained(folder)`` (the ``qwen3_vl`` and ``pooling`` compressors, the
   ``hf_causal_lm`` decoder): it writes its folder in the Hugging Face layout and is rebuilt with
   ``pretrained=<folder>``. A tensor still equal to the checkpoint the component was built from is
   written from that checkpoint, in its dtype: a frozen bf16 SVLM in an fp32 training run is
   stored once, in bf16; trained tensors are stored in the training dtype;
2. anything else (the projector, plugin components): rebuilt from its spec, its state dict in
   ``<folder>/state_dict.safetensors``.

Loading builds every component from its folder's configs without weights, then reads each
folder's weights once (:meth:`TempoModel.load_initial_weights`). Paths in ``tempo_config.json``
are relative to the folder, so loading never needs the paths the model was first built from.

Format version 1 (written by earlier kits) kept a copy of each base checkpoint in
``<component>/pretrained/`` plus a ``state_dict.safetensors`` of every tensor that differed from
it; such folders still load (the copy is the component's ``pretrained``, the state dict is read
on top) and are written as version 2 when saved again.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from tempo_kit.atomic import atomic_path, write_json
from tempo_kit.dtypes import AUTO, dtype_name, resolve_dtype
from tempo_kit.errors import CheckpointError
from tempo_kit.hf import OWN_TENSORS_NAME, own_tensor_keys, read_own_tensors
from tempo_kit.hub import missing_folder_hint

#: Name of the kit-format config file inside a saved model folder.
CONFIG_NAME = "tempo_config.json"
#: A component's tensors that its own Hugging Face folder does not hold (all of them for the projector).
STATE_DICT_NAME = OWN_TENSORS_NAME
#: ``tempo_config.json`` key: ``{part: distribution}`` of the parts that come from plugin packages.
PACKAGES_KEY = "packages"
#: Kit-format version written into ``tempo_config.json``.
FORMAT_VERSION = 2
#: Versions this kit reads (see the module docstring for version 1).
READABLE_VERSIONS = (1, 2)


def save_component(module: nn.Module, spec: Mapping[str, Any], folder: Path, name: str) -> dict[str, Any]:
    """Write one component into ``folder``; returns its spec as ``tempo_config.json`` stores it.

    A ``dtype: auto`` spec records the dtype the component holds, so loading gives it back
    as saved (the folder may mix the base's dtype and the training dtype).
    """
    folder.mkdir(parents=True, exist_ok=True)
    spec = dict(spec)
    if callable(getattr(module, "save_pretrained", None)):
        module.save_pretrained(folder)
        spec["pretrained"] = name
        held = next((p.dtype for p in module.parameters() if p.is_floating_point()), None)
        takes_dtype = "dtype" in inspect.signature(type(module)).parameters
        if held is not None and takes_dtype and resolve_dtype(spec.get("dtype", AUTO), f"{name}.dtype") == AUTO:
            spec["dtype"] = dtype_name(held)
        return spec
    _write_state(module.state_dict(), folder)
    return spec


def component_state(module: nn.Module, folder: Path | None, where: str) -> dict[str, Tensor]:
    """The tensors ``module`` starts from: what its ``initial_state_dict()`` reads from its own
    ``pretrained`` folder, with ``folder``'s ``state_dict.safetensors`` on top (a component saved
    as a state dict, or a format-1 folder). A component with neither keeps the values it was built
    with; never is a saved component left at a random initialisation."""
    state: dict[str, Tensor] = {}
    reads_itself = callable(getattr(module, "initial_state_dict", None))
    if reads_itself:
        state = dict(module.initial_state_dict())
    if folder is None:
        return state if reads_itself else {k: v.detach().clone() for k, v in module.state_dict().items()}
    state_file = folder / STATE_DICT_NAME
    own_folder = Path(str(getattr(module, "pretrained", ""))).expanduser()
    if state_file.is_file():
        if not (reads_itself and own_folder.resolve() == folder.resolve()):  # else read already
            state.update(read_own_tensors(state_file))
    elif not reads_itself or own_tensor_keys(module):
        # a saved component's own tensors (e.g. memory tokens) exist nowhere else: rebuilding them
        # fresh would be a random component, so the folder is refused, manifest or not
        raise CheckpointError(
            f"{state_file} is missing: the {where} has no saved weights; the folder is incomplete "
            "(copy it again, or save/convert the model again)"
        )
    return state


def is_on_meta(module: nn.Module) -> bool:
    """Whether any tensor of ``module`` is on the meta device (built without weights)."""
    return any(t.is_meta for t in (*module.parameters(), *module.buffers()))


def write_config(out: Path, config: Mapping[str, Any], kit_version: str) -> None:
    document = {"format": "tempo-kit", "format_version": FORMAT_VERSION, "kit_version": kit_version, **config}
    write_json(out / CONFIG_NAME, document)


def read_config(root: Path, components: tuple[str, ...]) -> dict[str, Any]:
    """The stored config with component ``pretrained`` paths resolved against ``root``."""
    config_file = root / CONFIG_NAME
    if not root.exists():
        hint = missing_folder_hint(str(root))
        if "hub id" in hint:
            hint += ", converting released Tempo weights with `tempo-kit convert to-kit`"
        else:
            hint = "pass the folder a training run wrote (outputs/<run>/final) or one `tempo-kit convert to-kit` wrote"
        raise CheckpointError(f"model folder {root} does not exist: {hint}.")
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
    if version not in READABLE_VERSIONS:
        raise CheckpointError(
            f"{config_file} has format_version {version!r}; this kit reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}: load it with the tempo-kit that wrote it "
            "and save it again, or upgrade tempo-kit"
        )
    document.pop("kit_version", None)
    from tempo_kit.registry import check_packages_installed

    check_packages_installed(document, document.pop(PACKAGES_KEY, None) or {}, str(root))
    for name in components:
        spec = document.get(name)
        if isinstance(spec, dict) and "pretrained" in spec and not Path(spec["pretrained"]).is_absolute():
            spec["pretrained"] = str(root / spec["pretrained"])
    return document


def _write_state(state: Mapping[str, Tensor], folder: Path) -> None:
    from safetensors.torch import save_file

    rest: dict[str, Tensor] = {}
    seen: set[int] = set()
    for key, tensor in state.items():
        tensor = tensor.detach().cpu().contiguous()
        pointer = tensor.untyped_storage().data_ptr()
        rest[key] = tensor.clone() if pointer in seen else tensor  # tied weights: one copy each
        seen.add(pointer)
    with atomic_path(folder / STATE_DICT_NAME) as partial:
        save_file(rest, str(partial))
