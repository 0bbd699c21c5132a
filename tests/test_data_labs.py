"""Labs: lab A is the generator's own look, every Lab field does what it says, datasets take labs, extra
augmentation steps and a stain normaliser; scale augmentation against a brute-force bilinear resampler."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy import ndimage

from segtutor.data import (
    IGNORE_INDEX,
    LABS,
    HEDJitter,
    Lab,
    MacenkoNormalizer,
    RandomZoom,
    TissueDataset,
    augment,
    generate_tile,
    get_lab,
    rgb_to_hed,
    tile_seed,
    to_tensors,
    zoom_pair,
)

THREE = ("stroma", "tumor", "background")


# ---- labs in the generator ----------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 5])
def test_lab_a_none_and_a_default_lab_are_the_generators_own_tiles(seed):
    image, mask = generate_tile(48, seed=seed, classes=THREE)
    for lab in (None, "A", LABS["A"], Lab("mine")):
        other_image, other_mask = generate_tile(48, seed=seed, classes=THREE, lab=lab)
        assert other_image.tobytes() == image.tobytes() and other_mask.tobytes() == mask.tobytes()


def test_the_presets_differ_from_lab_a_and_say_how():
    assert list(LABS) == ["A", "B", "C"] and all(LABS[name].name == name for name in LABS)
    assert all(lab.description.startswith(f"lab {lab.name}: ") for lab in LABS.values())
    assert "paler" in LABS["B"].description and "blurrier" in LABS["B"].description
    image_a, mask_a = generate_tile(64, seed=2)
    image_b, mask_b = generate_tile(64, seed=2, lab="B")
    assert np.array_equal(mask_a, mask_b) and np.abs(image_a.astype(int) - image_b).mean() > 5  # same tissue
    image_c, mask_c = generate_tile(64, seed=2, lab="C")
    assert image_c.shape == (64, 64, 3) and image_c.dtype == np.uint8 and mask_c.dtype == np.int64


def test_stain_strength_scales_the_amount_of_dye():
    """Same seed, same tissue: the deconvolved hematoxylin of tumor grows linearly with the strength; eosin stays."""
    for seed in range(3):
        tumor = generate_tile(64, seed=seed)[1] == 1
        hed = [
            rgb_to_hed(generate_tile(64, seed=seed, lab=Lab("h", noise=0.0, hematoxylin_strength=strength))[0])[tumor]
            for strength in (0.5, 0.75, 1.0)
        ]  # each (P, 3)
        step_low, step_high = hed[1] - hed[0], hed[2] - hed[1]  # 0.5 -> 0.75 and 0.75 -> 1.0
        assert step_high[:, 0].mean() > 0.03
        assert abs(step_high[:, 0].mean() / step_low[:, 0].mean() - 1.0) < 0.05
        assert abs(step_high[:, 1].mean()) < 0.2 * step_high[:, 0].mean()


def test_scanner_blur_removes_fine_detail():
    sharp = generate_tile(64, seed=1, lab=Lab("sharp", noise=0.0))[0].astype(float)
    blurred = generate_tile(64, seed=1, lab=Lab("blurred", noise=0.0, blur_sigma=1.0))[0].astype(float)
    detail = [np.abs(ndimage.laplace(image[..., 1])).mean() for image in (sharp, blurred)]
    assert detail[1] < 0.6 * detail[0]
    assert np.allclose(sharp.mean(axis=(0, 1)), blurred.mean(axis=(0, 1)), atol=1.5)  # blur keeps the colours


def test_camera_noise_scales_with_the_labs_noise():
    clean = generate_tile(64, seed=3, lab=Lab("clean", noise=0.0))[0].astype(float)
    spread = [
        (generate_tile(64, seed=3, lab=Lab("noisy", noise=noise))[0] - clean).std() for noise in (1.0, 2.0)
    ]
    assert 1.8 < spread[1] / spread[0] < 2.2


def test_illuminant_tints_the_glass():
    lab = Lab("yellow lamp", illuminant=(1.0, 1.0, 0.8))
    image, mask = generate_tile(64, seed=4, classes=THREE)
    tinted, _ = generate_tile(64, seed=4, classes=THREE, lab=lab)
    glass = mask == 2
    ratio = tinted[glass].astype(float).mean(0) / image[glass].astype(float).mean(0)
    assert np.allclose(ratio, [1.0, 1.0, 0.8], atol=0.01)


def test_smaller_pixels_show_the_same_tissue_magnified():
    """At 0.5 µm per pixel a 64-px tile covers the tissue of a 32-px lab-A tile, each label twice as wide."""
    lab = Lab("40x", microns_per_pixel=0.5)
    for seed in range(3):
        _, mask = generate_tile(64, seed=seed, lab=lab)
        _, native = generate_tile(32, seed=seed)
        expected = zoom_pair(np.zeros((32, 32)), native, 2.0, size=(64, 64))[1]
        assert np.array_equal(mask, expected)
        assert np.array_equal(mask[::2, ::2], native)  # 2x exactly: every other pixel is the native one


def test_stain_variation_zero_gives_every_tile_the_labs_exact_stain_colours():
    """With no slide-to-slide variation, two tiles' pure-stroma-like pixels share one hue; with it, they do not."""

    def eosin_direction(lab: Lab, seed: int) -> np.ndarray:
        image, mask = generate_tile(64, seed=seed, lab=replace(lab, noise=0.0))
        density = -np.log(np.maximum(image[mask == 0].astype(float), 1) / 255)  # (P, 3) stroma
        return np.linalg.svd(density, full_matrices=False)[2][0]  # the main direction of stroma colour

    fixed, varied = Lab("fixed", stain_variation=0.0), Lab("varied", stain_variation=0.2)
    same = abs(eosin_direction(fixed, 1) @ eosin_direction(fixed, 2))
    different = abs(eosin_direction(varied, 1) @ eosin_direction(varied, 2))
    assert same > different


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"hematoxylin_od": (0.6, -0.1, 0.3)}, "non-negative optical densities"),
        ({"hematoxylin_od": (0.5, 0.5)}, "3 non-negative optical densities"),
        ({"eosin_od": (1.3, 1.4, 0.57)}, "point \\(almost\\) the same way"),
        ({"eosin_strength": 0.0}, "eosin_strength must be > 0"),
        ({"microns_per_pixel": 10.0}, "microns_per_pixel must lie in"),
        ({"blur_sigma": -1.0}, "blur_sigma must be >= 0"),
        ({"noise": -0.5}, "noise must be >= 0"),
        ({"illuminant": (1.0, 1.0, 2.0)}, "illuminant must be 3 factors"),
    ],
)
def test_bad_lab_settings_are_refused_with_the_cause(fields, message):
    with pytest.raises(ValueError, match=message):
        Lab("bad", **fields)


def test_unknown_lab_names_list_the_valid_ones():
    assert get_lab(None) is LABS["A"] and get_lab("C") is LABS["C"]
    with pytest.raises(ValueError, match="'A', 'B', 'C'"):
        generate_tile(32, lab="D")


# ---- scale augmentation ---------------------------------------------------------------------------------------
def bilinear_reference(image: np.ndarray, zoom: float, size: int) -> np.ndarray:
    """A pixel-by-pixel bilinear zoom about the centre, mirroring outside (scipy's "reflect")."""
    height = image.shape[0]

    def mirrored(i: int) -> int:
        i = i % (2 * height)
        return i if i < height else 2 * height - 1 - i

    out = np.zeros((size, size))
    for row in range(size):
        for col in range(size):
            y = (row + 0.5 - size / 2) / zoom + height / 2 - 0.5
            x = (col + 0.5 - size / 2) / zoom + height / 2 - 0.5
            y0, x0 = int(np.floor(y)), int(np.floor(x))
            fy, fx = y - y0, x - x0
            out[row, col] = sum(
                weight * image[mirrored(y0 + dy), mirrored(x0 + dx)]
                for dy, dx, weight in [(0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)),
                                       (1, 1, fy * fx)]
            )
    return out


@pytest.mark.parametrize("zoom", [1.0, 1.7, 2.0])
def test_zoom_pair_is_bilinear_for_the_image_and_nearest_for_the_mask(zoom):
    rng = np.random.default_rng(0)
    image, mask = rng.uniform(0, 1, (12, 12)), rng.integers(0, 3, (12, 12))
    mask[:3, :3] = IGNORE_INDEX
    zoomed, zoomed_mask = zoom_pair(image, mask, zoom)
    assert zoomed.shape == (12, 12) and zoomed_mask.shape == (12, 12) and zoomed_mask.dtype == mask.dtype
    assert np.allclose(zoomed, bilinear_reference(image, zoom, 12), atol=1e-12)
    assert set(np.unique(zoomed_mask)) <= set(np.unique(mask))  # labels are copied, never blended
    if zoom == 1.0:
        assert np.array_equal(zoomed, image) and np.array_equal(zoomed_mask, mask)


def test_zoom_pair_magnifies_shapes_and_keeps_image_and_mask_aligned():
    rows, cols = np.indices((64, 64))
    disc = ((rows - 31.5) ** 2 + (cols - 31.5) ** 2 < 10**2).astype(np.int64)  # radius 10 at the centre
    image = np.stack([disc * 200.0 + 20.0] * 3, axis=-1)
    for zoom, expected_radius in ((1.5, 15.0), (0.7, 7.0)):
        zoomed, zoomed_mask = zoom_pair(image, disc, zoom)
        assert abs(np.sqrt(zoomed_mask.sum() / np.pi) - expected_radius) < 0.5
        assert zoomed[zoomed_mask == 1, 0].mean() > zoomed[zoomed_mask == 0, 0].mean() + 150  # aligned


def test_random_zoom_is_reproducible_and_stays_in_range():
    image, mask = to_tensors(*generate_tile(48, seed=1))
    step = RandomZoom(1.5, 1.5)
    zoomed, zoomed_mask = step(image, mask, np.random.default_rng(0))
    expected = zoom_pair(image.permute(1, 2, 0).numpy(), mask.numpy(), 1.5)
    assert torch.equal(zoomed, torch.from_numpy(expected[0]).permute(2, 0, 1))
    assert torch.equal(zoomed_mask, torch.from_numpy(expected[1]))
    assert zoomed.dtype == torch.float32 and zoomed.shape == (3, 48, 48) and zoomed_mask.dtype == torch.int64
    assert zoomed.is_contiguous()
    a, b = RandomZoom()(image, mask, np.random.default_rng(3)), RandomZoom()(image, mask, np.random.default_rng(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="0 < low <= high"):
        RandomZoom(1.2, 0.8)
    with pytest.raises(ValueError, match="zoom must be > 0"):
        zoom_pair(np.zeros((4, 4)), np.zeros((4, 4), dtype=np.int64), 0.0)


# ---- datasets -----------------------------------------------------------------------------------------------
def test_tissue_dataset_tiles_come_from_the_chosen_lab():
    data = TissueDataset(3, 40, seed=2, lab="B")
    image, mask = generate_tile(40, seed=tile_seed(2, 1), lab="B")
    assert np.array_equal(data.load_sample(1)[0], image) and np.array_equal(data.load_sample(1)[1], mask)
    assert data.lab is LABS["B"] and "lab='B'" in repr(data)
    assert "lab=" not in repr(TissueDataset(3, 40))


def test_extra_augmentations_run_after_the_standard_ones_with_the_same_generator():
    plain = TissueDataset(4, 32, seed=9)
    data = TissueDataset(4, 32, seed=9, augment=True, augmentations=[HEDJitter(0.1), RandomZoom(0.8, 1.25)])
    image, mask = data[2]
    rng = np.random.default_rng((9, 2, 0))  # (seed, index, epoch)
    expected = augment(*plain[2], rng)
    expected = HEDJitter(0.1)(*expected, rng)
    expected = RandomZoom(0.8, 1.25)(*expected, rng)
    assert torch.equal(image, expected[0]) and torch.equal(mask, expected[1])
    assert "augmentations=[HEDJitter(sigma=0.1), RandomZoom(low=0.8, high=1.25)]" in repr(data)
    with pytest.raises(ValueError, match="pass augment=True"):
        TissueDataset(4, 32, augmentations=[HEDJitter()])


def test_a_normaliser_recolours_every_tile_with_or_without_augmentation():
    reference = generate_tile(48, seed=50)[0]
    normalize = MacenkoNormalizer(reference)
    data = TissueDataset(2, 48, seed=4, lab="C", normalize=normalize)
    image, mask = data[0]
    raw_image, raw_mask = data.load_sample(0)
    expected_image, expected_mask = to_tensors(normalize(raw_image), raw_mask)
    assert torch.equal(image, expected_image) and torch.equal(mask, expected_mask)
    augmented = TissueDataset(2, 48, seed=4, lab="C", normalize=normalize, augment=True)[0]
    assert torch.equal(augmented[0], augment(expected_image, expected_mask, np.random.default_rng((4, 0, 0)))[0])
    with pytest.raises(TypeError, match="normalize must return a uint8"):
        TissueDataset(2, 48, normalize=lambda image: image / 255.0)[0]
    with pytest.raises(TypeError, match="normalize must be a function"):
        TissueDataset(2, 48, normalize="macenko")


# ---- many labs: random labs and the pooled data set --------------------------------------------------------
def test_random_lab_is_seeded_valid_and_varied():
    from segtutor.data import random_lab

    labs = [random_lab(np.random.default_rng(seed)) for seed in range(40)]
    assert random_lab(np.random.default_rng(3)) == labs[3]  # the same generator state, the same lab
    assert len({lab.hematoxylin_strength for lab in labs}) == 40
    for lab in labs:  # every one passed Lab's own checks; the ranges the docstring promises
        assert 0.55 <= lab.hematoxylin_strength <= 1.6 and 0.6 <= lab.eosin_strength <= 1.6
        assert 0.75 <= lab.microns_per_pixel <= 1.33 and 0 <= lab.blur_sigma <= 1
        assert np.abs(np.subtract(lab.hematoxylin_od, LABS["A"].hematoxylin_od)).max() <= 0.18 + 1e-12
    # Labs like B and C lie inside the ranges: B's strengths, C's pixel size and noise.
    strengths = np.array([(lab.hematoxylin_strength, lab.eosin_strength) for lab in labs])
    assert strengths[:, 0].min() < LABS["B"].hematoxylin_strength and strengths[:, 1].max() > LABS["B"].eosin_strength
    assert min(lab.microns_per_pixel for lab in labs) < LABS["C"].microns_per_pixel


def test_many_labs_dataset_gives_each_tile_the_tissue_of_its_index_from_a_lab_of_its_own():
    from segtutor.data import ManyLabsDataset

    data = ManyLabsDataset(4, 40, seed=6, classes=THREE)
    for index in range(4):
        image, mask = data.load_sample(index)
        expected_image, expected_mask = generate_tile(40, seed=tile_seed(6, index), classes=THREE,
                                                      lab=data.lab_of(index))  # fmt: skip
        assert np.array_equal(image, expected_image) and np.array_equal(mask, expected_mask)
    assert data.lab_of(0) != data.lab_of(1) and data.lab_of(2) == ManyLabsDataset(4, 40, seed=6).lab_of(2)
    assert data.lab_of(2) != ManyLabsDataset(4, 40, seed=7).lab_of(2)
    assert repr(data).startswith("ManyLabsDataset(num_tiles=4")
    image, mask = data[1]
    assert image.shape == (3, 40, 40) and mask.dtype == torch.int64
