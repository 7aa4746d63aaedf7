"""Device and dtype selection shared by every torch backend.

* device: explicit ``"cuda"``, ``"cuda:1"``, ``"mps"`` or ``"cpu"``; ``None`` / ``"auto"`` picks CUDA, then
  Apple MPS, then the CPU.
* dtype: explicit ``"float32"``, ``"float16"``, ``"bfloat16"`` (or a ``torch.dtype``); ``None`` / ``"auto"``
  picks fp32 on CPU, bf16 on CUDA devices whose tensor cores run it (compute capability 8.0 and up: Ampere, Ada,
  Hopper; ROCm) and fp16 on older ones (T4, V100), fp16 on MPS. ``torch.cuda.is_bf16_supported()`` is not the
  test: by default it also says yes where bf16 is only emulated, far slower than fp16, and it asks about the
  current device rather than the one requested.
"""

from __future__ import annotations

from typing import Any

from .._optional import require
from ..errors import ConfigError

__all__ = ["resolve_device", "resolve_dtype", "torch_module"]

_DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
}


def torch_module() -> Any:
    return require("torch", "hf", purpose="model inference")


def resolve_device(device: Any = None) -> Any:
    """Return a ``torch.device``; raises :class:`ConfigError` for an unavailable or unknown device."""
    torch = torch_module()
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"unknown device {device!r}: {exc}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available on this machine")
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError(f"device {device!r} requested but MPS is not available on this machine")
    return dev


def resolve_dtype(dtype: Any, device: Any) -> Any:
    """Return a ``torch.dtype`` for ``device`` (see module docstring for the ``auto`` rule)."""
    torch = torch_module()
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None or dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if _native_bf16(torch, device) else torch.float16
        if device.type == "mps":
            return torch.float16
        return torch.float32
    name = _DTYPES.get(str(dtype).lower().replace("torch.", ""))
    if name is None:
        raise ConfigError(f"unknown dtype {dtype!r}; use one of {sorted(set(_DTYPES))}")
    return getattr(torch, name)


def _native_bf16(torch: Any, device: Any) -> bool:
    """Whether ``device`` (a CUDA ``torch.device``) computes bf16 in hardware, not by emulation."""
    if getattr(torch.version, "hip", None):
        return True
    index = device.index if device.index is not None else torch.cuda.current_device()
    major, _minor = torch.cuda.get_device_capability(index)
    return bool(major >= 8)
