"""SlideDataset: crops of a slide at a magnification, each with the mask Slide.read_mask gives for the same window,
placed over annotated tissue inside a region, reproducible, checked by preflight_slide on construction."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from segtutor.data import IGNORE_INDEX, Slide, SlideDataset, write_sample_slide

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> tuple[Path, Path]:
    return write_sample_slide(tmp_path_factory.mktemp("sample"), size=512, seed=3)


@pytest.mark.parametrize("magnification", [10, 5, 4])  # level 0, level 1 as stored, resampled between levels
def test_crops_are_read_regions_with_their_masks(sample, magnification):
    slide_path, geojson_path = sample
    data = SlideDataset(slide_path, geojson_path, magnification=magnification, tile_size=48, num_tiles=6, seed=1)
    slide = Slide(slide_path)
    assert data.class_names == ("Stroma", "Tumor") and len(data) == 6
    assert data.microns_per_pixel == pytest.approx(10 / magnification)
    for index in range(len(data)):
        origin = tuple(int(v) for v in data.origins[index])
        image, mask = data[index]  # (3, 48, 48) float32, (48, 48) int64
        assert image.shape == (3, 48, 48) and image.dtype == torch.float32 and mask.dtype == torch.int64
        expected_image = slide.read_region(origin, (48, 48), magnification=magnification)
        expected_mask = slide.read_mask(geojson_path, origin, (48, 48), magnification=magnification).mask
        assert torch.equal(image, torch.from_numpy(expected_image).permute(2, 0, 1).float() / 255)
        assert np.array_equal(mask.numpy(), expected_mask)
        assert (expected_mask != IGNORE_INDEX).any(), f"crop {index} holds no annotated pixel"


def test_crops_stay_inside_the_region_and_are_reproducible(sample):
    slide_path, geojson_path = sample
    region = (0, 0, 256, 512)  # the left half
    data = SlideDataset(slide_path, geojson_path, magnification=5, tile_size=32, num_tiles=40, region=region)
    span = 32 * 2  # level-0 pixels per crop at 5x on a 10x scan
    x, y = data.origins[:, 0], data.origins[:, 1]
    assert (x >= 0).all() and (y >= 0).all() and (x + span <= 256).all() and (y + span <= 512).all()
    again = SlideDataset(slide_path, geojson_path, magnification=5, tile_size=32, num_tiles=40, region=region)
    other = SlideDataset(slide_path, geojson_path, magnification=5, tile_size=32, num_tiles=40, region=region, seed=1)
    assert np.array_equal(data.origins, again.origins) and not np.array_equal(data.origins, other.origins)
    assert len({tuple(o) for o in data.origins.tolist()}) > 30  # spread out, not one place repeated


def test_crops_of_a_fractional_size_in_level_0_pixels_stay_inside_the_slide(sample):
    slide_path, geojson_path = sample
    slide = Slide(slide_path, mpp=0.3)  # a scan at 0.3 µm/px: a 40-pixel crop at 10× is 133.3 level-0 pixels
    data = SlideDataset(slide, geojson_path, magnification=10, tile_size=40, num_tiles=60, seed=2)
    assert data.scale == pytest.approx(1 / 0.3)
    right, bottom = data.origins[:, 0] + 40 * data.scale, data.origins[:, 1] + 40 * data.scale
    assert (right <= 512).all() and (bottom <= 512).all() and right.max() > 500  # some crops reach the border
    for index in range(len(data)):
        assert data[index][0].shape == (3, 40, 40)


def test_crops_cover_the_annotated_tissue_of_both_classes(sample):
    slide_path, geojson_path = sample
    data = SlideDataset(slide_path, geojson_path, magnification=10, tile_size=64, num_tiles=48)
    masks = torch.stack([data[i][1] for i in range(len(data))])  # (48, 64, 64)
    annotated = masks != IGNORE_INDEX
    assert annotated.float().mean() > 0.6  # crops sit on tissue, not on glass
    assert (masks == 1).any(dim=(1, 2)).sum() >= 5  # tumor nests are found


def test_colours_come_from_the_annotations_and_augmentation_moves_image_and_mask_together(sample):
    slide_path, geojson_path = sample
    plain = SlideDataset(slide_path, geojson_path, magnification=10, tile_size=48, num_tiles=4)
    augmented = SlideDataset(slide_path, geojson_path, magnification=10, tile_size=48, num_tiles=4, augment=True)
    assert plain.class_colors == ((150, 200, 150), (200, 0, 0))  # QuPath's Stroma and Tumor colours in the file
    for index in range(4):
        (_, mask), (_, moved) = plain[index], augmented[index]
        symmetries = [torch.rot90(m, k) for m in (mask, mask.flip(-1)) for k in range(4)]
        assert any(torch.equal(moved, s) for s in symmetries)


def test_a_slide_object_with_its_own_pixel_size_and_mpp(sample):
    slide_path, geojson_path = sample
    data = SlideDataset(Slide(slide_path, mpp=0.5), geojson_path, mpp=1.0, tile_size=32, num_tiles=2)
    assert data.scale == 2.0 and data.microns_per_pixel == 1.0  # a "20x" slide read at 1 µm/px
    assert "1 µm/px" in repr(data) and "32 x 32 µm" in repr(data)


def test_problems_are_reported_with_their_fix(tmp_path, sample):
    slide_path, geojson_path = sample
    with pytest.raises(ValueError, match="region .* holds no annotated tissue"):
        SlideDataset(slide_path, geojson_path, magnification=10, tile_size=32, region=(0, 0, 40, 40))
    with pytest.raises(ValueError, match="smaller than one crop: 64 pixels at 2 µm/px are 128 level-0"):
        SlideDataset(slide_path, geojson_path, magnification=5, tile_size=64, region=(0, 0, 100, 512))
    with pytest.raises(ValueError, match="reaches outside the slide"):
        SlideDataset(slide_path, geojson_path, magnification=10, region=(400, 0, 200, 200))
    renamed = tmp_path / "renamed.geojson"
    renamed.write_text(geojson_path.read_text().replace('"Tumor"', '"tumour"'))
    with pytest.raises(ValueError, match=r"(?s)problem\(s\) to fix.*\['tumour'\] are annotated but not in class_names"):
        SlideDataset(slide_path, renamed, magnification=10, class_names=("Stroma", "Tumor"))
    with pytest.raises(ValueError, match="give the resolution to train at"):
        SlideDataset(slide_path, geojson_path)
    features = json.loads(geojson_path.read_text())["features"]
    for feature in features:
        feature["properties"].pop("classification")
    unnamed = tmp_path / "unnamed.geojson"
    unnamed.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    with pytest.raises(ValueError, match="have no class"):
        SlideDataset(slide_path, unnamed, magnification=10)
