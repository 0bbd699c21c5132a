"""FolderDataset and the pre-flight check, on small files written to a temporary folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from segtutor.data import FolderDataset, IGNORE_INDEX, preflight, read_image, read_mask


def as_uint8(image: torch.Tensor) -> np.ndarray:
    """A dataset image (3, H, W) in [0, 1] back to uint8 (H, W, 3)."""
    return (image.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()


def random_image(rng: np.random.Generator, height: int = 40, width: int = 48) -> np.ndarray:
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def save(path: Path, array: np.ndarray, *, mode: str | None = None) -> Path:
    """Write ``array`` as PNG/JPEG (Pillow) or TIFF (tifffile), by suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix in (".tif", ".tiff"):
        tifffile.imwrite(path, array)
    else:
        Image.fromarray(array, mode=mode).save(path, quality=95)
    return path


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """A clean data set: three images (PNG, JPEG, TIFF) with masks (PNG, TIFF, palette PNG), labels 0..2."""
    rng = np.random.default_rng(0)
    images, masks = tmp_path / "images", tmp_path / "masks"
    for stem, image_suffix, mask_suffix in (("a", ".png", ".png"), ("b", ".jpg", ".tif"), ("c", ".tiff", ".png")):
        save(images / f"{stem}{image_suffix}", random_image(rng))
        mask = rng.integers(0, 3, size=(40, 48)).astype(np.uint8)
        if stem == "c":  # a palette PNG: the stored indices are the labels
            palette_mask = Image.frombytes("P", (48, 40), mask.tobytes())
            palette_mask.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
            palette_mask.save(masks / "c.png")
        else:
            save(masks / f"{stem}{mask_suffix}", mask)
    return images, masks


def messages(problems) -> str:
    return "\n".join(str(problem) for problem in problems)


def test_round_trip_png_jpeg_tiff(folders):
    images, masks = folders
    data = FolderDataset(images, masks)
    assert len(data) == 3 and data.num_classes == 3 and data.class_names == ("class 0", "class 1", "class 2")
    for i, (image_file, mask_file) in enumerate(data.pairs):
        image, mask = data[i]
        assert image.shape == (3, 40, 48) and image.dtype == torch.float32
        assert mask.shape == (40, 48) and mask.dtype == torch.int64
        if image_file.suffix == ".tiff":
            original = tifffile.imread(image_file)
        else:
            original = np.asarray(Image.open(image_file).convert("RGB"))
        if image_file.suffix == ".jpg":  # lossy: close, not equal
            assert np.abs(image.permute(1, 2, 0).numpy() * 255 - original).mean() < 20
        else:
            assert np.array_equal(as_uint8(image), original)
        expected = tifffile.imread(mask_file) if mask_file.suffix == ".tif" else np.asarray(Image.open(mask_file))
        assert np.array_equal(mask.numpy(), expected)
    assert Image.open(data.pairs[2][1]).mode == "P" and set(np.unique(data[2][1].numpy())) == {0, 1, 2}


def test_crops_are_windows_of_the_image(folders):
    images, masks = folders
    data = FolderDataset(images, masks, num_classes=3, crop_size=16, crops_per_image=4, augment=False)
    assert len(data) == 12
    whole_image, whole_mask = read_image(data.pairs[0][0]), read_mask(data.pairs[0][1])
    image, mask = data[1]  # the second crop of the first image
    assert image.shape == (3, 16, 16) and mask.shape == (16, 16)
    image = as_uint8(image)
    windows = [
        (top, left)
        for top in range(40 - 15)
        for left in range(48 - 15)
        if np.array_equal(whole_image[top : top + 16, left : left + 16], image)
    ]
    assert len(windows) == 1
    top, left = windows[0]
    assert np.array_equal(whole_mask[top : top + 16, left : left + 16], mask.numpy())
    assert torch.equal(data[1][1], mask)  # the same window every time
    assert not torch.equal(data[0][1], mask)  # another crop, another window


def test_class_names_set_num_classes_and_must_agree(folders):
    images, masks = folders
    data = FolderDataset(images, masks, class_names=("stroma", "tumor", "fat"))
    assert data.num_classes == 3 and data.class_names == ("stroma", "tumor", "fat")
    with pytest.raises(ValueError, match="class_names has 2 names but num_classes is 3"):
        FolderDataset(images, masks, num_classes=3, class_names=("a", "b"))


def test_clean_data_passes_with_class_balance(folders):
    images, masks = folders
    report = preflight(images, masks, num_classes=3)
    assert report.ok and report.errors == [] and report.warnings == []
    report.raise_if_errors()  # nothing to raise
    all_labels = np.concatenate([read_mask(mask).ravel() for _, mask in report.pairs])
    assert report.class_pixels == np.bincount(all_labels, minlength=3).tolist()
    assert np.allclose(report.class_balance, np.bincount(all_labels) / all_labels.size)
    assert "3 pairs" in str(report) and "OK" in str(report) and "<table>" in report._repr_html_()


def test_mask_saved_as_0_255(folders):
    images, masks = folders
    save(masks / "a.png", (np.random.default_rng(1).random((40, 48)) > 0.5).astype(np.uint8) * 255)
    report = preflight(images, masks, num_classes=2)
    assert not report.ok
    assert "a.png: this looks like a binary mask saved as 0/255. Fix: divide by 255 or save labels 0/1." in messages(
        report.errors
    )
    with pytest.raises(ValueError, match="a.png: this looks like a binary mask saved as 0/255"):
        FolderDataset(images, masks, num_classes=2)


def test_labels_beyond_num_classes(folders):
    images, masks = folders
    report = preflight(images, masks, num_classes=2)  # the masks hold 0, 1 and 2
    text = messages(report.errors)
    assert "a.png: labels [2] lie outside 0..1" in text and "b.tif" in text and "c.png" in text
    assert "num_classes=3" in text


def test_ignore_value_is_a_warning_naming_the_file(folders):
    images, masks = folders
    mask = read_mask(masks / "a.png").astype(np.uint8)
    mask[:5, :5] = IGNORE_INDEX
    save(masks / "a.png", mask)
    report = preflight(images, masks, num_classes=3)
    assert report.ok
    assert "a.png: 25 pixels hold 255, the 'ignore' label" in messages(report.warnings)


def test_size_mismatch(folders):
    images, masks = folders
    save(masks / "b.tif", np.zeros((40, 47), dtype=np.uint8))
    report = preflight(images, masks, num_classes=3)
    assert "b.tif: mask is 40x47 but its image b.jpg is 40x48" in messages(report.errors)


def test_image_smaller_than_the_network_minimum(folders):
    images, masks = folders
    rng = np.random.default_rng(3)
    save(images / "small.png", random_image(rng, 20, 60))
    save(masks / "small.png", np.zeros((20, 60), dtype=np.uint8))
    report = preflight(images, masks, num_classes=3, min_size=32)
    assert "small.png: image is 20x60, smaller than the 32x32 the networks need" in messages(report.errors)
    assert preflight(images, masks, num_classes=3, min_size=16).ok


def test_unreadable_files(folders):
    images, masks = folders
    (images / "a.png").write_bytes(b"this is not a png")
    (masks / "b.tif").write_bytes(b"nor is this a tiff")
    text = messages(preflight(images, masks, num_classes=3).errors)
    assert "a.png: this file is not an image segtutor can read" in text and "b.tif: this file is not an image" in text


def test_unpaired_files_are_warnings_naming_the_file(folders):
    images, masks = folders
    save(images / "lonely.png", random_image(np.random.default_rng(4)))
    save(masks / "orphan.png", np.zeros((40, 48), dtype=np.uint8))
    (masks / "notes.txt").write_text("annotations by Dr X")
    report = preflight(images, masks, num_classes=3)
    assert report.ok and len(report.pairs) == 3
    text = messages(report.warnings)
    assert "lonely.png: image without a mask" in text
    assert "orphan.png: mask without an image" in text
    assert "notes.txt: not a supported mask file" in text


def test_colour_coded_rgb_mask(folders):
    images, masks = folders
    rgb = np.zeros((40, 48, 3), dtype=np.uint8)
    rgb[:20] = (255, 0, 0)
    rgb[20:] = (0, 255, 0)
    save(masks / "a.png", rgb)
    text = messages(preflight(images, masks, num_classes=3).errors)
    assert "a.png: this mask is colour-coded RGB" in text and "class index" in text


def test_grey_mask_stored_as_rgb_is_accepted(folders):
    images, masks = folders
    labels = read_mask(masks / "a.png").astype(np.uint8)
    save(masks / "a.png", np.repeat(labels[..., None], 3, axis=-1))
    assert preflight(images, masks, num_classes=3).ok
    assert np.array_equal(read_mask(masks / "a.png"), labels)


def test_jpeg_mask(folders):
    images, masks = folders
    (masks / "a.png").unlink()
    save(masks / "a.jpg", np.zeros((40, 48), dtype=np.uint8), mode="L")
    text = messages(preflight(images, masks, num_classes=3).errors)
    assert "a.jpg: masks must not be JPEG" in text and "PNG" in text


def test_fractional_mask(folders):
    images, masks = folders
    save(masks / "b.tif", np.full((40, 48), 0.5, dtype=np.float32))
    assert "b.tif: this mask holds fractional values" in messages(preflight(images, masks, num_classes=3).errors)


def test_rare_and_missing_classes_are_warnings(folders):
    images, masks = folders
    for name in ("a.png", "c.png"):
        save(masks / name, np.zeros((40, 48), dtype=np.uint8))
    only_a_little = np.zeros((40, 48), dtype=np.uint8)
    only_a_little[0, :3] = 1
    save(masks / "b.tif", only_a_little)
    report = preflight(images, masks, num_classes=3)
    text = messages(report.warnings)
    assert "class 1 covers only 0.05% of the labelled pixels" in text
    assert "class 2 never occurs in any mask" in text
    assert report.class_pixels == [40 * 48 * 3 - 3, 3, 0]


def test_num_classes_is_inferred_from_the_largest_label(folders):
    images, masks = folders
    report = preflight(images, masks, num_classes=None)
    assert report.ok and report.num_classes == 3


def test_folder_problems(tmp_path, folders):
    images, masks = folders
    assert "does not exist" in messages(preflight(tmp_path / "nope", masks, num_classes=2).errors)
    assert "same folder" in messages(preflight(images, images, num_classes=2).errors)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no image/mask pairs found" in messages(preflight(images, empty, num_classes=2).errors)
    save(images / "a.tif", random_image(np.random.default_rng(5)))
    assert "a.tif: a.png has the same stem" in messages(preflight(images, masks, num_classes=3).errors)


def test_dataset_construction_lists_every_problem(folders):
    images, masks = folders
    save(masks / "a.png", np.full((40, 48), 7, dtype=np.uint8))
    save(masks / "b.tif", np.zeros((10, 10), dtype=np.uint8))
    with pytest.raises(ValueError) as error:
        FolderDataset(images, masks, num_classes=3)
    assert "2 problem(s)" in str(error.value) and "a.png" in str(error.value) and "b.tif" in str(error.value)


def test_read_image_converts_grey_alpha_and_16_bit(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    assert np.array_equal(read_image(save(tmp_path / "grey.png", grey)), np.repeat(grey[..., None], 3, -1))
    rgba = np.dstack([np.full((3, 4, 3), 9, np.uint8), np.zeros((3, 4), np.uint8)])
    assert np.array_equal(read_image(save(tmp_path / "rgba.png", rgba)), np.full((3, 4, 3), 9, np.uint8))
    deep = np.full((3, 4, 3), 65535, dtype=np.uint16)
    assert np.array_equal(read_image(save(tmp_path / "deep.tif", deep)), np.full((3, 4, 3), 255, np.uint8))


def test_negative_labels_are_errors_with_a_relabel_fix(folders):
    images, masks = folders
    labels = read_mask(masks / "b.tif").astype(np.int16)
    labels[0, 0] = -1
    save(masks / "b.tif", labels)
    text = messages(preflight(images, masks, num_classes=3).errors)
    assert "b.tif: labels [-1] lie outside 0..2" in text and "relabel them" in text


# ---- messy masks and folders: each gets an error (or warning) that names its cause ------------------------------
def write_masks(masks: Path, values: list[np.ndarray]) -> None:
    for stem, mask in zip("abc", values):
        for old in masks.glob(f"{stem}.*"):
            old.unlink()
        save(masks / (f"{stem}.tif" if mask.dtype == np.uint16 else f"{stem}.png"), mask)


def test_grey_level_masks_with_num_classes_left_to_infer_are_named_grey_levels(folders):
    images, masks = folders
    rng = np.random.default_rng(5)
    write_masks(masks, [rng.choice(np.array([0, 127, 255], np.uint8), (40, 48)) for _ in range(3)])
    report = preflight(images, masks, num_classes=None)
    text = messages(report.errors)
    assert "num_classes was left to infer, and the largest mask value would make it 128" in text
    assert "the values 0, 127, 255 look like grey levels of a picture" in text
    assert "np.searchsorted([0, 127, 255], mask)" in text
    given = messages(preflight(images, masks, num_classes=2).errors)  # num_classes given: the same diagnosis
    assert "a.png: labels [127] lie outside 0..1" in given and "look like grey levels" in given


def test_instance_id_masks_are_named_instance_ids(folders):
    images, masks = folders
    nuclei = np.arange(40 * 48).reshape(40, 48) % 301  # ids 0 (background) and 1 ... 300
    write_masks(masks, [nuclei.astype(np.uint16)] * 3)
    text = messages(preflight(images, masks, num_classes=None).errors)
    assert "would make it 301" in text and "look like instance ids (one number per object" in text
    assert "(mask > 0).astype(np.uint8)" in text


def test_16_bit_binary_masks_are_named_16_bit(folders):
    images, masks = folders
    binary = (np.random.default_rng(6).random((40, 48)) > 0.5).astype(np.uint16) * 65535
    write_masks(masks, [binary] * 3)
    text = messages(preflight(images, masks, num_classes=None).errors)
    assert "would make it 65,536" in text and "binary mask saved as 16-bit black and white" in text
    assert "mask // 65535" in text


def test_masks_with_no_labelled_pixel_fail_the_preflight(folders):
    images, masks = folders
    write_masks(masks, [np.full((40, 48), IGNORE_INDEX, np.uint8)] * 3)
    report = preflight(images, masks, num_classes=2)
    assert not report.ok
    assert "no mask holds a labelled pixel: every pixel is 255 (the 'ignore' label)" in messages(report.errors)
    assert "a.png: every pixel holds 255, the 'ignore' label: this mask teaches nothing" in messages(report.warnings)


def test_sub_folders_are_a_warning_naming_them(folders):
    images, masks = folders
    save(images / "slide2" / "d.png", random_image(np.random.default_rng(7)))
    save(masks / "slide2" / "d.png", np.zeros((40, 48), np.uint8))
    report = preflight(images, masks, num_classes=3)
    text = messages(report.warnings)
    assert "images/slide2: sub-folders are not read: only the image files directly in images/ are" in text
    assert "masks/slide2: sub-folders are not read" in text and "move the files of slide2/" in text


def test_crop_size_must_be_a_positive_whole_number(folders):
    images, masks = folders
    for bad in (0, -8, 2.5):
        with pytest.raises(ValueError, match=f"crop_size must be a whole number of pixels, at least 1.*got {bad}"):
            FolderDataset(images, masks, crop_size=bad)


def test_images_of_different_sizes_without_crop_size_get_a_warning_with_the_fix(folders):
    images, masks = folders
    rng = np.random.default_rng(8)
    save(images / "d.png", random_image(rng, 64, 64))
    save(masks / "d.png", np.zeros((64, 64), np.uint8))
    data = FolderDataset(images, masks, num_classes=3)
    text = messages(data.report.warnings)
    assert "the images have 2 different sizes (40x48, 64x64)" in text and "pass crop_size=40" in text
    assert "different sizes" not in messages(FolderDataset(images, masks, num_classes=3, crop_size=32).report.warnings)


def test_16_bit_images_scaled_by_the_bits_they_hold_are_a_report_warning(folders):
    images, masks = folders
    (images / "c.tiff").unlink()
    save(images / "c.tif", np.random.default_rng(9).integers(0, 4096, (40, 48, 3)).astype(np.uint16))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reported in the report, not printed twice
        report = preflight(images, masks, num_classes=3)
        data = FolderDataset(images, masks, num_classes=3)
        data[2]
    assert report.ok and "c.tif: 16-bit pixels that hold 12-bit values" in messages(report.warnings)
    assert data.pairs[2][0].name == "c.tif"


def test_a_mask_turned_by_90_degrees_names_the_exif_rotation(folders):
    images, masks = folders
    exif = Image.Exif()
    exif[0x0112] = 6  # a phone photo stored on its side: viewers (and segtutor) turn it upright
    Image.fromarray(random_image(np.random.default_rng(10), 40, 48)).save(images / "a.png", exif=exif)
    save(masks / "a.png", np.zeros((40, 48), np.uint8))  # drawn on the stored pixels, not the upright photo
    text = messages(preflight(images, masks, num_classes=3).errors)
    assert "a.png: mask is 40x48 but its image a.png is 48x40 (height x width): the image's EXIF orientation" in text
    assert "upright" in text


def test_normalize_and_extra_augmentations(folders):
    images, masks = folders
    plain = FolderDataset(images, masks)
    inverted = FolderDataset(images, masks, normalize=lambda image: 255 - image)
    assert torch.allclose(inverted[0][0], 1.0 - plain[0][0]) and torch.equal(inverted[0][1], plain[0][1])

    def darker(image: torch.Tensor, mask: torch.Tensor, rng: np.random.Generator):
        return image * 0.5, mask
    augmented = FolderDataset(images, masks, augment=True, augmentations=[darker], seed=2)
    standard = FolderDataset(images, masks, augment=True, seed=2)
    assert torch.allclose(augmented[1][0], standard[1][0] * 0.5) and torch.equal(augmented[1][1], standard[1][1])
    assert "augmentations=" in repr(augmented)
    with pytest.raises(ValueError, match="augment=True"):
        FolderDataset(images, masks, augmentations=[darker])
