"""Kernels worth looking at: the hand-made filters of classical image processing, and what a network learns.

Before deep learning, people designed kernels by hand: a *blur* averages a neighbourhood, *Sobel* kernels respond
to edges, *sharpen* adds back what a blur removes. A convolutional network starts from random numbers
("untrained") and learns its kernels from examples; its first layer often ends up with edge and colour detectors
that look much like the hand-made ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the hand-made kernels are numpy: the explorers draw them without importing torch
    from torch import nn

KERNEL_PRESETS = ("identity", "sobel_x", "sobel_y", "blur", "sharpen", "random")
UPSAMPLING_KERNELS = ("ones", "bilinear", "random")


def _binomial(n: int) -> np.ndarray:
    """Row ``n − 1`` of Pascal's triangle, e.g. ``[1, 2, 1]`` for n = 3: a smoothing filter."""
    row = np.ones(1)
    for _ in range(n - 1):
        row = np.convolve(row, [1.0, 1.0])
    return row


def kernel_preset(name: str, size: int = 3, *, seed: int = 0) -> np.ndarray:
    """A ``(size, size)`` kernel by name.

    Args:
        name: one of :data:`KERNEL_PRESETS`: ``"identity"`` (copies the centre pixel), ``"sobel_x"``
            (horizontal change: vertical edges), ``"sobel_y"`` (vertical change), ``"blur"`` (box average),
            ``"sharpen"`` (identity minus the Laplacian: ``[[0, −1, 0], [−1, 5, −1], [0, −1, 0]]`` in the centre),
            ``"random"`` (drawn like torch's default
            initialisation of an untrained ``nn.Conv2d``: uniform in ``±1/size``).
        size: kernel height and width, 1–7. Sobel kernels generalise the 3×3 one as
            ``outer(smoothing, difference)`` from Pascal's triangle (size 5: ``[1,4,6,4,1]`` by ``[−1,−2,0,2,1]``).
        seed: seeds the ``"random"`` kernel.

    Raises:
        ValueError: on an unknown name or a size outside 1–7.

    Example:
        >>> kernel_preset("sobel_x")
        array([[-1.,  0.,  1.],
               [-2.,  0.,  2.],
               [-1.,  0.,  1.]])
    """
    if name not in KERNEL_PRESETS:
        raise ValueError(f"unknown kernel preset {name!r}; choose one of {KERNEL_PRESETS}")
    if not isinstance(size, int) or not 1 <= size <= 7:
        raise ValueError(f"size must be an integer from 1 to 7, got {size!r}")
    identity = np.zeros((size, size))
    identity[(size - 1) // 2, (size - 1) // 2] = 1.0  # the centre (top-left of the centre for even sizes)
    blur = np.full((size, size), 1.0 / size**2)
    sharpen = identity.copy()
    if size >= 3:  # 5 in the centre, −1 for the four neighbours: the centre minus the neighbours' difference
        centre = (size - 1) // 2
        sharpen[centre - 1 : centre + 2, centre - 1 : centre + 2] = [[0, -1, 0], [-1, 5, -1], [0, -1, 0]]
    smoothing = _binomial(size)
    difference = np.convolve(_binomial(size - 1), [1.0, -1.0])[::-1] if size > 1 else np.zeros(1)  # [−1, 0, 1]
    kernels = {
        "identity": lambda: identity,
        "sobel_x": lambda: np.outer(smoothing, difference),
        "sobel_y": lambda: np.outer(difference, smoothing),
        "blur": lambda: blur,
        "sharpen": lambda: sharpen,
        "random": lambda: np.random.default_rng(seed).uniform(-1.0 / size, 1.0 / size, size=(size, size)),
    }
    return kernels[name]()


def upsampling_kernel(name: str, size: int, *, seed: int = 0) -> np.ndarray:
    """A ``(size, size)`` kernel for a transposed convolution.

    ``"ones"`` adds each input value unchanged (the output then *is* input × overlap); ``"bilinear"`` is the
    tent FCN initialises its upsampling layers with (:func:`segtutor.models.fcn.bilinear_tent`; with
    ``size = 2·stride`` the transposed convolution interpolates bilinearly); ``"random"`` is what an untrained
    layer starts from.
    """
    if name not in UPSAMPLING_KERNELS:
        raise ValueError(f"unknown kernel {name!r}; choose one of {UPSAMPLING_KERNELS}")
    if name == "ones":
        return np.ones((size, size))
    if name == "random":
        return np.random.default_rng(seed).uniform(-1.0, 1.0, size=(size, size))
    # the tent FCN starts from (segtutor.models.fcn.bilinear_tent), in numpy
    factor = (size + 1) // 2
    centre = factor - 1 if size % 2 == 1 else factor - 0.5  # odd: the middle tap; even: between the two middle ones
    taps = 1 - np.abs(np.arange(size) - centre) / factor  # (size,) the 1-D tent
    return taps[:, None] * taps[None, :]  # (size, size)


def first_layer_kernels(model: nn.Module) -> np.ndarray:
    """The kernels of a model's first convolution, as seen by a grayscale image: ``(out_channels, kh, kw)``.

    A gray image fed to an RGB network has the same value in R, G and B, so each output channel's response is
    the convolution with the *sum* of its kernel over the input channels.

    Raises:
        ValueError: if the model has no ``nn.Conv2d``.
    """
    import torch  # a model exists: torch is imported already

    from segtutor.models import first_convolution

    _, convolution = first_convolution(model)
    with torch.no_grad():
        return convolution.weight.sum(dim=1).double().cpu().numpy()  # (out_channels, kh, kw)
