"""Calibration: reliability diagram and ECE against a brute-force loop; temperature scaling recovers a known T."""

from __future__ import annotations

import math

import pytest
import torch

from segtutor.data import IGNORE_INDEX
from segtutor.metrics import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    reliability_diagram,
)


def calibrated_logits(num_pixels: int, num_classes: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A perfectly calibrated model: labels drawn from the softmax of the logits themselves. (P, K), (P,)."""
    generator = torch.Generator().manual_seed(seed)
    logits = 2.0 * torch.randn(num_pixels, num_classes, generator=generator, dtype=torch.float64)
    labels = torch.multinomial(logits.softmax(1), 1, generator=generator)[:, 0]
    return logits, labels


def brute_force_bins(logits: torch.Tensor, masks: torch.Tensor, num_bins: int):
    """Per-pixel loop: bin b holds confidences in (b / B, (b + 1) / B] (and 0 in bin 0)."""
    probs = logits.double().softmax(1).movedim(1, -1).reshape(-1, logits.shape[1]).tolist()
    labels = masks.reshape(-1).tolist()
    count, confidence, correct = [0] * num_bins, [0.0] * num_bins, [0.0] * num_bins
    for p, label in zip(probs, labels):
        if label == IGNORE_INDEX:
            continue
        top = max(p)
        b = next(b for b in range(num_bins) if top <= (b + 1) / num_bins)
        count[b] += 1
        confidence[b] += top
        correct[b] += float(p.index(top) == label)
    total = sum(count)
    ece = sum(abs(correct[b] - confidence[b]) / total for b in range(num_bins) if count[b])
    return count, confidence, correct, ece


def test_reliability_diagram_and_ece_match_a_brute_force_loop():
    generator = torch.Generator().manual_seed(1)
    logits = 3.0 * torch.randn(3, 4, 6, 5, generator=generator)  # (N, K, H, W)
    masks = torch.randint(0, 4, (3, 6, 5), generator=generator)
    masks[0, :2] = IGNORE_INDEX
    diagram = reliability_diagram(logits, masks, num_bins=10)
    count, confidence, correct, ece = brute_force_bins(logits, masks, 10)
    assert diagram.count.tolist() == count and int(diagram.count.sum()) == 3 * 6 * 5 - 10
    for b in range(10):
        if count[b]:
            assert math.isclose(diagram.confidence[b], confidence[b] / count[b], rel_tol=1e-9)
            assert math.isclose(diagram.accuracy[b], correct[b] / count[b], rel_tol=1e-9)
        else:
            assert math.isnan(diagram.confidence[b]) and math.isnan(diagram.accuracy[b])
    assert math.isclose(diagram.ece, ece, rel_tol=1e-9)
    assert math.isclose(expected_calibration_error(logits, masks, num_bins=10), ece, rel_tol=1e-9)
    assert torch.allclose(diagram.bin_edges, torch.linspace(0, 1, 11, dtype=torch.float64))
    assert "10 bins" in repr(diagram)


def test_a_confidence_on_a_bin_edge_belongs_to_the_bin_below():
    """Bins are (lo, hi] as in Guo et al.: a confidence of exactly 0.5 falls in (0.25, 0.5] of 4 bins."""
    logits = torch.tensor([[0.0, 0.0], [0.0, 100.0]])  # confidences exactly 0.5 and 1.0
    diagram = reliability_diagram(logits, torch.tensor([0, 1]), num_bins=4)
    assert diagram.count.tolist() == [0, 1, 0, 1]
    assert diagram.accuracy[1] == 1.0 and diagram.confidence[1] == 0.5  # argmax of a tie is class 0


def test_ignored_pixels_do_not_count_whatever_their_logits():
    logits, masks = torch.randn(2, 2, 8, 8), torch.randint(0, 2, (2, 8, 8))
    masks[:, :3] = IGNORE_INDEX
    changed = logits.clone()
    changed[:, :, :3] = 50.0 * torch.randn(2, 2, 3, 8)
    assert expected_calibration_error(logits, masks) == expected_calibration_error(changed, masks)
    assert fit_temperature(logits, masks) == fit_temperature(changed, masks)


def test_a_calibrated_model_has_a_small_ece_and_an_overconfident_one_does_not():
    logits, labels = calibrated_logits(40_000)  # ECE over seeds 0-3: 0.005-0.006 calibrated, 0.115-0.12 at 2x
    assert expected_calibration_error(logits, labels) < 0.01
    assert expected_calibration_error(2.0 * logits, labels) > 0.05  # twice as sharp: overconfident
    diagram = reliability_diagram(2.0 * logits, labels)
    filled = diagram.count > 500
    assert (diagram.accuracy[filled] <= diagram.confidence[filled] + 0.01).all()  # never underconfident


def test_temperature_scaling_recovers_a_known_overconfidence():
    logits, labels = calibrated_logits(40_000, seed=2)  # fitted T over seeds 0-3: 1.99-2.03 and 0.498-0.507
    for true_temperature in (2.0, 0.5):
        temperature = fit_temperature(true_temperature * logits, labels)
        assert abs(temperature - true_temperature) < 0.03 * true_temperature
        rescaled = apply_temperature(true_temperature * logits, temperature)
        assert expected_calibration_error(rescaled, labels) < 0.01
        assert torch.equal(rescaled.argmax(1), logits.argmax(1))  # the predictions never change


def test_fitted_temperature_is_the_minimum_of_a_brute_force_nll_scan():
    generator = torch.Generator().manual_seed(3)
    logits = 4.0 * torch.randn(2, 3, 10, 10, generator=generator)
    masks = torch.randint(0, 3, (2, 10, 10), generator=generator)
    temperature = fit_temperature(logits, masks)
    flat, labels = logits.movedim(1, -1).reshape(-1, 3).double(), masks.reshape(-1)
    grid = torch.exp(torch.linspace(math.log(0.01), math.log(100.0), 801, dtype=torch.float64))
    nll = [torch.nn.functional.cross_entropy(flat / t, labels).item() for t in grid]
    best = float(grid[min(range(len(nll)), key=nll.__getitem__)])
    assert abs(math.log(temperature) - math.log(best)) < 0.012  # within the grid's step (0.0115 in log T)


def test_binary_logits_are_read_as_sigmoid():
    logits, masks = torch.randn(2, 1, 6, 6), torch.randint(0, 2, (2, 6, 6))
    two_channels = torch.cat([torch.zeros_like(logits), logits], dim=1)  # softmax([0, z])[1] = sigmoid(z)
    assert math.isclose(expected_calibration_error(logits, masks), expected_calibration_error(two_channels, masks))
    assert math.isclose(fit_temperature(logits, masks), fit_temperature(two_channels, masks))


def test_a_model_right_everywhere_gets_the_smallest_temperature():
    logits = torch.tensor([[3.0, -3.0], [-2.0, 2.0]])
    assert math.isclose(fit_temperature(logits, torch.tensor([0, 1]), bounds=(0.05, 20.0)), 0.05, rel_tol=1e-4)


def test_bad_input_is_refused_with_the_cause():
    logits, masks = torch.randn(2, 3, 4, 4), torch.randint(0, 3, (2, 4, 4))
    with pytest.raises(ValueError, match="without the class dimension"):
        expected_calibration_error(logits, masks[:, :3])
    with pytest.raises(TypeError, match="integer class indices"):
        fit_temperature(logits, masks.float())
    with pytest.raises(ValueError, match="every mask pixel equals ignore_index"):
        expected_calibration_error(logits, torch.full_like(masks, IGNORE_INDEX))
    with pytest.raises(ValueError, match="masks contain the class 5"):
        expected_calibration_error(logits, torch.full_like(masks, 5))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        apply_temperature(logits, 0.0)
    with pytest.raises(ValueError, match="num_bins"):
        reliability_diagram(logits, masks, num_bins=0)
    with pytest.raises(ValueError, match="bounds"):
        fit_temperature(logits, masks, bounds=(1.0, 0.5))
