"""Device names checked before any work: ``--device`` of every verb and ``trainer.accelerator``.

A device this machine does not have (``--device tpu9``, ``cuda:3`` on a one-GPU box,
``trainer.accelerator=gpu`` without a GPU) is a one-line :class:`~tempo_kit.errors.ConfigError`
naming the value and what is here, instead of torch's or Lightning's exception minutes later.
"""

from __future__ import annotations

from tempo_kit.errors import ConfigError


def available_devices() -> list[str]:
    """The torch device types usable here, ``cpu`` first."""
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        found.append(f"cuda (cuda:0 … cuda:{torch.cuda.device_count() - 1})")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    if hasattr(torch, "xpu") and torch.xpu.is_available():
        found.append("xpu")
    return found


def _usable(device) -> bool:
    import torch

    if device.type == "cpu":
        return True
    if device.type == "cuda":
        return torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count()
    if device.type == "mps":
        return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if device.type == "xpu":
        return hasattr(torch, "xpu") and torch.xpu.is_available()
    return False


def check_device(value: str, what: str = "--device") -> str:
    """``value`` if torch names a device by it and this machine has it; else a one-line error."""
    import torch

    try:
        device = torch.device(str(value))
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(
            f"{what} {value}: not a device name; use cpu, cuda, cuda:N or mps "
            f"(usable here: {', '.join(available_devices())})"
        ) from None
    if not _usable(device):
        raise ConfigError(
            f"{what} {value}: this machine has no such device (usable here: {', '.join(available_devices())}); "
            "pick one of those, or install the torch build for that device"
        )
    return str(value)


#: ``trainer.accelerator`` → the torch device type it needs (``auto`` and ``cpu`` need none).
ACCELERATOR_DEVICES = {"gpu": "cuda", "cuda": "cuda", "mps": "mps"}


def check_accelerator(value: str) -> None:
    """``trainer.accelerator`` must name hardware this machine has (Lightning would refuse it
    only after the model is built)."""
    import torch

    if value == "tpu":
        from importlib.util import find_spec

        usable = find_spec("torch_xla") is not None
    else:
        device = ACCELERATOR_DEVICES.get(str(value))
        usable = device is None or _usable(torch.device(device))
    if not usable:
        raise ConfigError(
            f"trainer.accelerator={value}: this machine has no {value} (usable here: "
            f"{', '.join(available_devices())}); set trainer.accelerator=auto or cpu"
        )
