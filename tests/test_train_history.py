"""The training history's derived numbers: the smoothed loss curve and the time per step."""

from __future__ import annotations

import math

import pytest

from segtutor.train import History, smooth


def test_smooth_is_a_debiased_moving_average():
    values = [1.0, 3.0, math.nan, 2.0, 5.0]
    expected, average, count = [], 0.0, 0
    for value in values:
        if not math.isnan(value):
            average, count = 0.9 * average + 0.1 * value, count + 1
        expected.append(average / (1 - 0.9**count))
    assert smooth(values, 0.9) == pytest.approx(expected)
    assert smooth([4.0]) == [pytest.approx(4.0)]  # the first point is the value itself
    assert math.isnan(smooth([math.nan])[0])


def test_seconds_per_iteration_is_the_median_step():
    assert History(seconds=[1.0, 3.0, 4.0]).seconds_per_iteration == 1.5  # steps of 2 s and 1 s
    assert History(seconds=[1.0, 2.0, 3.0, 13.0]).seconds_per_iteration == 1.0  # robust to one slow step
    assert math.isnan(History(seconds=[1.0]).seconds_per_iteration)
