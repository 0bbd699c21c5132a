"""Prediction: image inputs, probabilities vs the model, sliding window vs direct prediction, overlays."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import cpu_and_cuda
from PIL import Image
from torch import nn

from helpers import blobs

from segtutor.models import create_model, logits_to_preds, logits_to_probs
from segtutor.predict import (
    FALSE_NEGATIVE,
    FALSE_POSITIVE,
    OTHER_ERROR,
    TRUE_NEGATIVE,
    TRUE_POSITIVE,
    BrokenModelError,
    analyse_prediction,
    blend_window,
    error_map,
    image_to_tensor,
    overlay,
    predict,
    predict_proba,
    sliding_window_proba,
)


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def random_image(height=40, width=48, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def pointwise_net(num_classes: int = 3) -> nn.Module:
    """Each output pixel depends on its input pixel only: any tiling must give the direct prediction."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 1), nn.ReLU(), nn.Conv2d(8, num_classes, 1))


# ---- inputs --------------------------------------------------------------------------------------------------
def test_every_image_kind_gives_the_same_tensor():
    array = random_image()
    expected = torch.from_numpy(array).permute(2, 0, 1).float() / 255  # (3, H, W)
    rgba = np.concatenate([array, np.full(array.shape[:2] + (1,), 7, np.uint8)], axis=-1)
    for image in (
        array,
        Image.fromarray(array),
        Image.fromarray(rgba),  # alpha dropped
        rgba,
        expected,
        expected[None],
        torch.from_numpy(array).permute(2, 0, 1),  # uint8 tensor
        array / 255.0,  # float array in [0, 1]
    ):
        tensor = image_to_tensor(image)
        assert tensor.dtype == torch.float32 and tensor.shape == (3, 40, 48)
        torch.testing.assert_close(tensor, expected)


def test_grey_images_have_one_channel():
    grey = random_image()[:, :, 0]
    assert image_to_tensor(grey).shape == (1, 40, 48)
    assert image_to_tensor(Image.fromarray(grey)).shape == (1, 40, 48)


def test_bad_images_say_what_to_do():
    model = pointwise_net()
    with pytest.raises(ValueError, match="grey.*convert"):
        predict(model, random_image()[:, :, 0])
    with pytest.raises(ValueError, match=r"permute\(2, 0, 1\)"):
        image_to_tensor(torch.rand(40, 48, 3))
    with pytest.raises(ValueError, match="one image at a time"):
        image_to_tensor(torch.rand(2, 3, 40, 48))
    with pytest.raises(ValueError, match="divide 0-255 values by 255"):
        image_to_tensor(torch.rand(3, 40, 48) * 255)
    with pytest.raises(TypeError, match="uint8"):
        image_to_tensor(random_image().astype(np.uint16))
    with pytest.raises(TypeError, match="numpy array, a PIL image or a torch tensor"):
        image_to_tensor([[0, 1]])
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        image_to_tensor(np.zeros((4, 40, 48, 3), np.uint8))


# ---- probabilities and labels --------------------------------------------------------------------------------
@pytest.mark.parametrize("device", cpu_and_cuda())
def test_predict_proba_is_the_softmax_of_the_model_in_eval_mode(device):
    torch.manual_seed(0)
    model = create_model("unet", size="tiny").to(device)
    model.train()
    image = random_image(48, 40)
    probs = predict_proba(model, image)
    assert model.training  # mode restored
    assert probs.shape == (2, 48, 40) and probs.device.type == "cpu"
    model.eval()
    with torch.no_grad():
        expected = model(image_to_tensor(image)[None].to(device)).softmax(1)[0].cpu()
    torch.testing.assert_close(probs, expected)
    torch.testing.assert_close(probs.sum(0), torch.ones(48, 40))
    labels = predict(model, image)
    assert labels.dtype == torch.int64 and torch.equal(labels, expected.argmax(0))


def test_binary_model_gives_two_channels():
    logits = torch.randn(2, 1, 5, 6)
    probs = logits_to_probs(logits)
    torch.testing.assert_close(probs[:, 1], logits[:, 0].sigmoid())
    torch.testing.assert_close(probs.sum(1), torch.ones(2, 5, 6))
    assert torch.equal(logits_to_preds(logits), (logits[:, 0] > 0).long())
    assert torch.equal(logits_to_preds(logits), probs.argmax(1))


# ---- sliding window ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(48, 40), (64, 64)])
def test_sliding_window_equals_direct_prediction_when_one_tile_fits(size):
    torch.manual_seed(0)
    model = create_model("unet", size="tiny")
    image = random_image(*size)
    tiled = sliding_window_proba(model, image, tile_size=64, overlap=16)
    torch.testing.assert_close(tiled, predict_proba(model, image))


def test_sliding_window_blends_tiles_into_the_direct_prediction_of_a_pointwise_model():
    model = pointwise_net()
    image = random_image(150, 101)
    probs = sliding_window_proba(model, image, tile_size=48, overlap=12, batch_size=5)
    torch.testing.assert_close(probs, predict_proba(model, image))
    assert torch.equal(probs.argmax(0), predict(model, image))


def test_sliding_window_on_a_spatial_model_gives_probabilities():
    torch.manual_seed(0)
    model = create_model("unet", size="tiny")
    probs = sliding_window_proba(model, random_image(100, 70), tile_size=64, overlap=16)
    assert probs.shape == (2, 100, 70)
    torch.testing.assert_close(probs.sum(0), torch.ones(100, 70))


def test_blend_window_rises_linearly_over_the_overlap():
    window = blend_window(10, 3)
    assert window.tolist() == pytest.approx([0.25, 0.5, 0.75, 1, 1, 1, 1, 0.75, 0.5, 0.25])
    assert torch.equal(blend_window(6, 0), torch.ones(6))


def test_sliding_window_argument_errors():
    model = pointwise_net()
    with pytest.raises(ValueError, match="overlap must be in"):
        sliding_window_proba(model, random_image(), tile_size=64, overlap=64)
    with pytest.raises(ValueError, match="tile_size must be >= 32"):
        sliding_window_proba(model, random_image(), tile_size=16)


# ---- overlay -------------------------------------------------------------------------------------------------
def test_overlay_blends_each_pixel_with_its_class_colour():
    image = random_image(6, 5)
    labels = np.random.default_rng(1).integers(0, 2, (6, 5))
    labels[0, 0] = 255  # not annotated
    colors = [(0, 158, 115), (213, 94, 0)]
    picture = overlay(image, labels, colors, alpha=0.25)
    assert picture.dtype == np.uint8 and picture.shape == (6, 5, 3)
    for y in range(6):
        for x in range(5):
            if labels[y, x] == 255:
                expected = image[y, x]
            else:
                expected = [round(0.75 * image[y, x, c] + 0.25 * colors[labels[y, x]][c]) for c in range(3)]
            assert np.abs(picture[y, x].astype(int) - np.array(expected)).max() <= 1
    assert np.array_equal(overlay(image, labels, colors, alpha=0.0), image)
    full = overlay(image, torch.from_numpy(labels), colors, alpha=1.0)
    assert np.array_equal(full[1:, :], np.array(colors, np.uint8)[labels[1:, :]])


def test_overlay_errors():
    image = random_image(6, 5)
    with pytest.raises(ValueError, match="only 2 colors"):
        overlay(image, np.full((6, 5), 2), [(0, 0, 0), (1, 1, 1)])
    with pytest.raises(ValueError, match="must match"):
        overlay(image, np.zeros((5, 6), int), [(0, 0, 0)])
    with pytest.raises(ValueError, match="alpha"):
        overlay(image, np.zeros((6, 5), int), [(0, 0, 0)], alpha=2)


# ---- one prediction, looked at ---------------------------------------------------------------------------------
def test_error_map_matches_a_pixel_loop():
    mask, pred = blobs(2, 10), blobs(3, 10)
    mask[0, :3] = 255
    codes = error_map(mask, pred, 1)
    for (y, x), code in np.ndenumerate(codes):
        t, p = mask[y, x], pred[y, x]
        expected = 255 if t == 255 else TRUE_POSITIVE if t == p == 1 else FALSE_POSITIVE if p == 1 else \
            FALSE_NEGATIVE if t == 1 else TRUE_NEGATIVE if t == p else OTHER_ERROR  # fmt: skip
        assert code == expected, (y, x)


def test_analyse_prediction_scores_against_the_mask_and_tiles_large_images():
    model = pointwise_net(num_classes=2)
    image = random_image(40, 48)
    mask = torch.from_numpy(np.random.default_rng(1).integers(0, 2, (40, 48)))
    small = analyse_prediction(model, image, mask, ["a", "b"], tile_size=64)
    assert not small.tiled and small.image.shape == (40, 48, 3) and small.image.dtype == np.uint8
    torch.testing.assert_close(small.probs, predict_proba(model, image))
    assert torch.equal(small.preds, small.probs.argmax(0))
    expected = torch.zeros(2, 2, dtype=torch.int64)
    for t, p in zip(mask.flatten().tolist(), small.preds.flatten().tolist()):
        expected[t, p] += 1
    assert torch.equal(small.confusion, expected)
    assert small.scores.pixel_accuracy == pytest.approx(expected.diagonal().sum().item() / mask.numel())
    large = analyse_prediction(model, image, None, ["a", "b"], tile_size=32)
    assert large.tiled and large.mask is None and large.confusion is None and large.scores is None
    torch.testing.assert_close(large.probs, sliding_window_proba(model, image, tile_size=32, overlap=8))


def test_nan_images_and_models_that_predict_nan_are_refused_not_shown_as_class_0():
    model = create_model("unet", size="tiny")
    image = torch.rand(3, 40, 48)
    image[1, 5, 5] = float("nan")
    for run in (predict_proba, predict, sliding_window_proba):
        with pytest.raises(ValueError, match="the image holds 1 NaN or infinite value\\(s\\).*class 0"):
            run(model, image)
    broken = create_model("unet", size="tiny")
    with torch.no_grad():
        next(broken.parameters()).fill_(float("nan"))
    for run in (predict_proba, lambda m, i: sliding_window_proba(m, i, tile_size=32, overlap=8)):
        with pytest.raises(BrokenModelError, match="the model predicts NaN for this image: its weights are broken"):
            run(broken, random_image())
    with pytest.raises(ValueError, match="model predicts NaN"):  # no IoU of an all-class-0 "prediction"
        analyse_prediction(broken, random_image(), np.zeros((40, 48), np.int64), ["a", "b"], tile_size=32)


def test_predict_dataset_and_score_dataset_cover_every_sample_in_eval_mode():
    from segtutor.data import TissueDataset
    from segtutor.predict import predict_dataset, score_dataset

    data = TissueDataset(5, 32, seed=4)
    model = create_model("unet", size="tiny", seed=0)
    model.train()
    logits, masks = predict_dataset(model, data, batch_size=2)  # batches of 2, 2 and 1
    assert model.training  # left as it was
    assert logits.shape == (5, 2, 32, 32) and masks.dtype == torch.int64
    model.eval()
    with torch.no_grad():
        expected = model(torch.stack([data[i][0] for i in range(5)]))
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-5)
    assert torch.equal(masks, torch.stack([data[i][1] for i in range(5)]))
    # One confusion matrix over all pixels of all samples, counted by hand.
    preds, truth = expected.argmax(1).flatten(), masks.flatten()
    ious = []
    for c in range(2):
        tp = int(((preds == c) & (truth == c)).sum())
        ious.append(tp / int(((preds == c) | (truth == c)).sum()))
    scores = score_dataset(model, data)
    assert scores.iou == pytest.approx(ious) and scores.class_names == ["stroma", "tumor"]


def test_labels_of_is_the_argmax_over_the_classes_ties_to_the_first():
    from segtutor.predict import labels_of

    generator = torch.Generator().manual_seed(0)
    for num_classes in (2, 3, 5):
        probs = torch.rand(num_classes, 7, 9, generator=generator).softmax(0)
        probs[:, 0, 0] = 1 / num_classes  # a tie: the first class wins, as with argmax
        labels = labels_of(probs)
        assert labels.shape == (7, 9) and labels.dtype == torch.int64 and labels[0, 0] == 0
        brute = torch.tensor([[max(range(num_classes), key=lambda k: (probs[k, r, c], -k)) for c in range(9)]
                              for r in range(7)])  # fmt: skip
        assert torch.equal(labels, brute) and torch.equal(labels, probs.argmax(0))
