"""The learning-rate finder: a rising learning rate on a copy, the curve it records, and what it suggests."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import blob_dataset, tiny_net

from segtutor.data import TissueDataset
from segtutor.figures import lr_finder_figure
from segtutor.models import create_model
from segtutor.train import LRRangeTest, TrainConfig, fit, lr_find

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def test_lr_find_leaves_the_model_and_the_generator_untouched_and_records_a_rising_lr():
    model = create_model("unet", size="tiny", seed=0)
    before = {name: value.clone() for name, value in model.state_dict().items()}  # batch-norm statistics included
    rng = torch.random.get_rng_state()
    result = lr_find(model, blob_dataset(count=16), TrainConfig(max_iters=1, batch_size=4), start_lr=1e-4,
                     end_lr=1e-1, num_steps=12)  # fmt: skip
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())
    assert torch.equal(torch.random.get_rng_state(), rng)
    # 1) one learning rate per step, geometric from start_lr to end_lr
    assert result.steps == len(result.losses) == len(result.smoothed) == 12 and not result.diverged
    np.testing.assert_allclose(result.lrs, np.geomspace(1e-4, 1e-1, 12), rtol=1e-9)
    # 2) the smoothed curve is the bias-corrected exponential moving average of the losses
    average, expected = 0.0, []
    for step, loss in enumerate(result.losses, start=1):
        average = 0.98 * average + 0.02 * loss
        expected.append(average / (1 - 0.98**step))
    np.testing.assert_allclose(result.smoothed, expected, rtol=1e-12)
    # 3) the suggestion: the learning rate of the smoothed minimum, divided by 10
    assert result.min_loss_lr == result.lrs[int(np.argmin(result.smoothed))]
    assert result.suggestion == pytest.approx(result.min_loss_lr / 10)


def test_lr_find_stops_once_the_loss_shoots_up():
    data = blob_dataset(count=16)
    config = TrainConfig(max_iters=1, optimizer="sgd", batch_size=4, seed=0)
    result = lr_find(tiny_net(), data, config, start_lr=1e-3, end_lr=1e6, num_steps=60)
    assert result.diverged and result.steps < 60
    finite = [loss for loss in result.smoothed if math.isfinite(loss)]
    assert finite[-1] > 4 * min(finite) or len(finite) < result.steps  # stopped at the blow-up, not later
    assert result.suggestion < result.lrs[-1]


def test_range_test_checks_its_arguments():
    with pytest.raises(ValueError, match="start_lr < end_lr"):
        LRRangeTest(1e-2, 1e-3, 10)
    with pytest.raises(ValueError, match="num_steps must be >= 2"):
        LRRangeTest(1e-5, 1.0, 1)
    assert LRRangeTest(1e-4, 1e-2, 3).lr_at(1) == pytest.approx(1e-3)


def test_the_figure_draws_the_curve_and_marks_the_suggestion():
    result = lr_find(tiny_net(), blob_dataset(count=16), TrainConfig(max_iters=1, batch_size=4), num_steps=20)
    figure = lr_finder_figure(result)
    traces = {trace.name: trace for trace in figure.data}
    assert list(traces["loss"].y) == result.losses and list(traces["smoothed loss"].y) == result.smoothed
    assert list(traces["suggestion"].x) == [result.suggestion] and figure.layout.xaxis.type == "log"
    assert f"{result.suggestion:.1e}" in figure.layout.title.text


@pytest.mark.parametrize("data", ["blobs", "tissue"])
def test_the_suggestion_trains_at_least_as_well_as_the_default_lr(data):
    # two data sets of different kinds; validation samples drawn from other seeds than training
    if data == "blobs":
        train, val = blob_dataset(count=32, seed=0), blob_dataset(count=16, seed=1)
    else:
        train, val = TissueDataset(32, 64, seed=0), TissueDataset(16, 64, seed=1)
    found = lr_find(create_model("unet", size="tiny", seed=0), train, TrainConfig(max_iters=1), num_steps=60)
    scores = {}
    for label, lr in (("default", None), ("suggested", found.suggestion)):
        history = fit(create_model("unet", size="tiny", seed=0), train, val, TrainConfig(max_iters=40, lr=lr))
        scores[label] = history.evaluations[-1]
    assert found.suggestion != create_model("unet", size="tiny").training_defaults.lr  # two different runs
    assert scores["suggested"].loss <= scores["default"].loss
    assert scores["suggested"].mean_iou >= scores["default"].mean_iou - 0.02
