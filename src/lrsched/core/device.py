"""Device selection: never hard-coded, `auto` picks the best available."""

from __future__ import annotations

import torch

from lrsched.core.errors import ConfigError
from lrsched.core.pinning import configure_cuda


def resolve_device(name: str = "auto") -> torch.device:
    """The training device; choosing CUDA also switches on its deterministic kernels (before any CUDA op)."""
    device = _resolve(name)
    if device.type == "cuda":
        configure_cuda()
    return device


def _resolve(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device: {name!r} requested but CUDA is not available; use auto or cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"train.device: {name!r} requested but MPS is not available; use auto or cpu")
    return device
