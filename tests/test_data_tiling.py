"""Tiling and stitching: every pixel covered, and stitch(tile(x)) == x exactly."""

from __future__ import annotations

import numpy as np
import pytest

from segtutor.data import stitch, tile_image, tile_positions
from segtutor.data.tiling import tile_starts


@pytest.mark.parametrize(
    ("shape", "tile_size", "overlap"),
    [((37, 53), 16, 5), ((37, 53, 3), 16, 0), ((64, 64), 64, 8), ((100, 33, 2), 33, 32), ((2048, 2048), 256, 32)],
)
def test_stitch_of_tiles_gives_the_image_back_exactly(shape, tile_size, overlap):
    image = np.random.default_rng(0).integers(0, 256, size=shape).astype(np.uint8)
    tiles, positions = tile_image(image, tile_size, overlap)
    assert tiles.shape == (len(positions), tile_size, tile_size) + shape[2:] and tiles.dtype == np.uint8
    assert np.array_equal(stitch(tiles, positions, shape), image)


def test_float_round_trip_and_weighted_blend():
    image = np.random.default_rng(1).random((45, 70, 3)).astype(np.float32)
    tiles, positions = tile_image(image, 20, 6)
    assert np.array_equal(stitch(tiles, positions, image.shape), image)
    fade = np.outer(np.hanning(22)[1:-1], np.hanning(22)[1:-1])  # positive, smallest at the tile edges
    assert np.allclose(stitch(tiles, positions, image.shape, weight=fade), image, atol=1e-6)


def test_positions_cover_the_image_with_at_least_the_overlap():
    height, width, size, overlap = 101, 250, 32, 10
    positions = tile_positions(height, width, size, overlap)
    covered = np.zeros((height, width), dtype=int)
    for top, left in positions:
        assert 0 <= top <= height - size and 0 <= left <= width - size
        covered[top : top + size, left : left + size] += 1
    assert (covered >= 1).all()
    for starts in (tile_starts(height, size, overlap), tile_starts(width, size, overlap)):
        assert starts[0] == 0 and all(0 < b - a <= size - overlap for a, b in zip(starts, starts[1:]))
    rows, columns = tile_starts(height, size, overlap), tile_starts(width, size, overlap)
    assert positions == [(top, left) for top in rows for left in columns]


def test_tile_starts_last_tile_is_flush_with_the_border():
    assert tile_starts(300, 128, 32) == [0, 96, 172]
    assert tile_starts(128, 128, 0) == [0]
    assert tile_starts(256, 128, 0) == [0, 128]


def test_bad_tiling_arguments():
    with pytest.raises(ValueError, match="smaller than one tile"):
        tile_positions(20, 100, 32, 0)
    with pytest.raises(ValueError, match="overlap"):
        tile_positions(100, 100, 32, 32)
    tiles, positions = tile_image(np.zeros((40, 40)), 16, 4)
    with pytest.raises(ValueError, match="positions"):
        stitch(tiles[:-1], positions, (40, 40))
    with pytest.raises(ValueError, match="weight"):
        stitch(tiles, positions, (40, 40), weight=np.zeros((16, 16)))
    with pytest.raises(ValueError, match="do not fit"):
        stitch(tiles, positions, (40, 40, 3))
