"""BackpropExplorer and OptimizerExplorer draw what segtutor.explain computes; clicks and buttons move them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segtutor.data import TissueDataset
from segtutor.explain import pixel_gradients
from segtutor.models import create_model
from segtutor.widgets import BackpropExplorer, OptimizerExplorer
from segtutor.widgets.explorers.backprop import ADAM_LOSS, ADAM_STEP, LAYERS, MARKER, SGD_LOSS, SGD_STEP, TILE


def test_a_click_backpropagates_that_pixel_and_the_bars_are_its_layer_gradients():
    data = TissueDataset(2, 32, seed=3)
    model = create_model("unet", size="tiny", seed=1)
    explorer = BackpropExplorer(model, data)
    explorer.figure.click(TILE, 7, 20)  # x = column 7, y = row 20
    assert explorer.result.pixel == (20, 7) and (explorer.row.value, explorer.col.value) == (20, 7)
    expected = pixel_gradients(model, *data[0], (20, 7))
    bars = explorer.figure.data[LAYERS]
    assert list(bars["x"]) == [layer.name for layer in expected.layers]
    np.testing.assert_allclose(bars["y"], [layer.rms for layer in expected.layers])
    assert list(explorer.figure.data[MARKER]["x"]) == [7] and list(explorer.figure.data[MARKER]["y"]) == [20]
    assert f"loss −log p = <b>{expected.loss:.3f}</b>" in explorer.summary.value
    explorer.tile.value = 1
    assert explorer.result.loss == pytest.approx(pixel_gradients(model, *data[1], (20, 7)).loss)
    assert not explorer.errors.outputs


def test_steps_draw_both_loss_curves_and_the_effective_steps_and_a_new_rate_starts_again():
    data = TissueDataset(4, 32, seed=0)
    images = torch.stack([data[i][0] for i in range(4)])
    masks = torch.stack([data[i][1] for i in range(4)])
    explorer = OptimizerExplorer(create_model("unet", size="tiny", seed=0), images, masks)
    assert "Press <b>1 step</b>" in explorer.table.value
    explorer.step_button.click()
    explorer.ten_button.click()
    race = explorer.race
    assert len(race.history["SGD"]) == len(race.history["Adam"]) == 11
    assert list(explorer.figure.data[SGD_LOSS]["y"]) == race.losses("SGD")
    assert list(explorer.figure.data[ADAM_LOSS]["y"]) == race.losses("Adam")
    np.testing.assert_allclose(explorer.figure.data[ADAM_STEP]["y"], race.effective_steps("Adam")[-1])
    np.testing.assert_allclose(explorer.figure.data[SGD_STEP]["y"], race.effective_steps("SGD")[-1])
    assert "after step 11" in explorer.table.value and "m̂ / (√v̂ + ε)" in explorer.table.value
    explorer.adam_lr.value = 1e-2  # a new learning rate: both start again
    assert explorer.race.lr["Adam"] == pytest.approx(1e-2) and not explorer.race.history["Adam"]
    assert not explorer.errors.outputs
