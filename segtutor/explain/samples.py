"""Small inputs for the explorers: a grid of numbers to add up by hand, and a patch of tissue (grey or RGB)."""

from __future__ import annotations

import numpy as np

from segtutor.data import generate_tile


def number_grid(size: int = 7, *, seed: int = 0) -> np.ndarray:
    """A ``(size, size)`` grid of small integers: a bright square (7–9) on a dark background (0–2).

    Edges are where the numbers jump, so an edge kernel has something to find.
    """
    if size < 3:
        raise ValueError(f"size must be at least 3, got {size}")
    rng = np.random.default_rng(seed)
    grid = rng.integers(0, 3, size=(size, size))
    inner = slice(size // 3, size - size // 3)  # the middle third
    grid[inner, inner] = rng.integers(7, 10, size=grid[inner, inner].shape)
    return grid.astype(np.float64)


def tissue_patch(size: int = 16, *, seed: int = 0) -> np.ndarray:
    """A ``(size, size)`` grayscale patch of a generated H&E tile, values in [0, 1] (1 = white).

    Taken from the tile's centre, where tissue is most likely; nuclei are the dark spots.
    """
    if size < 3:
        raise ValueError(f"size must be at least 3, got {size}")
    image, _mask = generate_tile(max(32, 2 * size), seed=seed)  # (T, T, 3) uint8
    gray = image @ np.array([0.299, 0.587, 0.114]) / 255.0  # (T, T), ITU-R 601 luma
    top = (gray.shape[0] - size) // 2
    return gray[top : top + size, top : top + size]


def rgb_patch(size: int = 8, *, seed: int = 0) -> np.ndarray:
    """A ``(3, size, size)`` colour patch of a generated H&E tile, channels R, G, B first, values in [0, 1].

    The same tile centre as :func:`tissue_patch`: what the first layer of an RGB network actually receives.
    """
    if size < 3:
        raise ValueError(f"size must be at least 3, got {size}")
    image, _mask = generate_tile(max(32, 2 * size), seed=seed)  # (T, T, 3) uint8
    top = (image.shape[0] - size) // 2
    return image[top : top + size, top : top + size].transpose(2, 0, 1) / 255.0  # (3, size, size)
