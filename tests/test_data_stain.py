"""Stain colour: optical density, colour deconvolution, HED jitter, Macenko and Reinhard normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segtutor.data import (
    LABS,
    HEDJitter,
    Lab,
    MacenkoNormalizer,
    ReinhardNormalizer,
    generate_tile,
    hed_jitter,
    hed_to_rgb,
    lalphabeta_to_rgb,
    macenko_stains,
    od_to_rgb,
    rgb_to_hed,
    rgb_to_lalphabeta,
    rgb_to_od,
    stain_matrix,
)
from segtutor.data.tissue import EOSIN_OD, HEMATOXYLIN_OD

ALL_VALUES = np.stack(np.meshgrid(*[np.arange(1, 256, 6)] * 3), -1).reshape(-1, 3)  # (P, 3) RGB colours, 1..253


def angle_degrees(a: np.ndarray, b: np.ndarray) -> float:
    cosine = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))


def white_balanced_tiles(lab: Lab, seeds: range, tile_size: int = 96) -> np.ndarray:
    """Tiles with glass, each scaled so that its glass is 255: optical densities then follow Beer–Lambert exactly."""
    tiles = []
    for seed in seeds:
        image, mask = generate_tile(tile_size, seed=seed, lab=lab, classes=("stroma", "tumor", "background"))
        glass = np.median(image[mask == 2].astype(float), axis=0)  # (3,) this tile's lamp
        tiles.append(np.clip(image * (255.0 / glass), 0, 255))
    return np.stack(tiles)  # (N, H, W, 3)


# ---- optical density and colour deconvolution ---------------------------------------------------------------
def test_optical_density_is_minus_log_of_transmission_and_round_trips():
    assert np.allclose(rgb_to_od(np.array([255.0, 255 / np.e, 255 / np.e**2])), [0.0, 1.0, 2.0])
    assert rgb_to_od(np.array([0, 1, 2], dtype=np.uint8))[0] == rgb_to_od(np.array([1.0, 1, 1]))[0]  # 0 counts as 1
    assert np.allclose(od_to_rgb(rgb_to_od(ALL_VALUES)), ALL_VALUES, atol=1e-9)
    assert np.allclose(rgb_to_od(np.array([240.0, 120, 60]), white=240.0), [0.0, np.log(2), np.log(4)])


def test_stain_matrix_rows_are_the_unit_stains_and_an_orthogonal_residual():
    stains = stain_matrix()
    assert stains.shape == (3, 3) and np.allclose(np.linalg.norm(stains, axis=1), 1.0)
    assert angle_degrees(stains[0], np.array(HEMATOXYLIN_OD)) < 1e-6
    assert angle_degrees(stains[1], np.array(EOSIN_OD)) < 1e-6
    assert abs(stains[2] @ stains[0]) < 1e-12 and abs(stains[2] @ stains[1]) < 1e-12


def test_colour_deconvolution_recovers_known_amounts_of_dye():
    rng = np.random.default_rng(0)
    amounts = rng.uniform(0.0, 2.0, size=(50, 2))  # (P, 2) hematoxylin, eosin
    stains = stain_matrix(LABS["C"].hematoxylin_od, LABS["C"].eosin_od)
    image = 255.0 * np.exp(-(amounts[:, :1] * stains[0] + amounts[:, 1:] * stains[1]))  # Beer–Lambert, (P, 3)
    hed = rgb_to_hed(image, stains)
    assert np.allclose(hed[:, :2], amounts, atol=1e-9) and np.allclose(hed[:, 2], 0.0, atol=1e-9)


def test_hed_round_trip_is_exact():
    for stains in (None, stain_matrix(LABS["C"].hematoxylin_od, LABS["C"].eosin_od)):
        hed = rgb_to_hed(ALL_VALUES, stains)
        assert hed.shape == ALL_VALUES.shape and hed.dtype == np.float64
        assert np.allclose(hed_to_rgb(hed, stains), ALL_VALUES, atol=1e-9)


# ---- HED jitter ---------------------------------------------------------------------------------------------
def test_hed_jitter_with_sigma_zero_is_the_identity():
    image = generate_tile(32, seed=1)[0]
    same = hed_jitter(image, np.random.default_rng(0), sigma=0.0)
    assert same.dtype == np.uint8 and np.array_equal(same, image)
    floats = image.astype(np.float64)
    assert np.allclose(hed_jitter(floats, np.random.default_rng(0), sigma=0.0), floats, atol=1e-9)
    tensor, mask = torch.from_numpy(image).permute(2, 0, 1).float() / 255, torch.zeros(32, 32, dtype=torch.int64)
    jittered, same_mask = HEDJitter(0.0)(tensor, mask, np.random.default_rng(0))
    assert jittered.dtype == torch.float32 and jittered.shape == (3, 32, 32)
    assert torch.allclose(jittered, tensor, atol=1e-6) and same_mask is mask


def test_hed_jitter_scales_and_shifts_each_stain_by_draws_in_the_documented_ranges():
    image = generate_tile(32, seed=2)[0].astype(np.float64)
    sigma = 0.1
    jittered = hed_jitter(image, np.random.default_rng(5), sigma=sigma)
    # The same generator draws alpha (3,) and then beta (3,); each stain's amount becomes alpha * amount + beta.
    draws = np.random.default_rng(5)
    alpha, beta = draws.uniform(1 - sigma, 1 + sigma, 3), draws.uniform(-sigma, sigma, 3)
    assert ((np.abs(alpha - 1) <= sigma) & (np.abs(beta) <= sigma)).all()
    inside = (jittered > 0.5) & (jittered < 254.5)  # not clipped
    expected = hed_to_rgb(rgb_to_hed(image) * alpha + beta)
    assert inside.mean() > 0.9 and np.allclose(jittered[inside], expected[inside], atol=1e-9)
    # Pixel by pixel, the deconvolved jittered image is the linear map of the original's amounts.
    before, after = rgb_to_hed(image).reshape(-1, 3), rgb_to_hed(jittered).reshape(-1, 3)
    keep = inside.all(axis=-1).reshape(-1)
    assert np.allclose(after[keep], before[keep] * alpha + beta, atol=1e-9)


def test_hed_jitter_is_reproducible_and_varies_with_the_generator():
    tensor = torch.from_numpy(generate_tile(32, seed=3)[0]).permute(2, 0, 1).float() / 255
    mask = torch.zeros(32, 32, dtype=torch.int64)
    step = HEDJitter(0.1)
    a = step(tensor, mask, np.random.default_rng(1))[0]
    b = step(tensor, mask, np.random.default_rng(1))[0]
    c = step(tensor, mask, np.random.default_rng(2))[0]
    assert torch.equal(a, b) and not torch.allclose(a, c) and 0 <= a.min() and a.max() <= 1


def test_hed_jitter_refuses_a_negative_sigma():
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        HEDJitter(-0.1)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        hed_jitter(np.zeros((4, 4, 3)), np.random.default_rng(0), sigma=-1.0)


# ---- Macenko ------------------------------------------------------------------------------------------------
def test_macenko_recovers_the_stains_of_an_ideal_image_exactly():
    """Noise-free Beer–Lambert pixels that include pure hematoxylin and pure eosin: the angles are exact."""
    rng = np.random.default_rng(0)
    amounts = rng.uniform(0.0, 1.5, size=(4000, 2)) * rng.integers(0, 2, size=(4000, 2))  # many pure pixels
    stains = stain_matrix(LABS["C"].hematoxylin_od, LABS["C"].eosin_od)[:2]
    image = 255.0 * np.exp(-(amounts @ stains)).reshape(40, 100, 3)
    found, max_concentrations = macenko_stains(image, alpha=0.0)
    assert angle_degrees(found[0], stains[0]) < 0.01 and angle_degrees(found[1], stains[1]) < 0.01
    assert np.allclose(max_concentrations, np.percentile(amounts, 99, axis=0), rtol=1e-6)


@pytest.mark.parametrize("name", ["A", "C"])  # lab B uses lab A's dyes
def test_macenko_recovers_a_labs_stain_vectors_from_generated_tiles(name):
    """Measured on 4 tiles of 96² per estimate: errors 0.2-3.2 degrees (the tissue has no perfectly pure pixel)."""
    preset = LABS[name]
    known = Lab("known", hematoxylin_od=preset.hematoxylin_od, eosin_od=preset.eosin_od, stain_variation=0.0)
    for seeds in (range(0, 4), range(8, 12)):
        stains, _ = macenko_stains(white_balanced_tiles(known, seeds))
        assert stains.shape == (2, 3) and np.allclose(np.linalg.norm(stains, axis=1), 1.0)
        assert angle_degrees(stains[0], np.array(preset.hematoxylin_od)) < 5.0
        assert angle_degrees(stains[1], np.array(preset.eosin_od)) < 5.0


def test_macenko_normalisation_gives_an_image_the_reference_stains():
    reference = np.stack([generate_tile(96, seed=100 + i)[0] for i in range(4)])
    normalize = MacenkoNormalizer(reference)
    image = generate_tile(96, seed=1, lab="C")[0]
    stains_before, _ = macenko_stains(image)
    assert angle_degrees(stains_before[1], normalize.stains[1]) > 5  # lab C's eosin is another colour
    normalized = normalize(image)
    assert normalized.shape == image.shape and normalized.dtype == np.uint8
    stains_after, max_after = macenko_stains(normalized)
    assert angle_degrees(stains_after[0], normalize.stains[0]) < 0.5
    assert angle_degrees(stains_after[1], normalize.stains[1]) < 0.5
    assert np.allclose(max_after, normalize.max_concentrations, rtol=0.03)
    assert "MacenkoNormalizer(hematoxylin=" in repr(normalize)


def test_macenko_with_a_source_slide_estimates_its_stains_once_for_all_its_tiles():
    reference = np.stack([generate_tile(96, seed=100 + i)[0] for i in range(4)])
    slide = np.concatenate([generate_tile(96, seed=20 + i, lab="C")[0] for i in range(4)], axis=1)  # (96, 384, 3)
    per_slide = MacenkoNormalizer(reference, source=slide)
    # Each tile is restained with the slide's stains: the same as normalising the whole slide and cutting it up.
    whole = MacenkoNormalizer(reference)(slide)
    for i in range(4):
        assert np.array_equal(per_slide(slide[:, 96 * i : 96 * (i + 1)]), whole[:, 96 * i : 96 * (i + 1)])
    # A tile of glass alone has no stains to estimate; with its slide's it is simply restained.
    glass = np.full((32, 32, 3), 245, dtype=np.uint8)
    assert per_slide(glass).shape == (32, 32, 3) and "source stains fixed" in repr(per_slide)


def test_macenko_refuses_blank_glass_and_bad_shapes():
    with pytest.raises(ValueError, match="too few stained pixels"):
        macenko_stains(np.full((64, 64, 3), 250, dtype=np.uint8))
    with pytest.raises(ValueError, match="too few stained pixels"):
        MacenkoNormalizer(generate_tile(64, seed=0)[0])(np.full((64, 64, 3), 255, dtype=np.uint8))
    with pytest.raises(ValueError, match=r"RGB \(H, W, 3\)"):
        macenko_stains(np.zeros((64, 64)))
    with pytest.raises(ValueError, match="alpha is a percentile"):
        macenko_stains(generate_tile(64, seed=0)[0], alpha=60)


# ---- Reinhard -----------------------------------------------------------------------------------------------
def test_lalphabeta_follows_reinhards_formulas_and_round_trips():
    rgb = ALL_VALUES[::397].astype(np.float64)  # 201 colours
    lab = rgb_to_lalphabeta(rgb)
    for pixel, (l, a, b) in zip(rgb / 255.0, lab):  # the paper's equations, written out one pixel at a time
        cone_l = 0.3811 * pixel[0] + 0.5783 * pixel[1] + 0.0402 * pixel[2]
        cone_m = 0.1967 * pixel[0] + 0.7244 * pixel[1] + 0.0782 * pixel[2]
        cone_s = 0.0241 * pixel[0] + 0.1288 * pixel[1] + 0.8444 * pixel[2]
        log_l, log_m, log_s = np.log10([cone_l, cone_m, cone_s])
        assert np.isclose(l, (log_l + log_m + log_s) / np.sqrt(3))
        assert np.isclose(a, (log_l + log_m - 2 * log_s) / np.sqrt(6))
        assert np.isclose(b, (log_l - log_m) / np.sqrt(2))
    assert np.allclose(lalphabeta_to_rgb(rgb_to_lalphabeta(ALL_VALUES)), ALL_VALUES, atol=1e-9)
    greys = rgb_to_lalphabeta(np.array([[30.0] * 3, [128.0] * 3, [255.0] * 3]))
    assert np.abs(greys[:, 1:]).max() < 2e-3  # grey has (almost) no colour: α and β near 0


def test_reinhard_makes_the_colour_statistics_match_the_reference():
    reference = np.stack([generate_tile(64, seed=100 + i)[0] for i in range(4)])
    normalize = ReinhardNormalizer(reference)
    reference_lab = rgb_to_lalphabeta(reference).reshape(-1, 3)
    assert np.allclose(normalize.mean, reference_lab.mean(0)) and np.allclose(normalize.std, reference_lab.std(0))
    for lab in ("B", "C"):
        image = generate_tile(64, seed=1, lab=lab)[0]
        before = rgb_to_lalphabeta(image).reshape(-1, 3)
        after = rgb_to_lalphabeta(normalize(image)).reshape(-1, 3)
        assert np.abs(before.mean(0) - normalize.mean).max() > 0.02  # another lab looks different
        assert np.abs(after.mean(0) - normalize.mean).max() < 0.005  # ... until normalised (uint8 rounding aside)
        assert np.allclose(after.std(0), normalize.std, rtol=0.03)
    assert normalize(image).dtype == np.uint8 and normalize(image).shape == image.shape


def test_reinhard_refuses_a_single_colour_and_bad_shapes():
    normalize = ReinhardNormalizer(generate_tile(32, seed=0)[0])
    with pytest.raises(ValueError, match="single colour"):
        normalize(np.full((8, 8, 3), 200, dtype=np.uint8))
    with pytest.raises(ValueError, match=r"RGB \(H, W, 3\)"):
        ReinhardNormalizer(np.zeros((8, 8)))
