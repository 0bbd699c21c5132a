"""The boundary F-score against brute force: outline pixels by a neighbour loop, distances between every pair."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import blobs

from segtutor.metrics import boundary_pixels, boundary_scores


def brute_boundary(region: np.ndarray) -> np.ndarray:
    height, width = region.shape
    edge = np.zeros_like(region)
    for y in range(height):
        for x in range(width):
            if region[y, x]:
                neighbours = [(y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)]
                edge[y, x] = any(0 <= v < height and 0 <= u < width and not region[v, u] for v, u in neighbours)
    return edge

def brute_boundary_f(mask: np.ndarray, pred: np.ndarray, c: int, tolerance: float) -> tuple[float, float, float]:
    true_edge = np.argwhere(brute_boundary(mask == c))
    pred_edge = np.argwhere(brute_boundary(pred == c))
    if len(true_edge) == 0 and len(pred_edge) == 0:
        return math.nan, math.nan, math.nan
    if len(true_edge) == 0 or len(pred_edge) == 0:
        return 0.0, 0.0, 0.0
    distances = np.sqrt(((pred_edge[:, None, :] - true_edge[None, :, :]) ** 2).sum(-1))  # (P, T)
    precision = float((distances.min(1) <= tolerance).mean())
    recall = float((distances.min(0) <= tolerance).mean())
    f_score = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f_score

def test_boundary_pixels_match_a_neighbour_loop():
    for seed in range(3):
        region = blobs(seed) == 1
        np.testing.assert_array_equal(boundary_pixels(region), brute_boundary(region))

@pytest.mark.parametrize("tolerance", [0, 1, 2.5])
def test_boundary_scores_match_brute_force_distances(tolerance):
    mask, pred = blobs(0), blobs(1)
    pred[:7] = mask[:7]  # half right, half wrong
    scores = boundary_scores(torch.from_numpy(mask), torch.from_numpy(pred), 3, tolerance=tolerance)
    for c in range(3):
        expected = brute_boundary_f(mask, pred, c, tolerance)
        np.testing.assert_allclose([scores.precision[c], scores.recall[c], scores.f_score[c]], expected)

def test_boundary_scores_perfect_absent_and_shifted():
    mask = np.zeros((16, 16), np.int64)
    mask[4:12, 4:12] = 1
    perfect = boundary_scores(mask, mask, 3)
    assert perfect.f_score[:2] == [1.0, 1.0] and math.isnan(perfect.f_score[2])  # class 2 absent on both sides
    assert perfect.mean_f_score == 1.0
    shifted = np.roll(mask, 1, axis=1)  # the square one pixel to the right
    assert boundary_scores(mask, shifted, 2, tolerance=1).f_score[1] == 1.0
    assert boundary_scores(mask, shifted, 2, tolerance=0).f_score[1] < 1.0
    empty = boundary_scores(mask, np.zeros_like(mask), 2)
    assert empty.f_score[1] == 0.0  # a true outline, none predicted

def test_boundary_scores_ignore_unlabelled_pixels_and_bad_input():
    mask = np.zeros((8, 12), np.int64)
    mask[:, 4:8] = 1  # a band of class 1: outlines at columns 3/4 and 7/8
    pred = mask.copy()
    pred[:, 10:] = 1  # wrong in columns 10-11 ...
    unlabelled = mask.copy()
    unlabelled[:, 10:] = 255  # ... which nobody annotated
    assert boundary_scores(unlabelled, pred, 2, tolerance=0).f_score == [1.0, 1.0]
    assert max(boundary_scores(mask, pred, 2, tolerance=0).f_score) < 1.0  # annotated, the error counts
    with pytest.raises(TypeError, match="integer class indices"):
        boundary_scores(mask.astype(float), pred, 2)
    with pytest.raises(ValueError, match="same shape"):
        boundary_scores(mask, pred[:4], 2)
    with pytest.raises(ValueError, match="tolerance"):
        boundary_scores(mask, pred, 2, tolerance=-1)
