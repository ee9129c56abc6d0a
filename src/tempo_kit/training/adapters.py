"""LoRA adapters in peft's own format, one folder per part: what ``PeftModel.from_pretrained`` loads.

A LoRA run writes ``<output_dir>/adapters/<part>/`` with ``adapter_config.json`` and
``adapter_model.safetensors`` as peft's ``save_pretrained`` does, keyed against the part's base
checkpoint as Hugging Face loads it (``AutoModelForCausalLM`` for the decoder,
``Qwen3VLForConditionalGeneration`` for the SVLM), so::

    base = AutoModelForCausalLM.from_pretrained("checkpoints/Qwen3-4B")
    model = PeftModel.from_pretrained(base, "outputs/stage3_lora/adapters/decoder")

works without the kit. ``base_model_name_or_path`` names the checkpoint the part was built from
(for a run with ``run.init_from``, the previous stage's export). :func:`load_adapters` puts the
adapters back into a ``TempoModel``; ``tempo_kit_adapter.json`` beside them keeps the kit's LoRA
settings (which module of the part, the target modules as the recipe wrote them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from tempo_kit.errors import CheckpointError, ConfigError

#: The adapters folder of a run, beside ``final/``.
ADAPTERS_DIR = "adapters"
#: peft's file names.
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
#: The kit's settings for one part's adapter.
KIT_ADAPTER_FILE = "tempo_kit_adapter.json"
#: peft's key prefix of a ``PeftModel`` around a base model.
PEFT_PREFIX = "base_model.model."


#: peft's ``task_type`` per part: the decoder is a causal LM, so ``AutoPeftModelForCausalLM`` loads its
#: adapter; the compressor's Qwen3-VL has no peft task class (``PeftModel.from_pretrained`` loads it).
TASK_TYPES = {"decoder": "CAUSAL_LM"}


def base_model_path(pretrained: Any) -> str | None:
    """The adapter's ``base_model_name_or_path``: a local folder made absolute (peft resolves it
    from wherever the adapter is loaded, not where the run was launched); a hub id kept as is."""
    if pretrained is None:
        return None
    path = Path(str(pretrained)).expanduser()
    return str(path.resolve()) if path.exists() else str(pretrained)


def hf_path(component: nn.Module, module: str, where: str) -> str:
    """Where ``component.<module>`` sits inside the part's Hugging Face model (``""``: the model itself).

    A component whose checkpoint files use other names than its HF model's module paths declares
    the module paths as ``hf_model_paths``; otherwise its ``hf_module_paths`` serve for both.
    """
    paths = getattr(component, "hf_model_paths", None) or getattr(component, "hf_module_paths", {})
    for attribute, hf_root in paths.items():
        if module == attribute or module.startswith(attribute + "."):
            rest = module[len(attribute) :].lstrip(".")
            return ".".join(p for p in (hf_root, rest) if p)
    raise ConfigError(
        f"{where}: {type(component).__name__} does not say where {module!r} sits in its Hugging Face model "
        "(no hf_model_paths / hf_module_paths entry), so its adapter cannot be written in peft's format"
    )


def peft_targets(targets: Any, prefix: str) -> Any:
    """The recipe's ``target_modules`` as seen from the whole HF model: a regex under ``prefix``."""
    if not prefix:
        return targets
    if isinstance(targets, str):  # already a regex over names relative to the module
        return rf"{re.escape(prefix)}\.(?:{targets})"
    names = "|".join(re.escape(str(name)) for name in targets)
    return rf"{re.escape(prefix)}\.(?:.*\.)?(?:{names})"


def save_adapter(component: nn.Module, settings: Mapping[str, Any], folder: Path, part: str) -> Path:
    """Write ``component``'s LoRA adapter (injected under ``settings['module']``) in peft's format."""
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    from tempo_kit.training.trainability import lora_targets

    settings = dict(settings)
    module = str(settings.pop("module", "") or "")
    settings["target_modules"] = lora_targets(component, settings.get("target_modules"), f"lora.{part}")
    prefix = hf_path(component, module, f"lora.{part}.module")
    target = component.get_submodule(module) if module else component
    state = get_peft_model_state_dict(target)
    full = PEFT_PREFIX + (prefix + "." if prefix else "")
    tensors = {full + key: value.detach().cpu().contiguous() for key, value in state.items()}
    config = LoraConfig(**{**settings, "target_modules": peft_targets(settings.get("target_modules"), prefix)})
    config.task_type = TASK_TYPES.get(part)
    config.base_model_name_or_path = base_model_path(getattr(component, "pretrained", None))
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / ADAPTER_WEIGHTS), metadata={"format": "pt"})
    config.save_pretrained(str(folder))
    kit = {"part": part, "lora": {"module": module, **settings}}
    (folder / KIT_ADAPTER_FILE).write_text(json.dumps(kit, indent=2) + "\n")
    return folder


def save_adapters(model: nn.Module, modes: Mapping[str, str], lora: Mapping[str, Any], out: Path) -> list[Path]:
    """One peft folder per part in ``lora`` mode: ``<out>/<part>/``."""
    return [
        save_adapter(getattr(model, part), lora[part], Path(out) / part, part)
        for part in ("compressor", "decoder")
        if modes.get(part) == "lora"
    ]


def load_adapters(model: nn.Module, folder: str | Path) -> list[str]:
    """Inject and fill the adapters of ``folder`` (what :func:`save_adapters` wrote); returns the parts.

    The model must be built from the same base weights as the one that trained them.
    """
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    from tempo_kit.training.trainability import inject_lora

    root = Path(folder).expanduser()
    parts = sorted(p for p in root.iterdir() if (p / KIT_ADAPTER_FILE).is_file()) if root.is_dir() else []
    if not parts:
        raise CheckpointError(
            f"{root} holds no adapters: expected <part>/{KIT_ADAPTER_FILE} + {ADAPTER_WEIGHTS} "
            f"(the {ADAPTERS_DIR}/ folder a LoRA run writes beside final/)"
        )
    loaded = []
    for sub in parts:
        kit = json.loads((sub / KIT_ADAPTER_FILE).read_text())
        part, settings = kit["part"], kit["lora"]
        component = getattr(model, part)
        target = inject_lora(component, settings, f"{sub}")
        prefix = hf_path(component, settings["module"], str(sub))
        full = PEFT_PREFIX + (prefix + "." if prefix else "")
        state = {key[len(full) :]: value for key, value in load_file(str(sub / ADAPTER_WEIGHTS)).items()}
        result = set_peft_model_state_dict(target, state)
        if result.unexpected_keys:
            raise CheckpointError(
                f"{sub / ADAPTER_WEIGHTS} does not fit the {part}: unexpected {result.unexpected_keys[:3]}"
            )
        loaded.append(part)
    return loaded
