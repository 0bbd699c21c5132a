"""torch Datasets of (image, mask) pairs, and the generated-tissue dataset.

Every segtutor dataset yields ``image`` float32 (3, H, W) in [0, 1] and ``mask`` int64 (H, W), and carries
``class_names``, ``class_colors`` and ``num_classes``. Augmentation is reproducible: sample ``i`` in epoch ``e``
always gets the same flip, turn and colour jitter, drawn from ``(seed, i, e)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from segtutor.data.augment import augment as augment_pair
from segtutor.data.classes import class_colors
from segtutor.data.tissue import check_tissue_classes, generate_tile


def to_tensors(image: np.ndarray, mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Numpy image and mask to the tensors a network eats.

    Args:
        image: uint8 (H, W, 3) RGB.
        mask: integer (H, W) labels.

    Returns:
        ``image`` float32 (3, H, W) in [0, 1] and ``mask`` int64 (H, W).
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise TypeError(f"image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    image_tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)  # (3, H, W)
    return image_tensor, torch.tensor(mask, dtype=torch.int64)


def tile_seed(seed: int, index: int) -> int:
    """The seed of tile ``index`` in a dataset with ``seed``: a hash of both, so no two datasets share tiles."""
    return int(np.random.SeedSequence((seed, index)).generate_state(1)[0])


class SegmentationDataset(Dataset):
    """What every segtutor dataset shares: class names and colours, and reproducible augmentation.

    A subclass says how many samples it has (``__len__``) and how to load one (``load_sample``); this class
    turns them into tensors and augments them.

    Epochs: with ``augment=True`` the dataset counts its reads, and read ``r`` belongs to epoch ``r // len(self)``,
    so a training loop that reads every sample once per epoch gets new augmentations each epoch without doing
    anything. ``set_epoch(e)`` sets the epoch by hand (needed with DataLoader worker processes, which count
    reads on copies of the dataset), as ``DistributedSampler.set_epoch`` does.
    """

    def __init__(self, class_names: Sequence[str], *, seed: int, augment: bool) -> None:
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        self.class_names = tuple(class_names)
        self.class_colors = class_colors(self.class_names)
        self.num_classes = len(self.class_names)
        self.seed = seed
        self.augment = augment
        self._reads = 0  # augmented reads so far; the epoch is reads // len(self)

    @property
    def epoch(self) -> int:
        """The epoch whose augmentations ``__getitem__`` returns."""
        return self._reads // max(len(self), 1)

    def set_epoch(self, epoch: int) -> None:
        """Return the augmentations of ``epoch`` from now on (epochs then keep advancing by themselves)."""
        if epoch < 0:
            raise ValueError(f"epoch must be a non-negative integer, got {epoch}")
        self._reads = epoch * len(self)

    def load_sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Sample ``index`` before augmentation: image uint8 (H, W, 3) and mask integer (H, W)."""
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``image`` float32 (3, H, W) in [0, 1] and ``mask`` int64 (H, W) of sample ``index``."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for a dataset of {len(self)} samples")
        index = index % len(self)
        image, mask = to_tensors(*self.load_sample(index))
        if self.augment:
            rng = np.random.default_rng((self.seed, index, self.epoch))
            image, mask = augment_pair(image, mask, rng)
            self._reads += 1
        return image, mask


class TissueDataset(SegmentationDataset):
    """Generated H&E-like tiles (tumor nests in stroma) with exact masks; see :func:`generate_tile`.

    Tile ``i`` is ``generate_tile(tile_size, seed=tile_seed(seed, i), classes=classes)``: random access,
    the same every time, and different for every ``seed``. For a validation set, use another seed:
    ``TissueDataset(64, seed=1)`` shares no tile with ``TissueDataset(256, seed=0)``.

    Args:
        num_tiles: number of tiles.
        tile_size: height and width of each tile in pixels.
        seed: which tiles; also seeds the augmentation.
        classes: class names in label order (see :func:`generate_tile`).
        augment: flips, quarter turns and colour jitter, new each epoch.
        cache: keep generated tiles in memory (about 65 kB per 128x128 tile) instead of regenerating them.

    Example:
        >>> train = TissueDataset(256, seed=0, augment=True)
        >>> val = TissueDataset(64, seed=1)
        >>> image, mask = train[0]  # (3, 128, 128) float32, (128, 128) int64
    """

    def __init__(
        self,
        num_tiles: int = 256,
        tile_size: int = 128,
        *,
        seed: int = 0,
        classes: Sequence[str] = ("stroma", "tumor"),
        augment: bool = False,
        cache: bool = True,
    ) -> None:
        super().__init__(check_tissue_classes(classes), seed=seed, augment=augment)
        if num_tiles < 1:
            raise ValueError(f"num_tiles must be at least 1, got {num_tiles}")
        self.num_tiles = num_tiles
        self.tile_size = tile_size
        self.cache = cache
        self._tiles: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # index -> (image uint8, mask uint8)

    def __len__(self) -> int:
        return self.num_tiles

    def load_sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Tile ``index`` before augmentation: image uint8 (H, W, 3) and mask uint8 (H, W)."""
        if index in self._tiles:
            return self._tiles[index]
        image, mask = generate_tile(self.tile_size, seed=tile_seed(self.seed, index), classes=self.class_names)
        tile = (image, mask.astype(np.uint8))
        if self.cache:
            self._tiles[index] = tile
        return tile

    def __repr__(self) -> str:
        return (
            f"TissueDataset(num_tiles={self.num_tiles}, tile_size={self.tile_size}, seed={self.seed}, "
            f"classes={self.class_names}, augment={self.augment})"
        )
