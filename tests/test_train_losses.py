"""The losses against hand computation: cross-entropy and focal loss by a pixel loop (weights, ignored pixels),
soft Dice; per-pixel gradients against the closed form and finite differences."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from segtutor.train import SegmentationLoss, cross_entropy_loss, dice_loss, focal_loss, logit_gradients
from segtutor.train.losses import choose_loss


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
        SegmentationLoss("lovasz")
    logits, masks = random_batch()
    with pytest.raises(ValueError, match="one weight per class"):
        SegmentationLoss(class_weights=[1.0, 2.0])(logits, masks)


def test_binary_cross_entropy_matches_a_pixel_loop_with_ignore():
    logits, masks = random_batch(num_classes=1)  # (2, 1, 4, 5); masks 0/1 with three pixels 255
    total, count = 0.0, 0
    for n in range(2):
        for y in range(4):
            for x in range(5):
                if int(masks[n, y, x]) == 255:
                    continue  # not annotated: adds nothing
                p = 1 / (1 + math.exp(-float(logits[n, 0, y, x])))  # sigmoid: the probability of class 1
                total += -math.log(p) if int(masks[n, y, x]) == 1 else -math.log(1 - p)
                count += 1
    assert count == 2 * 4 * 5 - 3
    assert float(cross_entropy_loss(logits, masks)) == pytest.approx(total / count, rel=1e-5)


@pytest.mark.parametrize("name, num_classes, weights", [
    ("cross_entropy", 3, None), ("cross_entropy", 3, [1.0, 2.0, 0.5]), ("cross_entropy", 1, [1.0, 3.0]),
    ("dice", 3, None), ("cross_entropy+dice", 3, [1.0, 2.0, 0.5]),
])  # fmt: skip
def test_a_batch_without_a_labelled_pixel_has_loss_zero_and_zero_gradients(name, num_classes, weights):
    logits, masks = random_batch(num_classes=num_classes)
    logits.requires_grad_(True)
    unlabelled = torch.full_like(masks, 255)  # sparse annotations: nothing drawn on these tiles
    loss = SegmentationLoss(name, class_weights=weights)(logits, unlabelled)
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(logits.grad, torch.zeros_like(logits))  # not 0/0 = NaN
    # one labelled pixel: the mean over that one pixel, as torch computes it
    masks = unlabelled.clone()
    masks[1, 2, 3] = 1
    if name == "cross_entropy" and num_classes > 1:
        expected = F.cross_entropy(logits, masks, ignore_index=255)
        torch.testing.assert_close(SegmentationLoss(name, class_weights=weights)(logits, masks), expected)


def test_dice_loss_refuses_class_weights_it_would_ignore():
    with pytest.raises(ValueError, match="weigh the cross-entropy only, and loss='dice' has none: they would be "
                       "ignored.*loss='cross_entropy\\+dice'"):  # fmt: skip
        SegmentationLoss("dice", class_weights=[1.0, 5.0])
    SegmentationLoss("cross_entropy+dice", class_weights=[1.0, 5.0])  # the cross-entropy term uses them


# ---- focal loss and per-pixel gradients ----------------------------------------------------------------------
def test_focal_loss_matches_pixel_loop_with_weights_and_ignore():
    logits, masks = random_batch()
    weights = torch.tensor([0.5, 2.0, 1.0])
    gamma = 2.0
    total, weight_sum = 0.0, 0.0
    for n in range(2):
        for y in range(4):
            for x in range(5):
                true = int(masks[n, y, x])
                if true == 255:
                    continue
                scores = [float(s) for s in logits[n, :, y, x]]
                p_true = math.exp(scores[true]) / sum(math.exp(s) for s in scores)
                total += float(weights[true]) * -((1 - p_true) ** gamma) * math.log(p_true)
                weight_sum += float(weights[true])
    value = focal_loss(logits, masks, gamma=gamma, class_weights=weights)
    assert float(value) == pytest.approx(total / weight_sum, rel=1e-5)
    assert float(focal_loss(logits, masks)) < float(cross_entropy_loss(logits, masks))  # easy pixels turned down


def test_focal_loss_with_gamma_zero_is_cross_entropy_and_binary_equals_two_classes():
    logits, masks = random_batch()
    torch.testing.assert_close(focal_loss(logits, masks, gamma=0.0), cross_entropy_loss(logits, masks))
    binary, binary_masks = random_batch(num_classes=1)
    two_class = torch.cat([torch.zeros_like(binary), binary], dim=1)
    weights = torch.tensor([1.0, 3.0])
    torch.testing.assert_close(focal_loss(binary, binary_masks, class_weights=weights),
                               focal_loss(two_class, binary_masks, class_weights=weights))  # fmt: skip
    combined = SegmentationLoss("focal+dice", class_weights=[0.5, 2.0, 1.0])(logits, masks)
    torch.testing.assert_close(combined, focal_loss(logits, masks, class_weights=torch.tensor([0.5, 2.0, 1.0]))
                               + dice_loss(logits, masks))  # fmt: skip
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        focal_loss(logits, masks, gamma=-1.0)


def test_cross_entropy_gradient_per_pixel_is_probability_minus_truth_over_pixels():
    logits, masks = random_batch()
    gradient = logit_gradients(cross_entropy_loss, logits, masks)
    labelled = (masks != 255).unsqueeze(1)
    one_hot = F.one_hot(torch.where(masks != 255, masks, 0), 3).permute(0, 3, 1, 2)
    expected = torch.where(labelled, (logits.softmax(1) - one_hot) / labelled.sum(), 0.0)
    torch.testing.assert_close(gradient, expected)
    assert not logits.requires_grad  # the caller's logits are left alone


LOSS_FUNCTIONS = {  # in float64 (SegmentationLoss computes in float32, too coarse for finite differences)
    "dice": dice_loss,
    "focal": focal_loss,
    "weighted focal": lambda logits, masks: focal_loss(logits, masks, class_weights=torch.tensor([1.0, 4.0, 2.0])),
    "cross_entropy+dice": lambda logits, masks: cross_entropy_loss(logits, masks) + dice_loss(logits, masks),
}


@pytest.mark.parametrize("name", LOSS_FUNCTIONS)
def test_logit_gradients_match_finite_differences(name):
    logits, masks = random_batch(seed=3)
    logits = logits.double()
    loss = LOSS_FUNCTIONS[name]
    gradient = logit_gradients(loss, logits, masks)
    step = 1e-6
    for n, c, y, x in [(0, 0, 1, 1), (1, 2, 3, 4), (0, 1, 2, 0), (1, 0, 0, 2), (0, 2, 0, 0)]:  # (0, 2, 0, 0) ignored
        up, down = logits.clone(), logits.clone()
        up[n, c, y, x] += step
        down[n, c, y, x] -= step
        numeric = (float(loss(up, masks)) - float(loss(down, masks))) / (2 * step)
        assert float(gradient[n, c, y, x]) == pytest.approx(numeric, abs=1e-7)
    assert float(gradient[0, :, 0, :3].abs().max()) == 0.0  # ignored pixels get no push


def test_logit_gradients_needs_a_scalar_loss():
    logits, masks = random_batch()
    with pytest.raises(ValueError, match="must return a scalar"):
        logit_gradients(lambda scores, _: scores.sum(1), logits, masks)


# ---- the loss a run gets from its data --------------------------------------------------------------------------
@pytest.mark.parametrize("balance, expected", [
    ([0.6, 0.4], "cross_entropy"),  # the generated tiles
    ([0.74, 0.26], "cross_entropy"),  # just above half of a fair 50 %
    ([0.76, 0.24], "cross_entropy+dice"),  # just below it
    ([0.097, 0.077, 0.146, 0.681], "cross_entropy+dice"),  # the skin slide: corneum under half of 25 %
    ([0.8, 0.2, 0.0], "cross_entropy"),  # a class that never occurs is no rare class (half of 33 % is 16.7 %)
])  # fmt: skip
def test_choose_loss_adds_dice_where_a_class_has_under_half_a_fair_share(balance, expected):
    choice = choose_loss(balance)
    assert choice.loss == expected
    assert (choice.class_weights is None) == (expected == "cross_entropy")


def test_chosen_weights_are_one_over_the_root_of_each_share_and_a_pixel_weighs_one_on_average():
    shares = [0.097, 0.077, 0.146, 0.68]
    choice = choose_loss(shares, ("glass", "stratum corneum", "epidermis", "dermis"))
    assert choice.loss == "cross_entropy+dice"
    assert "'stratum corneum' has 7.7% of the labelled pixels" in choice.reason and "fair 25%" in choice.reason
    weights = torch.tensor(choice.class_weights)
    assert weights * torch.tensor(shares).sqrt() == pytest.approx(torch.full((4,), float(weights[0]) * 0.097**0.5),
                                                                   abs=1e-3)  # fmt: skip
    assert float((weights * torch.tensor(shares)).sum()) == pytest.approx(1.0, abs=1e-3)
    absent = choose_loss([0.85, 0.15, 0.0]).class_weights  # a class never seen weighs as much as the rarest seen
    assert absent[2] == absent[1] > absent[0]
