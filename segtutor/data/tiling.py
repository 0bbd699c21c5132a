"""Tiling: cut a large image into overlapping tiles, and stitch tiles back into one image.

A whole slide does not fit through a network at once; it goes through tile by tile. Tiles overlap so that
every pixel is, in some tile, away from the tile's edge, where a network sees too little context. The last
row and column of tiles are moved back to end exactly at the image border, so any image size works.
"""

from __future__ import annotations

import numpy as np


def tile_starts(length: int, tile_size: int, overlap: int) -> list[int]:
    """Where tiles start along one axis: every ``tile_size - overlap`` pixels, the last one flush with the end.

    Example:
        >>> tile_starts(300, 128, 32)
        [0, 96, 172]
    """
    if tile_size < 1 or not 0 <= overlap < tile_size:
        raise ValueError(
            f"need tile_size >= 1 and 0 <= overlap < tile_size, got tile_size={tile_size}, overlap={overlap}"
        )
    if length < tile_size:
        raise ValueError(
            f"the image ({length} px) is smaller than one tile ({tile_size} px); pad it or use smaller tiles"
        )
    starts = list(range(0, length - tile_size + 1, tile_size - overlap))
    if starts[-1] != length - tile_size:
        starts.append(length - tile_size)  # last tile aligned to the border (it overlaps its neighbour more)
    return starts


def tile_positions(height: int, width: int, tile_size: int, overlap: int) -> list[tuple[int, int]]:
    """Top-left corners (row, column) of square tiles that cover a ``height`` x ``width`` image, row by row.

    Neighbouring tiles share at least ``overlap`` pixels; the last row and column end at the image border.

    Example:
        >>> tile_positions(200, 300, 128, 32)
        [(0, 0), (0, 96), (0, 172), (72, 0), (72, 96), (72, 172)]
    """
    return [
        (top, left)
        for top in tile_starts(height, tile_size, overlap)
        for left in tile_starts(width, tile_size, overlap)
    ]


def tile_image(image: np.ndarray, tile_size: int, overlap: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Cut an image into overlapping square tiles.

    Args:
        image: (H, W) or (H, W, C) array, e.g. uint8 RGB or a mask.
        tile_size: side of each tile in pixels.
        overlap: pixels shared by neighbouring tiles (at least).

    Returns:
        ``tiles`` (N, tile_size, tile_size, ...) with the image's dtype, and their top-left ``positions``.

    Example:
        >>> tiles, positions = tile_image(np.zeros((2048, 2048, 3), np.uint8), 256, 32)
        >>> tiles.shape
        (100, 256, 256, 3)
    """
    positions = tile_positions(image.shape[0], image.shape[1], tile_size, overlap)
    tiles = np.stack([image[top : top + tile_size, left : left + tile_size] for top, left in positions])
    return tiles, positions


def stitch(
    tiles: np.ndarray,
    positions: list[tuple[int, int]],
    out_shape: tuple[int, ...],
    *,
    weight: np.ndarray | None = None,
) -> np.ndarray:
    """Put tiles back into one image; where tiles overlap, take their (weighted) average.

    ``stitch(*tile_image(x, t, o), x.shape)`` gives back ``x`` exactly. To stitch predictions, stitch class
    probabilities, not labels (the average of two labels is no label), and pass a ``weight`` that fades
    towards the tile edges so the seams do not show.

    Args:
        tiles: (N, Th, Tw) or (N, Th, Tw, C); square tiles from :func:`tile_image`, or any ``Th × Tw``.
        positions: top-left (row, column) of each tile, e.g. from :func:`tile_image`.
        out_shape: (H, W) or (H, W, C) of the result.
        weight: (Th, Tw) positive weight of each tile pixel; ``None`` weighs all pixels equally.

    Returns:
        (H, W) or (H, W, C) with the tiles' dtype (integers are rounded); pixels no tile covers are 0.
    """
    tiles = np.asarray(tiles)
    if len(tiles) != len(positions):
        raise ValueError(f"got {len(tiles)} tiles but {len(positions)} positions")
    if tiles.shape[3:] != tuple(out_shape[2:]):
        raise ValueError(f"tiles of shape {tiles.shape[1:]} do not fit an image of shape {tuple(out_shape)}")
    height, width = tiles.shape[1:3]
    weight = np.ones((height, width)) if weight is None else np.asarray(weight, dtype=np.float64)
    if weight.shape != (height, width) or not (weight > 0).all():
        raise ValueError(f"weight must be a positive ({height}, {width}) array, got shape {weight.shape}")
    weight = weight.reshape(weight.shape + (1,) * (tiles.ndim - 3))  # broadcast over channels
    total = np.zeros(out_shape, dtype=np.float64)
    covered = np.zeros(out_shape[:2] + (1,) * (tiles.ndim - 3), dtype=np.float64)
    for tile, (top, left) in zip(tiles, positions):
        window = (slice(top, top + height), slice(left, left + width))
        total[window] += weight * tile
        covered[window] += weight
    average = np.divide(total, covered, out=np.zeros_like(total), where=covered > 0)
    if np.issubdtype(tiles.dtype, np.integer):
        average = np.round(average)
    return average.astype(tiles.dtype)
