"""The loss playground: its numbers against independent formulas, its controls and clicks against its figure."""

from __future__ import annotations

import math

import numpy as np
import pytest

from segtutor.widgets import LossPlaygroundExplorer, LossPlaygroundState
from segtutor.widgets.explorers.loss_playground import BARS, LOSS_NAMES, PREDICTION, PRESETS, TRUTH


def test_a_prediction_that_misses_the_tumor_scores_high_accuracy_and_zero_iou():
    state = LossPlaygroundState(size=64, tumor_share=0.05, confidence=0.95)
    truth_share = state.truth.mean()
    assert truth_share == pytest.approx(0.05, abs=0.005)
    state.configure(grow=-64)  # the predicted tumor shrinks to nothing
    assert np.allclose(state.probs, 0.05)
    assert state.scores.pixel_accuracy == pytest.approx(1 - truth_share) and state.scores.iou[1] == 0.0
    # cross-entropy by the formula: tumor pixels cost -log 0.05, stroma pixels -log 0.95
    expected = -(truth_share * math.log(0.05) + (1 - truth_share) * math.log(0.95))
    assert state.readings["cross-entropy"].value == pytest.approx(expected)
    weighted = -(state.tumor_weight * truth_share * math.log(0.05) + (1 - truth_share) * math.log(0.95))
    weighted /= state.tumor_weight * truth_share + 1 - truth_share
    assert state.readings["weighted cross-entropy"].value == pytest.approx(weighted)
    # soft Dice by hand: one Dice per class, smooth = 1
    tumor_pixels, pixels = state.truth.sum(), state.truth.size
    dice_tumor = (2 * 0.05 * tumor_pixels + 1) / (0.05 * pixels + tumor_pixels + 1)
    dice_stroma = (2 * 0.95 * (pixels - tumor_pixels) + 1) / (0.95 * pixels + pixels - tumor_pixels + 1)
    assert state.readings["soft Dice"].value == pytest.approx(1 - (dice_tumor + dice_stroma) / 2)
    focal = -(truth_share * 0.95**2 * math.log(0.05) + (1 - truth_share) * 0.05**2 * math.log(0.95))
    assert state.readings["focal"].value == pytest.approx(focal)
    total = state.readings["cross-entropy"].value + state.readings["soft Dice"].value
    assert state.readings["cross-entropy + Dice"].value == pytest.approx(total)


def test_the_push_of_cross_entropy_is_truth_minus_probability_over_the_pixels():
    state = LossPlaygroundState(size=32, tumor_share=0.1, shift=3, blur=1.0)
    push = state.readings["cross-entropy"].push
    np.testing.assert_allclose(push, (state.truth - state.probs) / state.truth.size, atol=1e-12)
    tumor = state.truth == 1
    share = np.abs(push[tumor]).sum() / np.abs(push).sum()
    assert state.readings["cross-entropy"].tumor_share == pytest.approx(share)
    # missing the tumor costs cross-entropy in proportion to the tumor's share; soft Dice far less so
    rise = {}
    for tumor_share in (0.02, 0.2):
        state.configure(tumor_share=tumor_share, shift=0, blur=0.0, grow=0)
        perfect = {name: reading.value for name, reading in state.readings.items()}
        state.configure(grow=-64)
        rise[tumor_share] = {name: state.readings[name].value - perfect[name] for name in LOSS_NAMES}
    ratio = {name: rise[0.02][name] / rise[0.2][name] for name in LOSS_NAMES}
    assert ratio["cross-entropy"] == pytest.approx(0.1, abs=0.01)  # 10 times rarer, 10 times cheaper to miss
    assert ratio["soft Dice"] > 4 * ratio["cross-entropy"]
    assert ratio["cross-entropy + Dice"] > 2 * ratio["cross-entropy"]


def test_brush_strokes_paint_probabilities_and_bad_settings_are_refused():
    state = LossPlaygroundState(size=32)
    state.paint(2, 3, radius=1, probability=0.7)
    assert state.probs[2, 3] == pytest.approx(0.7) and state.probs[2, 5] == pytest.approx(0.05)
    state.configure(shift=2)
    assert state.probs[2, 3] == pytest.approx(0.7)  # strokes stay when settings change
    state.clear_strokes()
    assert state.probs[2, 3] == pytest.approx(0.05)
    with pytest.raises(ValueError, match="tumor_share must be between 0 and 0.5"):
        state.configure(tumor_share=0.7)
    assert state.tumor_share == 0.05 and state.shift == 2  # the previous settings are kept
    with pytest.raises(TypeError, match="unknown settings"):
        state.configure(temperature=2)
    with pytest.raises(ValueError, match="must lie in the 32 × 32 square"):
        state.paint(40, 0)


def test_the_explorer_draws_the_state_and_follows_presets_sliders_and_clicks():
    explorer = LossPlaygroundExplorer(size=48, tumor_share=0.05)
    state, figure = explorer.state, explorer.figure
    assert explorer.tumor_weight.value == pytest.approx(19.0)  # inverse class frequency
    explorer.preset.value = "all stroma"
    assert state.grow == -48 and state.scores.iou[1] == 0.0
    bars = figure.data[2]
    assert bars["y"] == pytest.approx([state.readings[name].value for name in LOSS_NAMES])
    assert "pixel accuracy <b>9" in explorer.scores.value and "tumor IoU <b>0.00" in explorer.scores.value
    push = np.array(figure.data[3 + LOSS_NAMES.index("soft Dice")]["z"], dtype=float)
    dice_push = state.readings["soft Dice"].push
    np.testing.assert_allclose(push, dice_push / np.abs(dice_push).max(), atol=1e-3)
    titles = [a["text"] for a in figure.layout["annotations"]]
    assert titles[3 + LOSS_NAMES.index("focal")].endswith(f"{state.readings['focal'].tumor_share:.0%} on tumor")

    explorer.shift.value = 2  # a slider moved by hand: no preset matches any more
    assert explorer.preset.value == "custom" and state.shift == 2
    explorer.preset.value = "shifted"
    assert (state.shift, state.grow, state.blur, state.confidence) == (PRESETS["shifted"][0], 0, 0.0, 0.95)

    figure.click(TRUTH, x=10, y=12)  # move the tumor
    assert (state.row, state.col) == (12, 10) and (explorer.row.value, explorer.col.value) == (12, 10)
    assert figure.data[TRUTH]["z"][12][10] == 1
    explorer.brush_value.value = 0.3
    figure.click(PREDICTION, x=40, y=40)
    assert state.probs[40, 40] == pytest.approx(0.3) and figure.data[PREDICTION]["z"][40][40] == pytest.approx(0.3)
    explorer.clear_button.click()
    assert state.strokes == [] and explorer.errors.outputs == ()


def test_painting_the_truth_adds_a_tumor_the_prediction_copies_and_every_loss_sees_it():
    import torch
    import torch.nn.functional as F

    state = LossPlaygroundState(size=48, tumor_share=0.05)
    truth_before = state.truth.copy()
    state.paint_truth(8, 8, radius=3)  # a second, small tumor far from the first
    rows, cols = np.mgrid[:48, :48]
    painted = (rows - 8) ** 2 + (cols - 8) ** 2 <= 9
    assert (state.truth[painted] == 1).all() and (state.truth[~painted] == truth_before[~painted]).all()
    np.testing.assert_allclose(state.probs, np.where(state.truth == 1, 0.95, 0.05))  # "perfect": a copy of it
    assert state.scores.iou[1] == 1.0
    state.paint(8, 8, radius=3, probability=0.05)  # the prediction's brush: now it misses the new tumor
    expected = F.cross_entropy(torch.from_numpy(np.log(np.stack([1 - state.probs, state.probs])))[None],
                               torch.from_numpy(state.truth)[None])  # fmt: skip
    assert state.readings["cross-entropy"].value == pytest.approx(float(expected))
    assert state.scores.iou[1] == pytest.approx(truth_before.sum() / state.truth.sum())  # the new one missed
    state.strokes = []
    state.paint_truth(8, 8, radius=3, tumor=False)  # painted back to stroma
    np.testing.assert_array_equal(state.truth, truth_before)
    state.paint_truth(8, 8, radius=3)
    state.configure(shift=2)
    assert state.truth[8, 8] == 1  # kept when the prediction changes
    state.clear_strokes()
    np.testing.assert_array_equal(state.truth, truth_before)
    with pytest.raises(ValueError, match="must lie in the 48 × 48 square, got \\(60, 2\\)"):
        state.paint_truth(60, 2)


def brute_force_preset(truth: np.ndarray, shift: int, grow: int) -> np.ndarray:
    """Which pixels a preset calls tumor, pixel by pixel: the truth moved ``shift`` right, then grown by ``grow``
    pixels (every pixel within that distance of a tumor pixel) or shrunk (the tumor pixels farther than ``-grow``
    from every stroma pixel, the square's edge counting as stroma)."""
    size = truth.shape[0]
    moved = np.zeros_like(truth, dtype=bool)
    for r in range(size):
        for c in range(size):
            moved[r, c] = 0 <= c - shift < size and truth[r, c - shift] == 1
    inside = np.zeros_like(moved)
    tumor = [(r, c) for r in range(size) for c in range(size) if moved[r, c]]
    stroma = [(r, c) for r in range(-1, size + 1) for c in range(-1, size + 1)
              if not (0 <= r < size and 0 <= c < size and moved[r, c])]  # fmt: skip
    for r in range(size):
        for c in range(size):
            if grow >= 0:
                inside[r, c] = any((r - a) ** 2 + (c - b) ** 2 <= grow**2 for a, b in tumor)
            else:
                inside[r, c] = moved[r, c] and all((r - a) ** 2 + (c - b) ** 2 > grow**2 for a, b in stroma)
    return inside


def test_presets_follow_the_truth_the_learner_painted():
    explorer = LossPlaygroundExplorer(size=32, tumor_share=0.05)
    figure = explorer.figure
    explorer.preset.value = "shifted"  # chosen first: painting the truth recomputes it
    explorer.truth_click.value = "paint tumor"
    explorer.brush_radius.value = 2
    figure.click(TRUTH, x=6, y=24)  # a second, small tumor (13 pixels) far from the round one
    figure.click(TRUTH, x=8, y=24)  # a stroke next to it: an oblong shape, no disc
    truth = np.array(figure.data[TRUTH]["z"])
    assert truth[24, 4:11].all() and truth.sum() > explorer.state.truth.sum() - 1 > 0
    np.testing.assert_array_equal(truth, explorer.state.truth)
    for preset in ("shifted", "perfect", "too large", "too small", "all stroma"):
        explorer.preset.value = preset
        shift, grow, _, confidence = PRESETS[preset]
        grow = max(grow, explorer.grow.min)
        expected = np.where(brute_force_preset(truth, shift, grow), confidence, 1 - confidence)
        drawn = np.array(figure.data[PREDICTION]["z"], dtype=float)
        np.testing.assert_allclose(drawn, expected, atol=1e-4, err_msg=preset)
        bars = figure.data[BARS]["y"]
        assert bars == pytest.approx([explorer.state.readings[name].value for name in LOSS_NAMES])
    # shrinking by 3 pixels wipes out the painted tumor (3 pixels thick at most) and keeps the round one's core
    explorer.preset.value = "too small"
    drawn = np.array(figure.data[PREDICTION]["z"], dtype=float) > 0.5
    assert not drawn[20:, :14].any() and drawn[16, 16]
    # painting the truth again, with a preset chosen, redraws the prediction from the new truth
    explorer.preset.value = "shifted"
    figure.click(TRUTH, x=20, y=6)
    truth = np.array(figure.data[TRUTH]["z"])
    drawn = np.array(figure.data[PREDICTION]["z"], dtype=float)
    np.testing.assert_allclose(drawn, np.where(brute_force_preset(truth, 4, 0), 0.95, 0.05), atol=1e-4)
    assert explorer.preset.value == "shifted"
    # the prediction's own brush strokes stay on top of the recomputed copy
    explorer.brush_value.value = 0.3
    figure.click(PREDICTION, x=28, y=2)
    figure.click(TRUTH, x=28, y=2)  # painted under the prediction's stroke: the stroke wins there
    drawn = np.array(figure.data[PREDICTION]["z"], dtype=float)
    assert drawn[2, 28] == pytest.approx(0.3) and explorer.state.truth[2, 28] == 1
    explorer.clear_button.click()
    explorer.preset.value = "perfect"
    disc = np.array(figure.data[TRUTH]["z"])
    assert disc.sum() == pytest.approx(0.05 * 32 * 32, abs=4) and not disc[24, 6]
    np.testing.assert_allclose(np.array(figure.data[PREDICTION]["z"], dtype=float), np.where(disc, 0.95, 0.05))
    assert explorer.errors.outputs == ()


def test_clicking_the_truth_paints_it_when_the_toggle_says_so():
    explorer = LossPlaygroundExplorer(size=48)
    row, col = explorer.row.value, explorer.col.value
    explorer.truth_click.value = "paint tumor"
    explorer.brush_radius.value = 2
    explorer.figure.click(TRUTH, x=6, y=40)
    truth = np.array(explorer.figure.data[TRUTH]["z"])
    assert truth[40, 6] == 1 and truth[40, 9] == 0 and (explorer.row.value, explorer.col.value) == (row, col)
    assert np.array_equal(truth, explorer.state.truth) and "tumor IoU" in explorer.scores.value
    explorer.truth_click.value = "move the tumor"
    explorer.figure.click(TRUTH, x=20, y=22)
    assert (explorer.row.value, explorer.col.value) == (22, 20) and explorer.state.truth[40, 6] == 1
    explorer.clear_button.click()
    assert np.array(explorer.figure.data[TRUTH]["z"])[40, 6] == 0
