"""TorchScript: the model as a PyTorch program that runs without Python, e.g. in QuPath's Deep Java Library.

``torch.jit.trace`` runs the model once on example images and records the tensor operations it performs.
Sizes read from tensors (``images.shape[-2:]``) are recorded as operations too, so the traced program takes
other heights and widths than the example's: each crop and resize follows the input it is given. What Python
decides from plain values is fixed at tracing: the input checks of :mod:`segtutor.models.contract` pass and
leave the program (a wrong input now fails inside a layer, with PyTorch's message).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import nn

from segtutor.export.files import check_target, replacing
from segtutor.export.frozen import example_images, frozen_copy


def to_torchscript(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write ``model`` to a TorchScript file that takes images of any height and width >= 32.

    Load it with ``torch.jit.load(path)`` (or libtorch, or DJL in QuPath): ``images (N, C, H, W)`` float32 to
    the model's output ``(N, K, H, W)``. The model is traced from a copy in eval mode on the CPU; ``model``
    itself is not changed. An existing file at ``path`` is replaced only once the new one is complete.

    Args:
        model: e.g. a trained ``create_model("unet")``.
        path: the ``.pt`` file to write.

    Returns:
        ``path`` as a ``Path``.

    Example:
        >>> to_torchscript(model, "unet.pt")
        >>> logits = torch.jit.load("unet.pt")(images)     # (N, K, H, W), any H, W >= 32
    """
    path = check_target(path, (".pt", ".pth", ".ts"))
    frozen = frozen_copy(model)
    images = example_images(frozen, 64, 64)  # (2, C, 64, 64): the sizes are only examples
    with warnings.catch_warnings():
        # recent torch calls TorchScript deprecated in favour of torch.export, but it is the PyTorch format that
        # QuPath, deepImageJ and libtorch load; the tracer also warns that the input checks become fixed
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.\w+` is deprecated.*")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        traced = torch.jit.trace(frozen, (images,), check_trace=False)
        _check_other_size(frozen, traced)
        with replacing(path) as temporary:
            torch.jit.save(traced, os.fspath(temporary))
    return path


def _check_other_size(model: nn.Module, traced: torch.jit.ScriptModule) -> None:
    """Raise unless the traced program matches the model on an odd size it was not traced at."""
    images = example_images(model, 65, 47)  # (2, C, 65, 47)
    with torch.no_grad():
        expected, got = model(images), traced(images)
    if got.shape != expected.shape or not torch.allclose(got, expected, rtol=1e-4, atol=1e-5):
        raise RuntimeError(
            f"the traced {type(model).__name__} does not reproduce the model on a 65x47 input (shape "
            f"{tuple(got.shape)} vs {tuple(expected.shape)}): its forward pass must take sizes from the input "
            "tensor (x.shape), not from Python numbers fixed at tracing"
        )
