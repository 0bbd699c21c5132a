"""Metrics against a brute-force pixel loop: confusion matrix, IoU, Dice, pixel accuracy, ignore index."""

from __future__ import annotations

import json
import math

import pytest
import torch

from segtutor.metrics import (
    ConfusionMatrix,
    SegmentationScores,
    confusion_matrix,
    dice_per_class,
    iou_per_class,
    mean_iou,
    pixel_accuracy,
)


def random_labels(shape, num_classes, seed, ignore_share=0.0):
    generator = torch.Generator().manual_seed(seed)
    masks = torch.randint(0, num_classes, shape, generator=generator)
    preds = torch.randint(0, num_classes, shape, generator=generator)
    ignored = torch.rand(shape, generator=generator) < ignore_share
    return masks.masked_fill(ignored, 255), preds


def brute_force_matrix(masks, preds, num_classes, ignore_index=255):
    matrix = [[0] * num_classes for _ in range(num_classes)]
    for true, pred in zip(masks.flatten().tolist(), preds.flatten().tolist()):
        if true != ignore_index:
            matrix[true][pred] += 1
    return torch.tensor(matrix)


def brute_force_scores(masks, preds, num_classes, ignore_index=255):
    """IoU and Dice per class straight from pixel sets, without a confusion matrix."""
    pairs = [(t, p) for t, p in zip(masks.flatten().tolist(), preds.flatten().tolist()) if t != ignore_index]
    iou, dice = [], []
    for c in range(num_classes):
        true_pixels = {i for i, (t, _) in enumerate(pairs) if t == c}
        pred_pixels = {i for i, (_, p) in enumerate(pairs) if p == c}
        union = true_pixels | pred_pixels
        both = true_pixels & pred_pixels
        iou.append(len(both) / len(union) if union else math.nan)
        sizes = len(true_pixels) + len(pred_pixels)
        dice.append(2 * len(both) / sizes if sizes else math.nan)
    accuracy = sum(t == p for t, p in pairs) / len(pairs)
    return iou, dice, accuracy


@pytest.mark.parametrize("num_classes, ignore_share, seed", [(2, 0.0, 0), (3, 0.2, 1), (5, 0.1, 2)])
def test_confusion_matrix_matches_pixel_loop(num_classes, ignore_share, seed):
    masks, preds = random_labels((3, 9, 11), num_classes, seed, ignore_share)
    matrix = confusion_matrix(masks, preds, num_classes)
    assert matrix.dtype == torch.int64 and matrix.shape == (num_classes, num_classes)
    assert torch.equal(matrix, brute_force_matrix(masks, preds, num_classes))


@pytest.mark.parametrize("num_classes, ignore_share, seed", [(2, 0.0, 3), (3, 0.3, 4), (4, 0.05, 5)])
def test_scores_match_pixel_sets(num_classes, ignore_share, seed):
    masks, preds = random_labels((2, 13, 7), num_classes, seed, ignore_share)
    matrix = confusion_matrix(masks, preds, num_classes)
    iou, dice, accuracy = brute_force_scores(masks, preds, num_classes)
    torch.testing.assert_close(iou_per_class(matrix), torch.tensor(iou, dtype=torch.float64))
    torch.testing.assert_close(dice_per_class(matrix), torch.tensor(dice, dtype=torch.float64))
    assert pixel_accuracy(matrix) == pytest.approx(accuracy)
    assert mean_iou(matrix) == pytest.approx(sum(iou) / num_classes)


def test_class_absent_everywhere_is_nan_and_left_out_of_the_mean():
    masks = torch.tensor([[0, 0, 1, 1]])
    preds = torch.tensor([[0, 1, 1, 1]])
    iou = iou_per_class(confusion_matrix(masks, preds, 3))
    assert iou[0] == pytest.approx(1 / 2) and iou[1] == pytest.approx(2 / 3)
    assert math.isnan(iou[2]) and math.isnan(dice_per_class(confusion_matrix(masks, preds, 3))[2])
    assert mean_iou(confusion_matrix(masks, preds, 3)) == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_class_predicted_but_absent_from_masks_scores_zero():
    masks = torch.tensor([[0, 0, 0, 0]])
    preds = torch.tensor([[0, 0, 0, 1]])
    iou = iou_per_class(confusion_matrix(masks, preds, 2))
    assert iou.tolist() == [pytest.approx(3 / 4), 0.0]


def test_ignore_index_none_counts_every_pixel():
    masks = torch.tensor([[0, 1, 2]])
    matrix = confusion_matrix(masks, torch.tensor([[0, 1, 2]]), 3, ignore_index=None)
    assert torch.equal(matrix, torch.eye(3, dtype=torch.int64))


def test_accumulating_batches_equals_one_big_batch():
    masks, preds = random_labels((6, 8, 8), 3, seed=6, ignore_share=0.1)
    scores = ConfusionMatrix(3)
    for start in range(0, 6, 2):
        scores.update(masks[start : start + 2], preds[start : start + 2])
    assert torch.equal(scores.matrix, confusion_matrix(masks, preds, 3))
    scores.reset()
    assert scores.matrix.sum() == 0


def test_update_accepts_logits():
    generator = torch.Generator().manual_seed(7)
    logits = torch.randn(2, 3, 5, 5, generator=generator)
    masks = torch.randint(0, 3, (2, 5, 5), generator=generator)
    from_logits, from_preds = ConfusionMatrix(3), ConfusionMatrix(3)
    from_logits.update(masks, logits)
    from_preds.update(masks, logits.argmax(1))
    assert torch.equal(from_logits.matrix, from_preds.matrix)


def test_update_reads_one_channel_logits_as_binary():
    logits = torch.tensor([[[[-2.0, 0.5], [3.0, -0.1]]]])  # (1, 1, 2, 2)
    masks = torch.tensor([[[0, 1], [1, 1]]])
    scores = ConfusionMatrix(2)
    scores.update(masks, logits)
    # preds = [[0, 1], [1, 0]]: one true 0, two true 1, one 1 predicted as 0
    assert scores.matrix.tolist() == [[1, 0], [1, 2]]


def test_high_pixel_accuracy_can_hide_a_poor_tumor_iou():
    masks = torch.zeros(1, 20, 20, dtype=torch.int64)
    masks[0, :1, :] = 1  # tumor: one row of 20, 5 % of the pixels
    preds = torch.zeros_like(masks)  # "stroma everywhere"
    scores = ConfusionMatrix(2, class_names=["stroma", "tumor"])
    scores.update(masks, preds)
    result = scores.compute()
    assert result.pixel_accuracy == pytest.approx(0.95)
    assert result.iou == [pytest.approx(0.95), 0.0]
    assert result.class_pixels == [380, 20]
    assert "tumor" in repr(result) and "95.0%" in repr(result)


def test_scores_are_json_ready():
    masks, preds = random_labels((1, 6, 6), 3, seed=8)
    result = SegmentationScores.from_matrix(confusion_matrix(masks, preds, 3), ["a", "b", "c"])
    values = json.loads(json.dumps(result.to_dict()))
    assert values["class_names"] == ["a", "b", "c"] and len(values["iou"]) == 3


def test_wrong_inputs_say_what_to_fix():
    with pytest.raises(ValueError, match="same shape"):
        confusion_matrix(torch.zeros(2, 4, 4, dtype=torch.int64), torch.zeros(2, 3, 4, 4), 3)
    with pytest.raises(TypeError, match="integer"):
        confusion_matrix(torch.zeros(4, dtype=torch.int64), torch.zeros(4), 3)
    with pytest.raises(ValueError, match=r"num_classes=2.*\{0, 255\}"):
        confusion_matrix(torch.tensor([0, 1, 2]), torch.tensor([0, 1, 1]), 2)
    with pytest.raises(ValueError, match="preds contain the class 7"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 7]), 2)
    with pytest.raises(ValueError, match="class_names"):
        SegmentationScores.from_matrix(torch.eye(2, dtype=torch.int64), ["only one"])
