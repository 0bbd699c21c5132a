"""torch Datasets of (image, mask) pairs, and the generated-tissue dataset.

Every segtutor dataset yields ``image`` float32 (3, H, W) in [0, 1] and ``mask`` int64 (H, W), and carries
``class_names``, ``class_colors`` and ``num_classes``. Augmentation is reproducible: sample ``i`` in epoch ``e``
always gets the same flip, turn and colour jitter (and extra :class:`~segtutor.data.augment.Augmentation` steps),
drawn from ``(seed, i, e)``. A stain normaliser, if given, recolours every image before that.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from segtutor.data.augment import Augmentation
from segtutor.data.augment import augment as augment_pair
from segtutor.data.classes import IGNORE_INDEX, class_colors
from segtutor.data.tissue import Lab, check_tissue_classes, generate_tile, get_lab, random_lab


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
    recolours them (``normalize``), turns them into tensors and augments them (``augment``, ``augmentations``).

    Epochs: with ``augment=True`` the dataset counts its reads, and read ``r`` belongs to epoch ``r // len(self)``,
    so a training loop that reads every sample once per epoch gets new augmentations each epoch without doing
    anything. ``set_epoch(e)`` sets the epoch by hand (needed with DataLoader worker processes, which count
    reads on copies of the dataset), as ``DistributedSampler.set_epoch`` does.

    Args:
        class_names: names of the classes, in label order.
        seed: seeds the augmentation.
        augment: flips, quarter turns and colour jitter (:func:`~segtutor.data.augment.augment`), new each epoch.
        augmentations: further random steps run after those, each ``step(image, mask, rng)``, e.g.
            ``[HEDJitter(0.1), RandomZoom(0.8, 1.25)]``; they need ``augment=True``.
        normalize: recolours every image, uint8 (H, W, 3) to uint8 (H, W, 3), before anything else, with or
            without augmentation, e.g. a :class:`~segtutor.data.stain.MacenkoNormalizer`.
    """

    def __init__(
        self,
        class_names: Sequence[str],
        *,
        seed: int,
        augment: bool,
        augmentations: Sequence[Augmentation] = (),
        normalize: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        augmentations = tuple(augmentations)
        if augmentations and not augment:
            raise ValueError(
                f"augmentations {list(augmentations)} run only in augmented training; pass augment=True as well"
            )
        if normalize is not None and not callable(normalize):
            raise TypeError(f"normalize must be a function of a uint8 (H, W, 3) image, got {type(normalize).__name__}")
        self.class_names = tuple(class_names)
        self.class_colors = class_colors(self.class_names)
        self.num_classes = len(self.class_names)
        self.seed = seed
        self.augment = augment
        self.augmentations = augmentations
        self.normalize = normalize
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

    def _extras_repr(self) -> str:
        """The non-default settings for ``__repr__``: extra augmentations, normaliser."""
        extras = ""
        if self.augmentations:
            extras += f", augmentations={list(self.augmentations)}"
        if self.normalize is not None:
            extras += f", normalize={self.normalize!r}"
        return extras

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``image`` float32 (3, H, W) in [0, 1] and ``mask`` int64 (H, W) of sample ``index``."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} is out of range for a dataset of {len(self)} samples")
        index = index % len(self)
        image, mask = self.load_sample(index)
        if self.normalize is not None:
            image = self.normalize(image)
            if image.dtype != np.uint8 or image.shape[:2] != mask.shape or image.shape[2:] != (3,):
                raise TypeError(
                    f"normalize must return a uint8 (H, W, 3) image of the mask's size {mask.shape}, got "
                    f"{image.dtype} {image.shape}"
                )
        image, mask = to_tensors(image, mask)
        if self.augment:
            rng = np.random.default_rng((self.seed, index, self.epoch))
            image, mask = augment_pair(image, mask, rng)
            for step in self.augmentations:
                image, mask = step(image, mask, rng)
            self._reads += 1
        return image, mask


def class_balance(dataset: Dataset, *, max_samples: int = 64, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """Share of the labelled pixels in each class: float64 ``(K,)`` summing to 1 (all zeros if nothing is labelled).

    Counts the masks of up to ``max_samples`` samples spread evenly over ``dataset`` (all of a small one). A segtutor
    dataset's masks are read before augmentation (:meth:`SegmentationDataset.load_sample`), which leaves its epoch
    count alone; any other dataset is indexed, ``dataset[i][1]``. ``K`` is ``dataset.num_classes`` if it has one, else
    the largest label seen + 1; ``ignore_index`` pixels are not counted.

    Example:
        >>> class_balance(TissueDataset(64)).round(2)  # stroma, tumor
        array([0.6, 0.4])
    """
    size = len(dataset)
    indices = np.unique(np.linspace(0, size - 1, min(size, max_samples)).round().astype(int)) if size else []
    read = dataset.load_sample if isinstance(dataset, SegmentationDataset) else lambda i: dataset[i]
    counts = np.zeros(getattr(dataset, "num_classes", 0), dtype=np.int64)
    for index in indices:
        mask = read(int(index))[1]
        mask = np.asarray(mask.cpu() if torch.is_tensor(mask) else mask)
        labels = mask[(mask != ignore_index) & (mask >= 0)].astype(np.int64).ravel()
        seen = np.bincount(labels, minlength=len(counts))
        counts = np.pad(counts, (0, len(seen) - len(counts))) + seen
    total = counts.sum()
    return counts / total if total else counts.astype(np.float64)


class TissueDataset(SegmentationDataset):
    """Generated H&E-like tiles (tumor nests in stroma) with exact masks; see :func:`generate_tile`.

    Tile ``i`` is ``generate_tile(tile_size, seed=tile_seed(seed, i), classes=classes, lab=lab)``: random
    access, the same every time, and different for every ``seed``. For a validation set, use another seed:
    ``TissueDataset(64, seed=1)`` shares no tile with ``TissueDataset(256, seed=0)``. With the same seed, another
    lab gives the same tissue, stained and scanned there: ``TissueDataset(64, seed=1, lab="B")``.

    Args:
        num_tiles: number of tiles.
        tile_size: height and width of each tile in pixels.
        seed: which tiles; also seeds the augmentation.
        classes: class names in label order (see :func:`generate_tile`).
        augment: flips, quarter turns and colour jitter, new each epoch.
        cache: keep generated tiles in memory (about 65 kB per 128x128 tile) instead of regenerating them.
        lab: which lab stains and scans the tiles: a name from ``LABS`` ("A", "B", "C") or a ``Lab``; None is "A".
        augmentations: further random steps after the flips, turns and jitter (needs ``augment=True``), e.g.
            ``[HEDJitter(0.1)]`` or ``[RandomZoom(0.8, 1.25)]``.
        normalize: recolours every tile before augmentation, e.g. ``MacenkoNormalizer(reference)``.

    Example:
        >>> train = TissueDataset(256, seed=0, augment=True, augmentations=[HEDJitter(0.1)])
        >>> val = TissueDataset(64, seed=1)
        >>> other_lab = TissueDataset(64, seed=2, lab="B")
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
        lab: str | Lab | None = None,
        augmentations: Sequence[Augmentation] = (),
        normalize: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        super().__init__(
            check_tissue_classes(classes),
            seed=seed,
            augment=augment,
            augmentations=augmentations,
            normalize=normalize,
        )
        if num_tiles < 1:
            raise ValueError(f"num_tiles must be at least 1, got {num_tiles}")
        self.num_tiles = num_tiles
        self.tile_size = tile_size
        self.cache = cache
        self.lab = get_lab(lab)
        self._tiles: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # index -> (image uint8, mask uint8)

    def __len__(self) -> int:
        return self.num_tiles

    def with_lab(self, lab: str | Lab | None) -> TissueDataset:
        """The same tiles (same tissue, same settings) as lab ``lab`` stains and scans them.

        Example:
            >>> val_b = TissueDataset(16, seed=1).with_lab("B")  # test on another lab
        """
        return TissueDataset(self.num_tiles, self.tile_size, seed=self.seed, classes=self.class_names,
                             augment=self.augment, cache=self.cache, lab=lab, augmentations=self.augmentations,
                             normalize=self.normalize)  # fmt: skip

    def load_sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Tile ``index`` before augmentation: image uint8 (H, W, 3) and mask uint8 (H, W)."""
        if index in self._tiles:
            return self._tiles[index]
        image, mask = generate_tile(
            self.tile_size, seed=tile_seed(self.seed, index), classes=self.class_names, lab=self.lab
        )
        tile = (image, mask.astype(np.uint8))
        if self.cache:
            self._tiles[index] = tile
        return tile

    def __repr__(self) -> str:
        return (
            f"TissueDataset(num_tiles={self.num_tiles}, tile_size={self.tile_size}, seed={self.seed}, "
            f"classes={self.class_names}, augment={self.augment}{self._extras_repr()})"
        )

    def _extras_repr(self) -> str:
        """The non-default settings: lab, extra augmentations, normaliser."""
        lab = f", lab={self.lab.name!r}" if self.lab != get_lab(None) else ""
        return lab + super()._extras_repr()


class ManyLabsDataset(TissueDataset):
    """Generated tiles, each stained and scanned in a lab of its own (:func:`~segtutor.data.tissue.random_lab`).

    Tile ``i`` is the tissue of ``TissueDataset(seed=seed)``'s tile ``i``, from a lab drawn from ``(seed, i)``:
    pooled data from many labs, as a pretrained encoder sees it (:mod:`segtutor.train.pretrain`).

    Args:
        num_tiles, tile_size, seed, classes, augment, cache, augmentations, normalize: as in :class:`TissueDataset`.

    Example:
        >>> pooled = ManyLabsDataset(512, 96, seed=0, augment=True)
        >>> pooled.lab_of(3).blur_sigma  # the scanner blur of tile 3's lab
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
        augmentations: Sequence[Augmentation] = (),
        normalize: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        super().__init__(num_tiles, tile_size, seed=seed, classes=classes, augment=augment, cache=cache,
                         augmentations=augmentations, normalize=normalize)  # fmt: skip

    def lab_of(self, index: int) -> Lab:
        """The lab that stains and scans tile ``index``."""
        return random_lab(np.random.default_rng((self.seed, index, 1)), name=f"lab of tile {index}")

    def load_sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Tile ``index`` from its own lab, before augmentation: image uint8 (H, W, 3) and mask uint8 (H, W)."""
        if index in self._tiles:
            return self._tiles[index]
        image, mask = generate_tile(
            self.tile_size, seed=tile_seed(self.seed, index), classes=self.class_names, lab=self.lab_of(index)
        )
        tile = (image, mask.astype(np.uint8))
        if self.cache:
            self._tiles[index] = tile
        return tile

    def __repr__(self) -> str:
        return super().__repr__().replace("TissueDataset(", "ManyLabsDataset(", 1)
