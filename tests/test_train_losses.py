"""The losses against hand computation: cross-entropy by a pixel loop (weights, ignored pixels), soft Dice."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from segtutor.train import SegmentationLoss, cross_entropy_loss, dice_loss


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


# ---- losses --------------------------------------------------------------------------------------------------
def random_batch(num_classes=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, num_classes, 4, 5, generator=generator)
    masks = torch.randint(0, max(num_classes, 2), (2, 4, 5), generator=generator)
    masks[0, 0, :3] = 255
    return logits, masks


def test_cross_entropy_matches_pixel_loop_with_weights_and_ignore():
    logits, masks = random_batch()
    weights = torch.tensor([0.5, 2.0, 1.0])
    total, weight_sum = 0.0, 0.0
    for n in range(2):
        for y in range(4):
            for x in range(5):
                true = int(masks[n, y, x])
                if true == 255:
                    continue
                scores = logits[n, :, y, x]
                nll = -(scores[true] - torch.log(torch.exp(scores).sum()))
                total += weights[true] * nll
                weight_sum += weights[true]
    expected = total / weight_sum
    torch.testing.assert_close(cross_entropy_loss(logits, masks, class_weights=weights), expected)


def test_dice_loss_matches_hand_computation():
    logits, masks = random_batch()
    probs = logits.softmax(1)
    dices = []
    for c in range(3):
        overlap = p_sum = m_sum = 0.0
        for n in range(2):
            for y in range(4):
                for x in range(5):
                    true = int(masks[n, y, x])
                    if true == 255:
                        continue
                    p, m = float(probs[n, c, y, x]), float(true == c)
                    overlap, p_sum, m_sum = overlap + p * m, p_sum + p, m_sum + m
        dices.append((2 * overlap + 1) / (p_sum + m_sum + 1))
    expected = 1 - sum(dices) / 3
    assert float(dice_loss(logits, masks)) == pytest.approx(expected, rel=1e-5)


def test_dice_loss_is_near_zero_for_a_perfect_prediction():
    masks = torch.randint(0, 3, (2, 8, 8), generator=torch.Generator().manual_seed(1))
    logits = 50.0 * F.one_hot(masks, 3).permute(0, 3, 1, 2).float()
    assert float(dice_loss(logits, masks)) == pytest.approx(0.0, abs=1e-6)


def test_binary_model_equals_two_class_model_with_logits_zero_and_l():
    logits, masks = random_batch(num_classes=1)
    two_class = torch.cat([torch.zeros_like(logits), logits], dim=1)  # softmax([0, l]) = [1 - sigmoid, sigmoid]
    weights = torch.tensor([1.0, 3.0])
    torch.testing.assert_close(
        cross_entropy_loss(logits, masks, class_weights=weights),
        cross_entropy_loss(two_class, masks, class_weights=weights),
    )
    torch.testing.assert_close(dice_loss(logits, masks), dice_loss(two_class, masks))


def test_combined_loss_is_the_sum():
    logits, masks = random_batch()
    combined = SegmentationLoss("cross_entropy+dice")(logits, masks)
    torch.testing.assert_close(combined, cross_entropy_loss(logits, masks) + dice_loss(logits, masks))


def test_loss_errors():
    with pytest.raises(ValueError, match="choose one of"):
        SegmentationLoss("focal")
    logits, masks = random_batch()
    with pytest.raises(ValueError, match="one weight per class"):
        SegmentationLoss(class_weights=[1.0, 2.0])(logits, masks)


