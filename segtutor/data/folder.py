"""The learner's own data: a folder of images and a folder of masks, paired by file name."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from segtutor.data.augment import Augmentation, random_crop
from segtutor.data.datasets import SegmentationDataset
from segtutor.data.files import read_image, read_mask
from segtutor.data.preflight import Problem, preflight
from segtutor.models.contract import MIN_SIZE


class FolderDataset(SegmentationDataset):
    """Images and masks from two folders, paired by file stem (``images/a.jpg`` with ``masks/a.png``).

    Construction runs :func:`preflight` and raises a ValueError that lists every problem (with its fix) if
    there is any; ``dataset.report`` keeps the report, warnings and class balance included.

    Args:
        image_dir: folder of PNG, JPEG or TIFF images.
        mask_dir: folder of PNG or TIFF masks, one integer label per pixel.
        num_classes: number of classes; ``None`` takes 1 + the largest label found.
        class_names: a name per class; ``None`` gives "class 0", "class 1", ...
        crop_size: cut images into ``crop_size`` squares at random places (the same places every time), so
            that images of different sizes batch together; ``None`` keeps whole images (then images of
            different sizes get a warning in ``report``: only ``batch_size=1`` could train on them).
        crops_per_image: how many crops each image gives when ``crop_size`` is set.
        augment: flips, quarter turns and colour jitter, new each epoch.
        seed: seeds the crop windows and the augmentation.
        min_size: smallest image side accepted (the networks need at least ``MIN_SIZE`` = 32 pixels).
        augmentations: further random steps after the flips, turns and jitter (needs ``augment=True``), e.g.
            ``[HEDJitter(0.1)]`` or ``[RandomZoom(0.8, 1.25)]``.
        normalize: recolours every image before augmentation, e.g. ``MacenkoNormalizer(reference)``.

    Example:
        >>> data = FolderDataset("my_images", "my_masks", num_classes=2, crop_size=128, augment=True)
        >>> image, mask = data[0]  # (3, 128, 128) float32, (128, 128) int64
    """

    def __init__(
        self,
        image_dir: str | Path,
        mask_dir: str | Path,
        *,
        num_classes: int | None = None,
        class_names: Sequence[str] | None = None,
        crop_size: int | None = None,
        crops_per_image: int = 1,
        augment: bool = False,
        seed: int = 0,
        min_size: int = MIN_SIZE,
        augmentations: Sequence[Augmentation] = (),
        normalize: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        if class_names is not None and num_classes is not None and len(class_names) != num_classes:
            raise ValueError(f"class_names has {len(class_names)} names but num_classes is {num_classes}")
        if num_classes is None and class_names is not None:
            num_classes = len(class_names)
        whole_number = isinstance(crop_size, (int, np.integer)) and not isinstance(crop_size, bool)
        if crop_size is not None and not (whole_number and crop_size >= 1):
            raise ValueError(
                f"crop_size must be a whole number of pixels, at least 1 (the networks need {MIN_SIZE}), or None "
                f"for whole images; got {crop_size!r}"
            )
        if crops_per_image < 1 or (crops_per_image > 1 and crop_size is None):
            raise ValueError(f"crops_per_image must be 1, or at least 1 with a crop_size; got {crops_per_image}")
        if crop_size is not None:
            min_size = max(min_size, crop_size)
        self.report = preflight(image_dir, mask_dir, num_classes=num_classes, min_size=min_size)
        self.report.raise_if_errors()
        sizes = sorted(set(self.report.image_sizes.values()))  # (height, width) of the images
        if crop_size is None and len(sizes) > 1:
            listed = ", ".join(f"{h}x{w}" for h, w in sizes[:4]) + (", ..." if len(sizes) > 4 else "")
            crop = min(min(min(size) for size in sizes), 256)
            self.report.warnings.append(
                Problem(
                    str(image_dir),
                    f"the images have {len(sizes)} different sizes ({listed}), so a batch of two or more cannot "
                    "be stacked into one tensor",
                    f"pass crop_size={crop} (at most the smallest side), or train with batch_size=1",
                )
            )
        names = class_names or [f"class {k}" for k in range(self.report.num_classes)]
        super().__init__(names, seed=seed, augment=augment, augmentations=augmentations, normalize=normalize)
        self.pairs = self.report.pairs
        self.crop_size = crop_size
        self.crops_per_image = crops_per_image

    def __len__(self) -> int:
        return len(self.pairs) * self.crops_per_image

    def load_sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Sample ``index`` read from disk (and cropped): image uint8 (H, W, 3) and mask int64 (H, W)."""
        image_path, mask_path = self.pairs[index // self.crops_per_image]
        image, mask = read_image(image_path, warn=False), read_mask(mask_path)  # the report warned already
        if self.crop_size is not None:
            image, mask = random_crop(image, mask, self.crop_size, np.random.default_rng((self.seed, index)))
        return image, mask

    def __repr__(self) -> str:
        return (
            f"FolderDataset({str(self.report.image_dir)!r}, {str(self.report.mask_dir)!r}, "
            f"num_classes={self.num_classes}, crop_size={self.crop_size}, crops_per_image={self.crops_per_image}, "
            f"augment={self.augment}{self._extras_repr()}) with {len(self.pairs)} image/mask pairs"
        )
