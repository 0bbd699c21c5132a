"""TissueDataset and augmentation: tensors, random access, reproducibility, image and mask moving together."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from segtutor.data import TissueDataset, augment, class_balance, generate_tile, random_crop, tile_seed, to_tensors


def dihedral(array: np.ndarray, flip: bool, turns: int) -> np.ndarray:
    """numpy's version of augment's geometry on (..., H, W): mirror left-right, then quarter turns."""
    if flip:
        array = np.flip(array, axis=-1)
    return np.rot90(array, turns, axes=(-2, -1))


def find_dihedral(before: np.ndarray, after: np.ndarray) -> list[tuple[bool, int]]:
    """Every (flip, turns) that maps ``before`` onto ``after`` exactly."""
    return [
        (flip, turns)
        for flip in (False, True)
        for turns in range(4)
        if dihedral(before, flip, turns).shape == after.shape and np.array_equal(dihedral(before, flip, turns), after)
    ]


def test_items_are_float_images_in_unit_range_and_int64_masks():
    data = TissueDataset(4, 48, classes=("stroma", "tumor", "background"))
    image, mask = data[0]
    assert image.shape == (3, 48, 48) and image.dtype == torch.float32
    assert mask.shape == (48, 48) and mask.dtype == torch.int64
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert set(mask.unique().tolist()) <= {0, 1, 2}
    assert len(data) == 4 and data.num_classes == 3
    assert data.class_names == ("stroma", "tumor", "background") and len(data.class_colors) == 3


def test_tile_i_is_the_generated_tile_with_its_derived_seed():
    data = TissueDataset(5, 40, seed=3)
    image, mask = generate_tile(40, seed=tile_seed(3, 4))
    expected_image, expected_mask = to_tensors(image, mask)
    got_image, got_mask = data[4]
    assert torch.equal(got_image, expected_image) and torch.equal(got_mask, expected_mask)
    assert torch.equal(data[-1][0], got_image)  # negative indices, like a list


def test_random_access_order_and_cache_do_not_change_tiles():
    cached, uncached = TissueDataset(6, 32, seed=1), TissueDataset(6, 32, seed=1, cache=False)
    backwards = [cached[i] for i in reversed(range(6))][::-1]
    for i in range(6):
        assert torch.equal(backwards[i][0], uncached[i][0]) and torch.equal(backwards[i][1], uncached[i][1])
        assert torch.equal(cached[i][0], backwards[i][0])


def test_different_seeds_share_no_tiles():
    train, val = TissueDataset(16, 32, seed=0), TissueDataset(16, 32, seed=1)
    train_tiles = {train[i][0].numpy().tobytes() for i in range(16)}
    val_tiles = {val[i][0].numpy().tobytes() for i in range(16)}
    assert len(train_tiles) == 16 and len(val_tiles) == 16 and not train_tiles & val_tiles


def test_index_out_of_range_raises_index_error():
    with pytest.raises(IndexError):
        TissueDataset(3, 32)[3]


def test_augment_moves_image_and_mask_by_the_same_flip_and_turn():
    image, mask = to_tensors(*generate_tile(32, seed=2))
    seen = set()
    for seed in range(40):
        new_image, new_mask = augment(image, mask, np.random.default_rng(seed), color_jitter=0.0)
        image_ops = find_dihedral(image.numpy(), new_image.numpy())
        mask_ops = find_dihedral(mask.numpy(), new_mask.numpy())
        assert len(image_ops) == 1 and image_ops[0] in mask_ops
        seen.add(image_ops[0])
    assert len(seen) == 8  # all symmetries of the square occur


def test_colour_jitter_changes_the_image_only_by_a_per_channel_gain_and_shift():
    image, mask = to_tensors(*generate_tile(32, seed=2))
    jittered, new_mask = augment(image, mask, np.random.default_rng(5), color_jitter=0.05)
    plain, plain_mask = augment(image, mask, np.random.default_rng(5), color_jitter=0.0)
    assert torch.equal(new_mask, plain_mask)
    assert not torch.equal(jittered, plain)
    for channel in range(3):
        x, y = plain[channel].flatten().numpy(), jittered[channel].flatten().numpy()
        unclipped = (y > 0) & (y < 1)
        gain, shift = np.polyfit(x[unclipped], y[unclipped], 1)
        assert abs(gain - 1) <= 0.05 + 1e-4 and abs(shift) <= 0.05 + 1e-4
        assert np.allclose(gain * x[unclipped] + shift, y[unclipped], atol=1e-5)


def test_augment_keeps_the_shape_of_non_square_images():
    image, mask = torch.rand(3, 20, 36), torch.randint(0, 2, (20, 36))
    for seed in range(12):
        new_image, new_mask = augment(image, mask, np.random.default_rng(seed))
        assert new_image.shape == (3, 20, 36) and new_mask.shape == (20, 36)
        assert find_dihedral(mask.numpy(), new_mask.numpy())


def test_augment_refuses_mismatched_image_and_mask():
    with pytest.raises(ValueError, match="differ"):
        augment(torch.rand(3, 8, 8), torch.zeros(8, 9, dtype=torch.int64), np.random.default_rng(0))


def test_dataset_augmentation_is_aligned_reproducible_and_new_each_epoch():
    plain = TissueDataset(4, 32, seed=9)
    data = TissueDataset(4, 32, seed=9, augment=True)
    first = [data[i] for i in range(4)]
    assert data.epoch == 1  # four reads of a four-tile dataset make one epoch
    second = [data[i] for i in range(4)]
    for i in range(4):
        mask = plain[i][1].numpy()
        assert find_dihedral(mask, first[i][1].numpy()) and find_dihedral(mask, second[i][1].numpy())
    assert any(not torch.equal(a[0], b[0]) for a, b in zip(first, second))
    data.set_epoch(0)
    again = [data[i] for i in range(4)]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    fresh = TissueDataset(4, 32, seed=9, augment=True)
    assert torch.equal(fresh[2][0], first[2][0])


def test_a_dataloader_batches_the_dataset():
    images, masks = next(iter(DataLoader(TissueDataset(6, 32, augment=True), batch_size=4, shuffle=False)))
    assert images.shape == (4, 3, 32, 32) and masks.shape == (4, 32, 32) and masks.dtype == torch.int64


def test_random_crop_cuts_the_same_window_from_image_and_mask():
    image = np.arange(20 * 30 * 3).reshape(20, 30, 3)
    mask = np.arange(20 * 30).reshape(20, 30)
    crop_image, crop_mask = random_crop(image, mask, 8, np.random.default_rng(0))
    top, left = divmod(int(crop_mask[0, 0]), 30)
    assert np.array_equal(crop_mask, mask[top : top + 8, left : left + 8])
    assert np.array_equal(crop_image, image[top : top + 8, left : left + 8])
    with pytest.raises(ValueError, match="crop_size"):
        random_crop(image, mask, 21, np.random.default_rng(0))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="num_tiles"):
        TissueDataset(0)
    with pytest.raises(ValueError, match="seed"):
        TissueDataset(4, seed=-1)
    with pytest.raises(ValueError, match="Valid names"):
        TissueDataset(4, classes=("stroma",))
    with pytest.raises(TypeError, match="uint8"):
        to_tensors(np.zeros((4, 4, 3)), np.zeros((4, 4)))


# ---- class balance ----------------------------------------------------------------------------------------------
def test_class_balance_counts_labelled_pixels_like_bincount_and_skips_ignored():
    masks = torch.tensor([[[0, 0, 255], [2, 2, 2]], [[0, 255, 255], [2, 0, 0]]])  # (2, 2, 3): 5 x 0, 0 x 1, 4 x 2
    balance = class_balance(TensorDataset(torch.zeros(2, 3, 2, 3), masks))
    assert balance.tolist() == pytest.approx([5 / 9, 0.0, 4 / 9])


def test_class_balance_reads_a_segtutor_dataset_before_augmentation_and_leaves_its_epoch():
    data = TissueDataset(12, 32, seed=3, augment=True, classes=("stroma", "tumor", "background"))
    data.set_epoch(2)
    counts = sum(np.bincount(data.load_sample(i)[1].ravel(), minlength=3) for i in range(12))
    assert class_balance(data).tolist() == pytest.approx((counts / counts.sum()).tolist())
    assert data.epoch == 2  # no read was counted
    few = [0, 4, 7, 11]  # four samples spread evenly over twelve
    counts = sum(np.bincount(data.load_sample(i)[1].ravel(), minlength=3) for i in few)
    assert class_balance(data, max_samples=4).tolist() == pytest.approx((counts / counts.sum()).tolist())


def test_class_balance_of_nothing_labelled_is_zero():
    masks = torch.full((1, 4, 4), 255)
    assert class_balance(TensorDataset(torch.zeros(1, 3, 4, 4), masks)).sum() == 0
