"""From outlines to pixels: polygons, holes included, filled into a mask the way a scanline renderer does.

Annotations are drawn as outlines (in QuPath, napari, ...); a segmentation network needs one label per pixel.
A pixel belongs to a polygon when its centre lies inside it, by the even–odd rule: a ray from the centre crosses
the outline an odd number of times. A hole is one more ring that the ray crosses, so holes come out right.

Centres exactly on an edge follow the top-left rule of graphics hardware: top and left edges count as inside,
bottom and right edges as outside. Two polygons that share an edge then never both claim a pixel, nor leave a gap.

The way back, from pixels to outlines (:func:`trace_outlines`, to write a prediction for QuPath): walk along the
edges between inside and outside pixels, the inside always on the right, until back at the start. Each walk is
one ring: clockwise around a region, anticlockwise around a hole in it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage


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


def trace_outlines(region: np.ndarray) -> list[list[np.ndarray]]:
    """The outlines of a region of pixels, holes included: the way back from a mask to polygons.

    The outlines run along the pixels' edges, so filling them in (:func:`rasterize_polygon`) gives back exactly
    the same pixels. Pixels that touch only at a corner are separate regions (4-connectivity).

    Args:
        region: bool (H, W), e.g. ``labels == tumor``.

    Returns:
        One entry per connected region: ``[outline, hole, hole, ...]``, each ring an (n, 2) float64 array of the
        (row, column) corners, in the convention of :func:`rasterize_polygon` (pixel centres at integers, so
        corners at half-integers), the last corner connecting back to the first; only the corners where the
        outline turns are kept. Outlines run clockwise on the screen (rows down), holes anticlockwise.

    Example:
        >>> region = np.zeros((4, 5), dtype=bool)
        >>> region[1:3, 1:4] = True  # a 2 x 3 block
        >>> trace_outlines(region)[0][0]  # its four corners
        array([[0.5, 0.5],
               [0.5, 3.5],
               [2.5, 3.5],
               [2.5, 0.5]])
    """
    region = np.asarray(region)
    if region.ndim != 2 or region.dtype != bool:
        raise ValueError(f"region must be a bool (H, W) array (e.g. labels == 1), got {region.dtype} {region.shape}")
    inside = np.pad(region, 1)  # (H + 2, W + 2): nothing inside beyond the border

    # 1) Boundary edges between an inside and an outside pixel, between corners (y, x) of the pixel grid (corner
    #    (y, x) is the top-left corner of pixel (y, x)), directed so that the inside lies on their right on the
    #    screen (x right, y down). Directions: 0 right, 1 down, 2 left, 3 up.
    above, below = inside[:-1, 1:-1], inside[1:, 1:-1]  # (H + 1, W): the pixels on either side of horizontal edges
    left, right = inside[1:-1, :-1], inside[1:-1, 1:]  # (H, W + 1): the pixels on either side of vertical edges
    starts, directions = [], []
    for sides, offset, heading in (
        (below & ~above, (1, 1), 0),  # the top edge of an inside pixel, rightwards
        (above & ~below, (1, 2), 2),  # a bottom edge, leftwards
        (left & ~right, (1, 1), 1),  # a right edge, downwards
        (right & ~left, (2, 1), 3),  # a left edge, upwards
    ):
        starts.append(np.argwhere(sides) + offset)  # the corner the edge starts at
        directions.append(np.full(len(starts[-1]), heading))
    start, direction = np.concatenate(starts), np.concatenate(directions)  # (E, 2) corner (y, x), (E,)
    if len(start) == 0:
        return []
    step = np.array([[0, 1], [1, 0], [0, -1], [-1, 0]])  # (dy, dx) of each direction
    end = start + step[direction]

    # 2) Each edge's successor: the edge that leaves the corner it ends at. Where two leave it (two pixels that
    #    touch only at this corner), turn right, which keeps those pixels apart.
    width = inside.shape[1]
    node = start[:, 0] * width + start[:, 1]
    order = np.lexsort((direction, node))  # edges grouped by the corner they leave
    first = np.searchsorted(node[order], end[:, 0] * width + end[:, 1])  # (E,) first edge leaving each end
    successor = order[first]
    two = (first + 1 < len(order)) & (node[order[np.minimum(first + 1, len(order) - 1)]] == node[successor])
    right_turn = (direction + 1) % 4
    other = order[np.minimum(first + 1, len(order) - 1)]
    successor = np.where(two & (direction[other] == right_turn), other, successor)

    # 3) Rings: follow successors until back at the start; keep the corners where the direction changes.
    seen = np.zeros(len(start), dtype=bool)
    rings = []
    for edge in range(len(start)):
        if seen[edge]:
            continue
        cycle = [edge]
        seen[edge] = True
        while (edge := successor[edge]) != cycle[0]:
            cycle.append(edge)
            seen[edge] = True
        cycle = np.array(cycle)
        turns = cycle[direction[cycle] != direction[np.roll(cycle, 1)]]
        rings.append(turns)

    # 4) Outlines and holes: each ring belongs to the region of the inside pixel on the right of its first edge
    #    (its 4-connected component); a hole is the ring of a region that runs anticlockwise (negative area).
    components, _ = ndimage.label(inside)  # 4-connectivity
    outline_of: dict[int, np.ndarray] = {}
    holes_of: dict[int, list[np.ndarray]] = {}
    for turns in rings:
        corners = start[turns].astype(np.float64)  # (n, 2) y, x of the corners
        y, x = corners[:, 0], corners[:, 1]
        area = 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))  # > 0: clockwise on the screen
        first_edge = turns[0]
        pixel = start[first_edge] + (step[direction[first_edge]] + step[(direction[first_edge] + 1) % 4] - 1) // 2
        component = int(components[pixel[0], pixel[1]])
        ring = corners - 1.5  # padded corner (y, x) to rasterize_polygon's (row, column): centres at integers
        if area > 0:
            outline_of[component] = ring
        else:
            holes_of.setdefault(component, []).append(ring)
    return [[outline_of[c], *holes_of.get(c, [])] for c in sorted(outline_of)]
