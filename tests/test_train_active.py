"""Uncertainty-guided annotation: uncertainty maps against pixel loops, patches and the simulated annotator, the
proposals against a brute-force ranking, and the rounds built on fit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import tiny_net

from segtutor.data import IGNORE_INDEX, TissueDataset, class_balance
from segtutor.metrics import ConfusionMatrix
from segtutor.predict import predict, predict_proba
from segtutor.train import (
    ActiveLearner,
    AnnotationPool,
    Patch,
    TrainConfig,
    active_learning,
    compare_strategies,
    entropy_map,
    margin_map,
    propose_patches,
)
from segtutor.train.losses import choose_loss

pytestmark = pytest.mark.usefixtures("one_thread")


def random_probs(num_classes=3, height=4, width=5, seed=0):
    return torch.randn(num_classes, height, width, generator=torch.Generator().manual_seed(seed)).softmax(0)


def test_entropy_and_margin_match_pixel_loops():
    probs = random_probs()
    entropy, margin = entropy_map(probs), margin_map(probs)
    for y in range(4):
        for x in range(5):
            p = [float(v) for v in probs[:, y, x]]
            assert float(entropy[y, x]) == pytest.approx(-sum(q * math.log(q) for q in p) / math.log(3), rel=1e-5)
            first, second = sorted(p, reverse=True)[:2]
            assert float(margin[y, x]) == pytest.approx(1 - (first - second), rel=1e-5)
    certain = torch.tensor([[[1.0]], [[0.0]]])  # (2, 1, 1): sure of class 0
    uniform = torch.full((2, 1, 1), 0.5)
    assert float(entropy_map(certain)) == 0.0 and float(entropy_map(uniform)) == pytest.approx(1.0)
    assert float(margin_map(certain)) == 0.0 and float(margin_map(uniform)) == 1.0
    with pytest.raises(ValueError, match="K >= 2"):
        entropy_map(torch.ones(1, 2, 2))


@pytest.fixture(scope="module")
def tiles():
    return TissueDataset(4, 32, seed=0), TissueDataset(2, 32, seed=1)


def test_the_pool_reveals_the_truth_only_where_annotated(tiles):
    data, _ = tiles
    pool = AnnotationPool(data, patch_size=16)
    assert pool.labelled.shape == (4, 2, 2) and pool.labelled_pixels == 0
    with pytest.raises(ValueError, match="nothing is labelled yet"):
        pool.training_data()
    pool.label_tiles([2])
    pool.reveal([Patch(tile=0, row=16, col=0, size=16)])
    assert pool.labelled_pixels == 1024 + 256
    labels = pool.label_mask()
    truth = torch.stack([data[i][1] for i in range(4)])
    assert torch.equal(labels[2], truth[2])
    assert torch.equal(labels[0, 16:, :16], truth[0, 16:, :16])
    assert (labels[0, :16] == IGNORE_INDEX).all() and (labels[0, 16:, 16:] == IGNORE_INDEX).all()
    assert (labels[[1, 3]] == IGNORE_INDEX).all()
    training = pool.training_data()
    assert len(training) == 2 and torch.equal(training[0][1], labels[0]) and torch.equal(training[1][0], data[2][0])
    assert len(pool.unlabelled_patches()) == 16 - 4 - 1
    painted = torch.full((32, 32), IGNORE_INDEX)
    painted[3, 30] = 1  # one stroke in the top-right patch of tile 1
    pool.paint(1, painted)
    assert bool(pool.labelled[1, 0, 1]) and int(pool.labelled[1].sum()) == 1 and pool.masks[1, 3, 30] == 1
    with pytest.raises(ValueError, match="patch_size must divide"):
        AnnotationPool(data, patch_size=12)


def test_uncertainty_proposals_are_the_most_uncertain_unlabelled_patches(tiles):
    data, _ = tiles
    model = tiny_net()
    pool = AnnotationPool(data, patch_size=8)
    pool.reveal([Patch(0, 0, 0, 8), Patch(3, 24, 8, 8)])
    proposals = propose_patches(model, pool, 5, strategy="uncertainty", measure="margin")
    # brute force: every unlabelled patch's mean margin, ranked
    ranked = []
    for tile in range(4):
        margin = margin_map(predict_proba(model, data[tile][0]))
        for row in range(0, 32, 8):
            for col in range(0, 32, 8):
                if not pool.labelled[tile, row // 8, col // 8]:
                    ranked.append((float(margin[row : row + 8, col : col + 8].mean()), tile, row, col))
    ranked.sort(reverse=True)
    assert [(p.tile, p.row, p.col) for p in proposals] == [(t, r, c) for _, t, r, c in ranked[:5]]
    assert [p.score for p in proposals] == pytest.approx([score for score, *_ in ranked[:5]], rel=1e-5)
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    random_a = propose_patches(model, pool, 6, strategy="random", rng=rng_a)
    assert random_a == propose_patches(model, pool, 6, strategy="random", rng=rng_b)  # seeded
    assert not any(pool.labelled[p.tile, p.row // 8, p.col // 8] for p in random_a) and len(set(random_a)) == 6
    with pytest.raises(ValueError, match="strategy must be one of uncertainty, random"):
        propose_patches(model, pool, 1, strategy="greedy")


def test_rounds_add_labels_train_on_and_score_the_model_they_leave(tiles):
    data, val = tiles
    model = tiny_net()
    pool = AnnotationPool(data, patch_size=16)
    seen = []
    rounds = active_learning(model, pool, val, TrainConfig(lr=1e-2, max_iters=4, batch_size=4), rounds=2,
                             patches_per_round=3, first_tiles=[1], on_round=seen.append)  # fmt: skip
    assert [r.round for r in rounds] == [0, 1, 2] and seen == rounds
    assert [r.labelled_pixels for r in rounds] == [1024, 1024 + 3 * 256, 1024 + 6 * 256]
    assert rounds[0].patches == [] and all(len(r.patches) == 3 for r in rounds[1:])
    assert all(not math.isnan(p.score) for p in rounds[1].patches)  # chosen by uncertainty
    scores = ConfusionMatrix(2)
    for image, mask in val:
        scores.update(mask[None], predict(model, image)[None])
    assert rounds[-1].iou == pytest.approx(scores.compute().iou, nan_ok=True)  # the model it leaves
    with pytest.raises(ValueError, match="max_iters"):
        ActiveLearner(model, pool, val, TrainConfig(max_seconds=1))


def test_every_round_trains_the_loss_round_zero_chose():
    masks = torch.zeros(2, 32, 32, dtype=torch.long)
    masks[0, :12] = 1  # tile 0: 37.5 % tumor; tile 1: none
    data = torch.utils.data.TensorDataset(torch.rand(2, 3, 32, 32), masks)
    data.class_names = ("stroma", "tumor")
    pool = AnnotationPool(data, patch_size=16)
    pool.label_tiles([0])
    learner = ActiveLearner(tiny_net(), pool, data, TrainConfig(lr=1e-2, max_iters=2, batch_size=1))
    learner.train_round()
    assert learner.config.loss == "cross_entropy"  # tile 0 alone: tumor has more than half of a fair 50 %
    learner.train_round([Patch(1, row, col, 16) for row in (0, 16) for col in (0, 16)])  # all of tile 1: stroma
    assert choose_loss(class_balance(pool.training_data())).loss == "cross_entropy+dice"  # 18.75 % tumor now
    assert learner.config.loss == "cross_entropy"  # but round 0's choice is kept


def test_compare_strategies_starts_both_strategies_from_the_same_round_zero(tiles):
    data, val = tiles
    results = compare_strategies(lambda seed: tiny_net(seed=seed), data, val, TrainConfig(max_iters=3, batch_size=2),
                                 seeds=[0, 1], rounds=1, patches_per_round=2)  # fmt: skip
    assert set(results) == {"uncertainty", "random"} and all(len(runs) == 2 for runs in results.values())
    for seed in range(2):
        uncertain, random = results["uncertainty"][seed], results["random"][seed]
        assert uncertain[0].iou == pytest.approx(random[0].iou, nan_ok=True)  # the same start
        assert uncertain[1].labelled_pixels == random[1].labelled_pixels == 2 * 1024 + 2 * 256
        assert math.isnan(random[1].patches[0].score) and not math.isnan(uncertain[1].patches[0].score)
