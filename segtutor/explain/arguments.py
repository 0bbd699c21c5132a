"""Checking and normalising the arguments the explainers share: (row, col) pairs, padding and arrays.

PyTorch accepts ``stride=2`` or ``stride=(2, 1)``; so do we. Every check raises a message that says what was
wrong and how to fix it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def as_pair(value: int | tuple[int, int], name: str, *, minimum: int = 1) -> tuple[int, int]:
    """``3 -> (3, 3)``; ``(3, 1) -> (3, 1)``; checks both are integers >= ``minimum``."""
    pair = (value, value) if not isinstance(value, (tuple, list)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints (rows, cols), got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


def conv_padding(
    padding: int | tuple[int, int] | str,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Zeros added ``((top, bottom), (left, right))`` for a convolution's ``padding`` argument.

    ``"valid"`` means no padding; ``"same"`` keeps the size (stride 1 only, like torch): the dilated kernel's
    extra ``dilation·(kernel_size − 1)`` pixels are split in two, the odd one going to the bottom/right, as torch does.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding != "same":
            raise ValueError(f"padding must be an int, a pair of ints, 'same' or 'valid', got {padding!r}")
        if stride != (1, 1):
            raise ValueError(
                f"padding='same' needs stride 1 (as in torch), got stride {stride}: pass padding as a number"
            )
        total = [d * (k - 1) for d, k in zip(dilation, kernel_size)]
        return (total[0] // 2, total[0] - total[0] // 2), (total[1] // 2, total[1] - total[1] // 2)
    rows, cols = as_pair(padding, "padding", minimum=0)
    return (rows, rows), (cols, cols)


def as_array(values: np.ndarray | torch.Tensor, name: str, shapes: dict[int, str]) -> np.ndarray:
    """A float64 numpy copy of ``values`` (array, tensor or nested list) whose number of dims is a key of ``shapes``.

    ``shapes`` names the accepted shapes for the error message, e.g. ``{2: "(H, W)", 3: "(C, H, W)"}``.
    """
    torch = sys.modules.get("torch")  # a tensor exists only once torch is imported: never import it here
    if torch is not None and isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = np.array(values, dtype=np.float64)
    if array.ndim not in shapes:
        raise ValueError(f"{name} must have shape {' or '.join(shapes.values())}, got shape {tuple(array.shape)}")
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {tuple(array.shape)})")
    return array
