"""The procedural H&E generator: determinism, shapes, labels, and that the image agrees with the mask."""

from __future__ import annotations

import numpy as np
import pytest

from segtutor.data import TISSUE_CLASS_NAMES, class_colors, generate_tile
from segtutor.data.tissue import EOSIN_OD, HEMATOXYLIN_OD, stamp_ellipses


def hematoxylin_amount(image: np.ndarray) -> np.ndarray:
    """Colour deconvolution with the reference stain vectors: hematoxylin optical density per pixel (H, W)."""
    stains = np.array([HEMATOXYLIN_OD, EOSIN_OD, np.cross(HEMATOXYLIN_OD, EOSIN_OD)])
    stains /= np.linalg.norm(stains, axis=1, keepdims=True)
    density = -np.log((image.astype(np.float64) + 1.0) / 256.0)
    return (density @ np.linalg.inv(stains))[..., 0]


def test_same_seed_gives_the_same_bytes_and_different_seeds_differ():
    image_a, mask_a = generate_tile(64, seed=7)
    image_b, mask_b = generate_tile(64, seed=7)
    assert image_a.tobytes() == image_b.tobytes()
    assert mask_a.tobytes() == mask_b.tobytes()
    image_c, mask_c = generate_tile(64, seed=8)
    assert not np.array_equal(image_a, image_c)
    assert not np.array_equal(mask_a, mask_c)


def test_generation_does_not_touch_or_depend_on_global_random_state():
    np.random.seed(1)
    image_a, _ = generate_tile(32, seed=3)
    after = np.random.random()
    np.random.seed(2)
    image_b, _ = generate_tile(32, seed=3)
    np.random.seed(1)
    assert np.random.random() == after
    assert np.array_equal(image_a, image_b)


@pytest.mark.parametrize("tile_size", [32, 50, 64])
def test_shapes_dtypes_and_label_range(tile_size):
    image, mask = generate_tile(tile_size, seed=1, classes=("stroma", "tumor", "background"))
    assert image.shape == (tile_size, tile_size, 3) and image.dtype == np.uint8
    assert mask.shape == (tile_size, tile_size) and mask.dtype == np.int64
    assert set(np.unique(mask)) <= {0, 1, 2}


def test_two_classes_never_produce_background_and_three_classes_do():
    two = np.stack([generate_tile(48, seed=s)[1] for s in range(6)])
    three = np.stack([generate_tile(48, seed=s, classes=("stroma", "tumor", "background"))[1] for s in range(6)])
    assert set(np.unique(two)) == {0, 1}
    assert set(np.unique(three)) == {0, 1, 2}
    background = (three == 2).mean(axis=(1, 2))
    assert ((background > 0.01) & (background < 0.3)).all()


def test_tumor_fraction_varies_between_tiles_within_the_documented_range():
    fractions = np.array([(generate_tile(64, seed=s)[1] == 1).mean() for s in range(12)])
    assert ((fractions >= 0.19) & (fractions <= 0.61)).all()
    assert fractions.std() > 0.05


def test_tumor_fraction_argument_is_honoured():
    for fraction in (0.1, 0.5):
        mask = generate_tile(64, seed=4, tumor_fraction=fraction)[1]
        assert abs((mask == 1).mean() - fraction) < 0.005


def test_class_order_only_relabels():
    image_a, mask_a = generate_tile(48, seed=5, classes=("stroma", "tumor"))
    image_b, mask_b = generate_tile(48, seed=5, classes=("tumor", "stroma"))
    assert np.array_equal(image_a, image_b)
    assert np.array_equal(mask_b, 1 - mask_a)
    image_c, mask_c = generate_tile(48, seed=5, classes=("stroma", "tumor", "background"))
    image_d, mask_d = generate_tile(48, seed=5, classes=("background", "stroma", "tumor"))
    assert np.array_equal(image_c, image_d)
    assert np.array_equal(mask_d, np.array([1, 2, 0])[mask_c])


@pytest.mark.parametrize("classes", [("tumor",), ("stroma", "tumor", "tumor"), ("stroma", "tumour"), "stroma"])
def test_bad_classes_are_refused_with_the_valid_names(classes):
    with pytest.raises(ValueError, match="Valid names"):
        generate_tile(32, classes=classes)


def test_bad_sizes_and_fractions_are_refused():
    with pytest.raises(ValueError, match="tile_size"):
        generate_tile(4)
    with pytest.raises(ValueError, match="tumor_fraction"):
        generate_tile(32, tumor_fraction=1.5)


def test_image_agrees_with_mask():
    """Tumor holds more hematoxylin than stroma, and background is bright glass, in every tile."""
    for seed in range(6):
        image, mask = generate_tile(96, seed=seed, classes=("stroma", "tumor", "background"))
        hematoxylin = hematoxylin_amount(image)
        assert hematoxylin[mask == 1].mean() > hematoxylin[mask == 0].mean() + 0.1
        brightness = image.astype(float).mean(axis=-1)
        assert brightness[mask == 2].mean() > 200
        assert brightness[mask == 2].mean() > brightness[mask != 2].mean() + 30


def test_a_stain_threshold_is_informative_but_far_from_perfect():
    """Neither trivial nor impossible: the best single hematoxylin threshold gets a middling tumor IoU."""
    tiles = [generate_tile(96, seed=seed) for seed in range(100, 116)]
    hematoxylin = np.stack([hematoxylin_amount(image) for image, _ in tiles])
    tumor = np.stack([mask == 1 for _, mask in tiles])
    ious = [((hematoxylin > t) & tumor).sum() / ((hematoxylin > t) | tumor).sum() for t in np.linspace(0, 1, 41)]
    assert 0.45 < max(ious) < 0.8


def test_stamp_ellipses_matches_the_ellipse_equation():
    canvas = np.zeros((40, 40), dtype=np.float32)
    # A spindle: half-axis 2 across and 8 along; angle 0 points "along" down the rows.
    stamp_ellipses(canvas, np.array([[20.0, 20.0]]), radii=np.array([[2.0, 8.0]]), angles=np.array([0.0]),
                   darkness=np.array([1.0]))
    rows, cols = np.indices(canvas.shape) + 0.5
    distance = np.hypot((cols - 20) / 2.0, (rows - 20) / 8.0)
    assert (canvas[distance < 0.7] == 1.0).all()  # well inside: fully drawn
    assert (canvas[distance > 1.3] == 0.0).all()  # well outside: untouched
    assert canvas.any(axis=1).sum() > 2 * canvas.any(axis=0).sum()  # taller than wide
    # Turned by 90 degrees, the same spindle lies along the columns.
    turned = np.zeros_like(canvas)
    stamp_ellipses(turned, np.array([[20.0, 20.0]]), radii=np.array([[2.0, 8.0]]), angles=np.array([np.pi / 2]),
                   darkness=np.array([1.0]))
    assert np.allclose(turned, canvas.T, atol=1e-5)


def test_class_names_and_colours():
    assert TISSUE_CLASS_NAMES == ("stroma", "tumor", "background")
    colours = class_colors(TISSUE_CLASS_NAMES)
    assert len(set(colours)) == 3 and all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in colours)
    unnamed = class_colors(("a", "b", "c"))
    assert len(set(unnamed)) == 3
