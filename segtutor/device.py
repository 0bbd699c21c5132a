"""Where tensors live: pick the fastest device this machine offers."""

from __future__ import annotations

import torch


def default_device() -> torch.device:
    """The device segtutor trains and predicts on unless told otherwise.

    CUDA first, then Apple's MPS, then the CPU. Nothing else in segtutor assumes the CPU.

    Example:
        >>> model = create_model("unet").to(default_device())
    """
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
