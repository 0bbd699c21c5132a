"""Pooling, one window at a time: the encoder's way of halving a feature map.

Max pooling keeps the largest value of each window (and remembers which pixel won: the decoder of SegNet reuses
those positions); average pooling keeps the mean. With ``kernel_size=2, stride=2`` each output pixel summarises
a 2×2 block, so the map shrinks by two in each direction. :func:`pool2d` equals torch's
``max_pool2d``/``avg_pool2d``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from segtutor.explain.arguments import as_array, as_pair
from segtutor.explain.arithmetic import output_size
from segtutor.explain.formula import format_number

if TYPE_CHECKING:  # torch only for the type hints: the explorers draw without it
    import torch

POOL_MODES = ("max", "avg")


@dataclass(frozen=True, eq=False)
class PoolStep:
    """One pooling window: how output pixel ``(i, j)`` is computed.

    Attributes:
        position: ``(i, j)``, the output pixel.
        rows: ``(kh,)`` input rows of the window.
        cols: ``(kw,)`` input columns of the window.
        window: ``(kh, kw)`` the input values in the window.
        mode: ``"max"`` or ``"avg"``.
        value: the window's maximum or mean, the output pixel.
        winner: ``(row, col)`` of the input pixel that won (max pooling; the first in row-major order on a tie,
            as torch picks), ``None`` for average pooling.
    """

    position: tuple[int, int]
    rows: np.ndarray
    cols: np.ndarray
    window: np.ndarray
    mode: str
    value: float
    winner: tuple[int, int] | None

    def formula(self, *, decimals: int = 2) -> str:
        """``"max(1, 5, 0, 2) = 5"`` or ``"(1 + 5 + 0 + 2) / 4 = 2"``."""
        numbers = [format_number(v, decimals) for v in self.window.ravel()]
        if self.mode == "max":
            return f"max({', '.join(numbers)}) = {format_number(self.value, decimals)}"
        return f"({' + '.join(numbers)}) / {len(numbers)} = {format_number(self.value, decimals)}"


def pool2d_steps(
    x: np.ndarray | torch.Tensor,
    *,
    kernel_size: int | tuple[int, int] = 2,
    stride: int | tuple[int, int] = 2,
    mode: str = "max",
) -> list[PoolStep]:
    """Every window of a pooling, one per output pixel, in row-major order.

    Args:
        x: a feature map ``(H, W)``.
        kernel_size: window size, an int or ``(rows, cols)``.
        stride: step between windows, an int or ``(rows, cols)``.
        mode: ``"max"`` or ``"avg"``.

    Returns:
        ``H_out · W_out`` steps; ``steps[k].position == divmod(k, W_out)``.

    Raises:
        ValueError: on an unknown mode, a bad shape or a window larger than the map.

    Example:
        >>> pool2d_steps(np.array([[1, 5], [0, 2]]))[0].winner
        (0, 1)
    """
    if mode not in POOL_MODES:
        raise ValueError(f"mode must be one of {POOL_MODES}, got {mode!r}")
    x = as_array(x, "x", {2: "(H, W)"})
    (kh, kw), stride = as_pair(kernel_size, "kernel_size"), as_pair(stride, "stride")
    out_h = output_size(x.shape[0], kh, stride[0]).value
    out_w = output_size(x.shape[1], kw, stride[1]).value
    steps = []
    for i in range(out_h):
        rows = i * stride[0] + np.arange(kh)
        for j in range(out_w):
            cols = j * stride[1] + np.arange(kw)
            window = x[rows[:, None], cols[None, :]]  # (kh, kw)
            if mode == "max":
                a, b = np.unravel_index(np.argmax(window), window.shape)  # first maximum in row-major order
                value, winner = float(window[a, b]), (int(rows[a]), int(cols[b]))
            else:
                value, winner = float(window.mean()), None
            steps.append(PoolStep((i, j), rows, cols, window, mode, value, winner))
    return steps


def pool2d(
    x: np.ndarray | torch.Tensor,
    *,
    kernel_size: int | tuple[int, int] = 2,
    stride: int | tuple[int, int] = 2,
    mode: str = "max",
) -> np.ndarray:
    """The pooled map, ``(H_out, W_out)`` from ``(H, W)`` or ``(C, H_out, W_out)`` from ``(C, H, W)``.

    Assembled from :func:`pool2d_steps` (channel by channel); equals torch's ``max_pool2d``/``avg_pool2d``.
    """
    x = as_array(x, "x", {2: "(H, W)", 3: "(C, H, W)"})
    if x.ndim == 3:
        return np.stack([pool2d(channel, kernel_size=kernel_size, stride=stride, mode=mode) for channel in x])
    steps = pool2d_steps(x, kernel_size=kernel_size, stride=stride, mode=mode)
    pooled = np.zeros((steps[-1].position[0] + 1, steps[-1].position[1] + 1))
    for step in steps:
        pooled[step.position] = step.value
    return pooled
