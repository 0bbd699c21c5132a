"""From outlines to pixels: polygons, holes included, filled into a mask the way a scanline renderer does.

Annotations are drawn as outlines (in QuPath, napari, ...); a segmentation network needs one label per pixel.
A pixel belongs to a polygon when its centre lies inside it, by the even–odd rule: a ray from the centre crosses
the outline an odd number of times. A hole is one more ring that the ray crosses, so holes come out right.

Centres exactly on an edge follow the top-left rule of graphics hardware: top and left edges count as inside,
bottom and right edges as outside. Two polygons that share an edge then never both claim a pixel, nor leave a gap.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def rasterize_polygon(vertices: np.ndarray | Sequence[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """The pixels whose centre lies inside a polygon (even–odd rule, pixel centres at integer coordinates).

    Args:
        vertices: (n, 2) row, column of each corner, the last connecting back to the first; or a list of such
            rings, a polygon's outline and its holes, filled together.
        shape: (H, W) of the mask.

    Returns:
        bool (H, W).

    Example:
        >>> square = np.array([[1.5, 1.5], [1.5, 5.5], [5.5, 5.5], [5.5, 1.5]])  # corners between pixel centres
        >>> int(rasterize_polygon(square, (8, 8)).sum())  # rows 2..5, columns 2..5
        16
    """
    inside = np.zeros(shape, dtype=bool)
    rows, cols, box = polygon_box(vertices, shape)
    inside[rows, cols] = box
    return inside


def polygon_box(
    vertices: np.ndarray | Sequence[np.ndarray], shape: tuple[int, int]
) -> tuple[slice, slice, np.ndarray]:
    """Like :func:`rasterize_polygon`, for the polygon's bounding box only (cheap for small polygons on large masks).

    Every row is scanned at once: each edge crosses the rows between its two ends; each crossing flips
    inside/outside for all pixels of its row from the crossing rightwards.

    Args:
        vertices: (n, 2) row, column of each corner, or a list of rings (outline and holes).
        shape: (H, W) of the mask.

    Returns:
        ``rows``, ``cols``: the slices of the mask the polygon's bounding box covers (clipped to the mask), and
        ``inside``: bool (h, w) for those pixels, so that ``mask[rows, cols][inside] = label`` paints it.

    Example:
        >>> rows, cols, inside = polygon_box(np.array([[10.5, 20.5], [10.5, 23.5], [12.5, 20.5]]), (64, 64))
        >>> rows, cols, inside.shape
        (slice(11, 13, None), slice(21, 24, None), (2, 3))
    """
    rings = [vertices] if isinstance(vertices, np.ndarray) and vertices.ndim == 2 else list(vertices)
    rings = [np.asarray(ring, dtype=np.float64) for ring in rings]
    for ring in rings:
        if ring.ndim != 2 or ring.shape[1] != 2:
            raise ValueError(f"each ring must be an (n, 2) array of row, column corners; got shape {ring.shape}")
    height, width = shape

    # 1) Edges: every corner to the next one of its ring, (E, 2) each.
    start = np.concatenate(rings)
    end = np.concatenate([np.roll(ring, -1, axis=0) for ring in rings])

    # 2) Bounding box: the rows and columns whose centres may lie inside, clipped to the mask.
    low, high = start.min(axis=0), start.max(axis=0)
    row0, row1 = max(int(np.ceil(low[0])), 0), min(int(np.ceil(high[0])), height)  # rows row0 .. row1 - 1
    col0, col1 = max(int(np.ceil(low[1])), 0), min(int(np.ceil(high[1])), width)
    rows, cols = slice(row0, max(row0, row1)), slice(col0, max(col0, col1))
    box_height, box_width = rows.stop - rows.start, cols.stop - cols.start
    if box_height == 0 or box_width == 0:
        return rows, cols, np.zeros((box_height, box_width), dtype=bool)

    # 3) Crossings: an edge crosses every row r with top <= r < bottom (top row in, bottom row out);
    #    horizontal edges cross none. List each (edge, row) pair.
    top = np.minimum(start[:, 0], end[:, 0])
    bottom = np.maximum(start[:, 0], end[:, 0])
    first = np.maximum(np.ceil(top), row0).astype(np.int64)
    last = np.minimum(np.ceil(bottom), row1).astype(np.int64)  # exclusive
    count = np.maximum(last - first, 0)  # (E,) rows crossed by each edge
    edge = np.repeat(np.arange(len(start)), count)  # (K,) which edge, for each crossing
    row = first[edge] + np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)  # (K,)
    a, b = start[edge], end[edge]  # (K, 2)
    col = a[:, 1] + (row - a[:, 0]) * (b[:, 1] - a[:, 1]) / (b[:, 0] - a[:, 0])  # (K,) where the edge crosses

    # 4) Flips: a crossing at column x flips the pixels at columns >= x of its row (left edges in, right edges
    #    out). Mark each flip at its first pixel; a running XOR along the row then says inside or outside.
    first_pixel = np.clip(np.ceil(col).astype(np.int64) - col0, 0, box_width)  # box_width: flips nothing
    flat = (row - row0) * (box_width + 1) + first_pixel
    flips = (np.bincount(flat, minlength=box_height * (box_width + 1)) % 2).astype(np.uint8)
    inside = np.bitwise_xor.accumulate(flips.reshape(box_height, box_width + 1), axis=1)[:, :box_width]
    return rows, cols, inside.astype(bool)
