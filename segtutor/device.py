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


def check_device(device: torch.device | str) -> torch.device:
    """``device`` as a ``torch.device``, once this machine and this build of torch are known to have it.

    Raises:
        ValueError: an unknown device name, or a CUDA / MPS device that is not there (a CPU-only build of torch,
            no GPU visible, a GPU index too high), with what to pass instead.

    Example:
        >>> check_device("cpu")
        device(type='cpu')
    """
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as error:
        raise ValueError(f"device={device!r} is not a device torch knows ({error}); use 'cpu', 'cuda' or 'mps', "
                         "or None for the best one there is") from error  # fmt: skip
    fix = f"pass device=None (segtutor then picks {default_device()}, the best device here) or device='cpu'"
    if device.type == "cuda":
        if torch.version.cuda is None and torch.version.hip is None:
            raise ValueError(
                f"device={str(device)!r} asks for a CUDA GPU, but this torch ({torch.__version__}) is a CPU-only "
                f"build. Fix: {fix}; to train on a GPU, install a CUDA build of torch (see the README)"
            )
        if not torch.cuda.is_available():
            raise ValueError(f"device={str(device)!r} asks for a CUDA GPU, but torch sees none (is the driver loaded? "
                             f"is CUDA_VISIBLE_DEVICES empty?). Fix: {fix}")  # fmt: skip
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device={str(device)!r}, but this machine has {torch.cuda.device_count()} GPU(s), "
                             f"numbered from 0. Fix: pass device='cuda:0', or {fix}")  # fmt: skip
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"device='mps' asks for an Apple GPU, which this machine or torch does not have. "
                             f"Fix: {fix}")  # fmt: skip
    return device
