"""Dtype names: one resolver for every ``dtype`` a recipe, a CLI switch or a component accepts.

``bf16``, ``bfloat16`` and ``torch.bfloat16`` (or the torch dtype itself) all name the same
dtype, everywhere; ``"auto"`` means "the checkpoint's own dtype" and is left for the loader.
"""

from __future__ import annotations

import torch

from tempo_kit.errors import ConfigError, did_you_mean

#: ``"auto"``: keep the dtype the checkpoint's config names.
AUTO = "auto"

#: Accepted names → torch dtype (a ``torch.`` prefix is also accepted: ``torch.bfloat16``).
DTYPE_NAMES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
}


def resolve_dtype(value: str | torch.dtype, where: str = "dtype") -> torch.dtype | str:
    """``value`` as a torch dtype, or ``"auto"``; an unknown name is a :class:`ConfigError` naming ``where``."""
    if isinstance(value, torch.dtype):
        return value
    text = str(value).strip()
    if text == AUTO:
        return AUTO
    name = text.removeprefix("torch.")
    if name in DTYPE_NAMES:
        return DTYPE_NAMES[name]
    known = [AUTO, *DTYPE_NAMES]
    raise ConfigError(
        f"{where}: unknown dtype {value!r}{did_you_mean(name, known)}; use one of {', '.join(known)}"
    )


def dtype_name(dtype: torch.dtype) -> str:
    """The canonical name of ``dtype`` (``torch.bfloat16`` → ``"bfloat16"``), as configs store it."""
    return str(dtype).removeprefix("torch.")
