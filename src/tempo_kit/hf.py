"""Hugging Face glue shared by the components that wrap a Hugging Face model.

Three things every such component needs, in one place:

* :func:`build_from_config` — the model's structure from ``config.json`` alone (no weight file is
  opened), with Hugging Face's random initialisation skipped; under ``with torch.device("meta"):``
  it allocates nothing, so FSDP can shard it before any weight exists.
* :func:`read_component_tensors` — the component's tensors read from a checkpoint folder in one pass
  over its safetensors files, renamed from checkpoint keys to component keys through the
  component's ``hf_module_paths`` (``{"svlm": "model"}``: component ``svlm.x`` ↔ checkpoint ``model.x``).
* :func:`write_component_tensors` — the inverse, in the Hugging Face layout; a tensor that still
  equals the base checkpoint's (losslessly, in the base's dtype) is written from the base in the
  base's dtype, so a frozen bf16 SVLM trained in an fp32 run is stored once, in bf16.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from tempo_kit.dtypes import AUTO, resolve_dtype
from tempo_kit.errors import CheckpointError
from tempo_kit.hf_folder import SAFE_INDEX, copy_files, save_state_dict, weight_files

#: Attention implementations for which transformers turns restarting position ids into
#: per-sequence attention (``masking_utils``: a block-diagonal mask; flash-attention: per-sequence
#: lengths; ``sdpa_segments``: the kit's SDPA per sequence, ``compressors/segment_attention.py``):
#: packed decoder rows and packed compressor calls need one of these.
PACKING_ATTENTION = frozenset({"sdpa", "eager", "flash_attention_2", "flash_attention_3", "sdpa_segments"})

#: Index file of a sharded safetensors checkpoint.
#: Tensors a component holds beside its Hugging Face model (e.g. memory tokens), in its folder.
OWN_TENSORS_NAME = "state_dict.safetensors"
def building_on_meta() -> bool:
    """Whether new tensors are created on the meta device (``with torch.device("meta"):``)."""
    return torch.empty(0).device.type == "meta"


def read_config(path: Path, where: str) -> Any:
    """A checkpoint's Hugging Face config (``config.json`` only), or a one-line :class:`CheckpointError`."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(str(path))
    except (OSError, ValueError, KeyError) as error:
        reason = " ".join(str(error).split())[:300]
        raise CheckpointError(f"{where}: cannot read the config of {path}: {reason}") from None


def checkpoint_dtype(config: Any) -> torch.dtype:
    """The dtype a checkpoint's config names (``dtype`` / ``torch_dtype``); float32 if it names none."""
    value = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    if value is None:
        return torch.float32
    resolved = resolve_dtype(value, "config.json dtype")
    return torch.float32 if resolved == AUTO else resolved


def build_from_config(
    factory: Callable[..., nn.Module],
    config: Any,
    dtype: str | torch.dtype,
    attn_implementation: str | None,
    where: str,
) -> nn.Module:
    """``factory(config, dtype=..., attn_implementation=...)`` without Hugging Face's weight init.

    ``factory`` is a model class's ``_from_config`` or an Auto class's ``from_config``; ``dtype``
    ``"auto"`` is the config's own dtype. The parameters hold no values until weights are loaded
    (on the meta device they hold nothing at all). Tied weights are tied and the model is put in
    eval mode, as ``from_pretrained`` leaves it.
    """
    from transformers.initialization import no_init_weights

    resolved = resolve_dtype(dtype, f"{where}: dtype")
    kwargs: dict[str, Any] = {"dtype": checkpoint_dtype(config) if resolved == AUTO else resolved}
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    with nullcontext() if building_on_meta() else no_init_weights():
        model = factory(config, **kwargs)
    model.tie_weights()
    return model.eval()


def restore_rotary_buffers(module: nn.Module) -> None:
    """Recompute the computed buffers (rotary frequencies, Gemma's embedding scale) of every Hugging
    Face model inside ``module``.

    They are non-persistent buffers: no checkpoint holds them, and ``to_empty`` (after building on
    the meta device) leaves them uninitialised. Hugging Face's own ``_init_weights`` recomputes them;
    it is run on each module that holds such buffers with that module's parameters marked as
    initialised (transformers' init functions then leave them alone), so loaded weights stay.
    """
    from transformers import PreTrainedModel

    done: set[int] = set()
    # innermost models first: a nested model (LLaVA's SigLIP tower) knows its own buffers, its host may not
    for owner in reversed(list(module.modules())):
        if not isinstance(owner, PreTrainedModel):
            continue
        for child in owner.modules():
            computed = [getattr(child, name) for name in getattr(child, "_non_persistent_buffers_set", ())]
            computed = [b for b in computed if isinstance(b, Tensor)]
            if not computed or id(child) in done or any(b.is_meta for b in computed):
                continue
            params = [p for p in child.parameters() if not getattr(p, "_is_hf_initialized", False)]
            for param in params:
                param._is_hf_initialized = True
            try:
                owner._init_weights(child)
            finally:
                for param in params:
                    del param._is_hf_initialized
            done.add(id(child))


def _checkpoint_key(key: str, module_paths: Mapping[str, str]) -> str | None:
    """The checkpoint key of component key ``key`` (``svlm.norm.weight`` → ``model.norm.weight``)."""
    for attribute, prefix in module_paths.items():
        if key.startswith(attribute + "."):
            rest = key[len(attribute) + 1 :]
            return f"{prefix}.{rest}" if prefix else rest
    return None


def own_tensor_keys(module: nn.Module) -> list[str]:
    """Keys of an HF-wrapping component that no checkpoint name holds (memory tokens, relevance
    direction): a saved folder keeps them in :data:`OWN_TENSORS_NAME`, never anywhere else."""
    paths = getattr(module, "hf_module_paths", None)
    if not isinstance(paths, Mapping):
        return []
    aliases = tied_aliases(module)
    return [key for key in module.state_dict() if key not in aliases and _checkpoint_key(key, paths) is None]


def tied_aliases(module: nn.Module) -> dict[str, str]:
    """``{alias: first name}`` of parameters registered under several names (tied weights)."""
    first: dict[int, str] = {}
    aliases = {}
    for name, parameter in module.named_parameters(remove_duplicate=False):
        if id(parameter) in first:
            aliases[name] = first[id(parameter)]
        else:
            first[id(parameter)] = name
    return aliases


def to_empty_keeping_ties(module: nn.Module, device: str | torch.device = "cpu") -> nn.Module:
    """``module.to_empty(device)`` (allocate, uninitialised, what was built on the meta device)
    with tied weights tied again: ``to_empty`` gives each name its own tensor."""
    aliases = tied_aliases(module)
    module.to_empty(device=device)
    for alias, name in aliases.items():
        owner_name, _, attribute = alias.rpartition(".")
        owner = module.get_submodule(owner_name) if owner_name else module
        setattr(owner, attribute, module.get_parameter(name))
    return module


def has_weights(folder: Path) -> bool:
    """Whether ``folder`` holds weights (a config-only folder, e.g. a conversion's, does not)."""
    try:
        weight_files(folder, safetensors_only=True)
    except CheckpointError:
        return False
    return True


def _open_error(path: Path, error: Exception) -> CheckpointError:
    reason = " ".join(str(error).split())[:300]
    return CheckpointError(f"{path} cannot be read ({reason}): it is truncated or damaged; copy or save it again")


def read_component_tensors(
    folder: Path, module_paths: Mapping[str, str], keys: Iterable[str], extra: Iterable[str] = ()
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """``(component tensors, extra checkpoint tensors)`` read from ``folder`` in one pass.

    ``keys`` are the component keys wanted (those with a checkpoint name under ``module_paths``);
    ``extra`` are checkpoint keys read as they are (e.g. an LM head the component does not keep).
    Missing keys are simply absent from the result: the caller's ``load_state_dict`` names them.
    """
    from safetensors import SafetensorError, safe_open

    wanted = {ck: key for key in keys if (ck := _checkpoint_key(key, module_paths)) is not None}
    extra = set(extra)
    tensors: dict[str, Tensor] = {}
    extras: dict[str, Tensor] = {}
    for path in weight_files(folder, safetensors_only=True):
        try:
            with safe_open(str(path), framework="pt") as handle:
                for name in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                    if name in wanted:
                        tensors[wanted[name]] = handle.get_tensor(name)
                    elif name in extra:
                        extras[name] = handle.get_tensor(name)
        except (SafetensorError, OSError, RuntimeError) as error:
            raise _open_error(path, error) from None
    return tensors, extras


def same_values(current: Tensor, base: Tensor) -> bool:
    """``current`` equals ``base`` and converts to and from ``base``'s dtype without loss."""
    if current.shape != base.shape:
        return False
    current = current.detach().cpu()
    return torch.equal(current.to(base.dtype), base) and torch.equal(base.to(current.dtype), current)


def write_component_tensors(
    state: Mapping[str, Tensor],
    module_paths: Mapping[str, str],
    aliases: Mapping[str, str],
    base: Path | None,
    folder: Path,
) -> dict[str, Tensor]:
    """Write the checkpoint part of ``state`` into ``folder`` in the Hugging Face layout.

    Tied aliases are written once (as Hugging Face does). A tensor equal to the base checkpoint's
    (when ``base`` holds weights)
    (:func:`same_values`) is written from the base, in the base's dtype; when all are, the base
    weight files are copied byte for byte. Returns the tensors of ``state`` that have no checkpoint
    name (the component's own, e.g. memory tokens), for the caller to store beside.
    """
    from safetensors import safe_open

    rest: dict[str, Tensor] = {}
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key in aliases:
            continue
        name = _checkpoint_key(key, module_paths)
        if name is None:
            rest[key] = value
        else:
            out[name] = value.detach().cpu()
    base_files = weight_files(base, safetensors_only=True) if base is not None and has_weights(base) else []
    unchanged: dict[str, Tensor] = {}
    base_keys: set[str] = set()
    for path in base_files:
        try:
            with safe_open(str(path), framework="pt") as handle:
                for name in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                    base_keys.add(name)
                    if name in out and same_values(out[name], base_tensor := handle.get_tensor(name)):
                        unchanged[name] = base_tensor
        except (OSError, RuntimeError) as error:
            raise _open_error(path, error) from None
    folder.mkdir(parents=True, exist_ok=True)
    if base_files and len(unchanged) == len(out) == len(base_keys):
        if base.resolve() == folder.resolve():
            return rest  # saved over its own source, unchanged: the files already hold it
        for path in base_files:  # nothing changed: the base files as they are
            shutil.copy2(path, folder / path.name)
        if (base / SAFE_INDEX).is_file():
            shutil.copy2(base / SAFE_INDEX, folder / SAFE_INDEX)
    else:
        save_state_dict({**out, **unchanged}, folder, progress=False)
    return rest


def read_own_tensors(path: Path) -> dict[str, Tensor]:
    """A safetensors file's tensors; a truncated or damaged file is a one-line :class:`CheckpointError`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, RuntimeError) as error:
        raise _open_error(path, error) from None


def initial_tensors(module: nn.Module, folder: Path, extra: Iterable[str] = ()) -> tuple[dict, dict]:
    """``(state, extra tensors)`` of an HF-wrapping component, read once from ``folder``.

    The checkpoint tensors come through the component's ``hf_module_paths``; a saved component
    folder's :data:`OWN_TENSORS_NAME` (tensors beside the HF model) is read on top when present.
    """
    keys = [key for key in module.state_dict() if key not in tied_aliases(module)]
    state, extras = read_component_tensors(folder, module.hf_module_paths, keys, extra)
    own = folder / OWN_TENSORS_NAME
    if own.is_file():
        state.update(read_own_tensors(own))
    return state, extras


def load_tensors(module: nn.Module, state: Mapping[str, Tensor], where: str) -> None:
    """``module.load_state_dict(state, strict=True)`` with tied aliases filled in, rotary buffers
    recomputed, and a one-line :class:`CheckpointError` naming ``where`` for missing, unexpected or
    misshapen tensors."""
    state = dict(state)
    for alias, name in tied_aliases(module).items():
        if name in state:
            state.setdefault(alias, state[name])
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:  # missing / unexpected keys, shape mismatches
        reason = " ".join(str(error).split())  # torch's message spans several tab-indented lines
        raise CheckpointError(f"the state dict does not fit the {where}: {reason[:600]}") from None
    restore_rotary_buffers(module)


def save_component_folder(module: nn.Module, base: Path | None, folder: Path) -> None:
    """Write an HF-wrapping component into ``folder``: ``base``'s configs, tokenizer and processor
    files, its checkpoint tensors in the Hugging Face layout (:func:`write_component_tensors`) and
    its own tensors in :data:`OWN_TENSORS_NAME`."""
    from tempo_kit.atomic import atomic_path

    folder = Path(folder)
    if base is not None and not (base / "config.json").is_file():
        raise CheckpointError(
            f"cannot save the {type(module).__name__}: {base}, the checkpoint it was built from, is gone or "
            "incomplete; its configs, tokenizer and unchanged weights are copied from there: restore it"
        )
    if base is not None and base.resolve() != folder.resolve():
        copy_files(base, folder)
    rest = write_component_tensors(module.state_dict(), module.hf_module_paths, tied_aliases(module), base, folder)
    own = folder / OWN_TENSORS_NAME
    if rest:
        from safetensors.torch import save_file

        with atomic_path(own) as partial:
            save_file({k: v.detach().cpu().contiguous() for k, v in rest.items()}, str(partial))
    elif own.exists():
        own.unlink()


def set_activation_checkpointing(model: nn.Module, enable: bool, kwargs: dict | None = None) -> None:
    """Turn Hugging Face activation checkpointing on/off (non-reentrant by default), old or new API."""
    if enable:
        kwargs = kwargs or {"use_reentrant": False}
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    elif hasattr(model, "activation_checkpointing_disable"):
        model.activation_checkpointing_disable()
    else:
        model.gradient_checkpointing_disable()
