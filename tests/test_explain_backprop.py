"""Backpropagation and the optimizers made visible: one pixel's gradients by the chain rule, SGD and Adam by rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from segtutor.explain import OptimizerRace, WatchedWeight, pixel_gradients


def two_layer(w1: float, w2: tuple[float, float]) -> nn.Sequential:
    """h = relu(w1 · x), logits = (w2[0] · h, w2[1] · h): 1 x 1 convolutions, one weight each, no bias."""
    model = nn.Sequential(nn.Conv2d(1, 1, 1, bias=False), nn.ReLU(), nn.Conv2d(1, 2, 1, bias=False))
    with torch.no_grad():
        model[0].weight.fill_(w1)
        model[2].weight.copy_(torch.tensor(w2).view(2, 1, 1, 1))
    return model


def test_one_pixels_gradients_follow_the_chain_rule_by_hand():
    x, w1, w2 = 1.5, 0.8, (0.3, -0.5)
    image = torch.zeros(1, 3, 4)
    image[0, 1, 2] = x
    mask = torch.ones(3, 4, dtype=torch.long)  # the pixel's true class is 1
    result = pixel_gradients(two_layer(w1, w2), image, mask, (1, 2))
    h = max(0.0, w1 * x)
    logits = np.array([w2[0] * h, w2[1] * h])
    p = np.exp(logits) / np.exp(logits).sum()
    dz = p - np.array([0.0, 1.0])  # ∂loss/∂logits
    assert result.loss == pytest.approx(-math.log(p[1]))
    np.testing.assert_allclose(result.logit_gradient, dz, atol=1e-12)
    by_hand = {"0": abs(float(dz @ np.array(w2)) * x), "2": float(np.sqrt(np.mean((dz * h) ** 2)))}
    assert {layer.name: layer.rms for layer in result.layers} == pytest.approx(by_hand)
    only = np.zeros((3, 4))
    only[1, 2] = abs(float(dz @ np.array(w2)) * w1)  # ∂loss/∂x: 1 x 1 kernels reach the pixel itself only
    np.testing.assert_allclose(result.input_gradient, only, atol=1e-12)
    assert result.reach == (1, 1)


def test_a_closed_relu_passes_nothing_back():
    image, mask = torch.full((1, 3, 4), 1.5), torch.ones(3, 4, dtype=torch.long)
    result = pixel_gradients(two_layer(-0.8, (0.3, -0.5)), image, mask, (0, 0))
    assert result.layers[0].rms == 0 and result.layers[0].share_reached == 0 and result.reach == (0, 0)


def test_the_gradient_reaches_exactly_the_receptive_field_and_leaves_the_model_alone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 2, 3, padding=1))  # field 5 x 5
    before = {name: value.clone() for name, value in model.state_dict().items()}
    result = pixel_gradients(model, torch.rand(3, 16, 16), torch.zeros(16, 16, dtype=torch.long), (8, 5))
    rows, cols = np.nonzero(result.input_gradient)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (6, 10, 3, 7) and result.reach == (5, 5)
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())
    assert all(parameter.grad is None for parameter in model.parameters())


def test_a_pixel_outside_the_image_is_named():
    with pytest.raises(ValueError, match="outside the 4 x 4 image"):
        pixel_gradients(two_layer(1.0, (1.0, 1.0)), torch.zeros(1, 4, 4), torch.zeros(4, 4, dtype=torch.long), (4, 0))


def small_batch():
    torch.manual_seed(1)
    images, masks = torch.rand(4, 1, 6, 6), torch.randint(0, 2, (4, 6, 6))
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 2, 1))
    return model, images, masks


def test_sgd_steps_by_minus_lr_times_the_gradient_and_adam_by_its_algorithm():
    model, images, masks = small_batch()
    race = OptimizerRace(model, images, masks, sgd_lr=0.1, adam_lr=0.01)
    race.step(4)
    sgd, adam = race.history["SGD"], race.history["Adam"]
    assert sgd[0].loss == adam[0].loss  # the same start, the same batch
    for record in sgd:
        np.testing.assert_allclose(record.update, -0.1 * record.grad, rtol=1e-9, atol=1e-15)
    m = v = np.zeros(len(race.watch))
    for t, record in enumerate(adam, start=1):  # Kingma & Ba, Algorithm 1, from the recorded gradients
        m, v = 0.9 * m + 0.1 * record.grad, 0.999 * v + 0.001 * record.grad**2
        np.testing.assert_allclose(record.m, m, rtol=1e-5, atol=1e-12)
        np.testing.assert_allclose(record.v, v, rtol=1e-5, atol=1e-15)
        expected = -0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        np.testing.assert_allclose(record.update, expected, rtol=1e-6, atol=1e-12)
    assert np.abs(race.effective_steps("Adam")[0]) == pytest.approx(np.ones(len(race.watch)), abs=1e-3)  # step 1: ±lr


def test_adam_moves_a_weight_with_a_tiny_gradient_as_far_as_the_others():
    model, images, masks = small_batch()
    race = OptimizerRace(model, images, masks)
    race.step(1)
    grads = np.abs(race.history["SGD"][0].grad)
    tiny, large = int(np.argmin(np.where(grads > 0, grads, np.inf))), int(np.argmax(grads))  # a gradient of 0 stays
    assert grads[tiny] < 0.5 * grads[large]
    sgd, adam = np.abs(race.effective_steps("SGD")[0]), np.abs(race.effective_steps("Adam")[0])
    assert sgd[tiny] < 0.5 * sgd[large] and adam[tiny] == pytest.approx(adam[large], rel=1e-3)


def test_watched_weights_can_be_chosen_and_bad_batches_are_refused():
    model, images, masks = small_batch()
    race = OptimizerRace(model, images, masks, watch=[WatchedWeight("2.bias", 1)])
    race.step(2)
    assert race.effective_steps("SGD").shape == (2, 1) and race.watch[0].label == "2.bias[1]"
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        OptimizerRace(model, images[0], masks)
    with pytest.raises(ValueError, match="> 0"):
        OptimizerRace(model, images, masks, sgd_lr=0)
