"""Training crops from a whole slide and its QuPath annotations, read at one magnification when they are used.

A slide is far larger than a network's input, and most of it is not annotated. :class:`SlideDataset` first paints
the annotations into a coarse map (one cell per eighth of a crop), then places each crop around a random annotated
cell, so every crop holds annotated tissue. A crop is read from the slide only when the training loop asks for it:
the image with :meth:`Slide.read_region`, its mask with :meth:`Slide.read_mask`, both at the magnification asked
for. Nothing else of the slide is ever loaded, so a 40× scan of several gigabytes works as well as the sample.

Validation crops must come from another part of the tissue than the training crops (ideally another slide):
``region`` keeps a dataset's crops inside one rectangle of the slide.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from segtutor.data.augment import Augmentation
from segtutor.data.classes import IGNORE_INDEX
from segtutor.data.datasets import SegmentationDataset
from segtutor.data.preflight import preflight_slide
from segtutor.data.qupath import class_labels, load_qupath_annotations, paint_annotations, read_qupath_geojson
from segtutor.data.slide import Slide

CELLS_PER_CROP = 8  # the coarse map of annotated places has this many cells across one crop


class SlideDataset(SegmentationDataset):
    """Random square crops of a slide at one magnification, with their QuPath annotations as masks.

    Crop ``i`` is centred near a random annotated place inside ``region``, drawn from ``(seed, i)``: the same
    window every time. Construction runs :func:`preflight_slide` and raises a ValueError listing every problem
    (with its fix) if there is any; ``dataset.report`` keeps the report. Unannotated pixels and ``Ignore*``
    annotations get ``IGNORE_INDEX``: the loss and the metrics skip them.

    Args:
        slide: a :class:`Slide` or the path of a slide file.
        geojson_path: its annotations, exported from QuPath (File > Export objects as GeoJSON).
        magnification: the magnification to train at (10 for 10×, 1 µm/px); or
        mpp: the pixel size to train at, in µm.
        tile_size: side of each square crop, in pixels at that magnification.
        num_tiles: number of crops (the dataset's length).
        region: ``(x, y, width, height)`` in level-0 pixels that the crops lie inside; default: the whole slide.
        class_names: label order, e.g. ``("Stroma", "Tumor")``; ``None``: the order of the GeoJSON file.
        unclassified: annotations without a class: "error", "ignore" or "skip" (see :func:`load_qupath_annotations`).
        balance: centre as many crops on each annotated class as on any other (pick a class, then a place
            annotated with it), instead of placing them in proportion to the annotated area.
        seed: places the crops; also seeds the augmentation.
        augment: flips, quarter turns and colour jitter, new each epoch.
        augmentations: further random steps (need ``augment=True``), e.g. ``[HEDJitter(0.1)]``.
        normalize: recolours every crop before augmentation, e.g. ``MacenkoNormalizer(reference)``.
        cache: keep read crops in memory (about 200 kB per 128 × 128 crop) instead of reading them again.

    Attributes:
        class_colors: the annotator's colour of each class, from the GeoJSON file.
        microns_per_pixel: the crops' pixel size in µm.
        origins: ``(num_tiles, 2)`` level-0 ``(x, y)`` of each crop's top-left corner.

    Example:
        >>> slide_path, geojson_path = write_sample_slide("data")
        >>> train = SlideDataset(slide_path, geojson_path, magnification=10, tile_size=128, num_tiles=64,
        ...                      region=(0, 0, 1152, 1536), augment=True)
        >>> image, mask = train[0]  # (3, 128, 128) float32, (128, 128) int64: 0 Stroma, 1 Tumor, 255 ignored
    """

    def __init__(
        self,
        slide: Slide | str | Path,
        geojson_path: str | Path,
        *,
        magnification: float | None = None,
        mpp: float | None = None,
        tile_size: int = 128,
        num_tiles: int = 64,
        region: tuple[int, int, int, int] | None = None,
        class_names: Sequence[str] | None = None,
        unclassified: str = "error",
        balance: bool = False,
        seed: int = 0,
        augment: bool = False,
        augmentations: Sequence[Augmentation] = (),
        normalize: Callable[[np.ndarray], np.ndarray] | None = None,
        cache: bool = True,
    ) -> None:
        if not isinstance(tile_size, (int, np.integer)) or tile_size < 1:
            raise ValueError(f"tile_size must be a positive number of pixels, e.g. 128, got {tile_size!r}")
        if num_tiles < 1:
            raise ValueError(f"num_tiles must be at least 1, got {num_tiles}")
        slide = slide if isinstance(slide, Slide) else Slide(slide)
        geojson_path = Path(geojson_path)

        # 1) The slide and its annotations, checked at this magnification.
        self.report = preflight_slide(
            slide.path, geojson_path, magnification=magnification, mpp=mpp, class_names=class_names,
            slide_mpp=slide.mpp, unclassified=unclassified,
        )  # fmt: skip
        self.report.raise_if_errors()
        super().__init__(
            self.report.class_names, seed=seed, augment=augment, augmentations=augmentations, normalize=normalize
        )
        self.slide, self.geojson_path = slide, geojson_path
        self.magnification, self.mpp = magnification, mpp
        self.unclassified, self.balance = unclassified, balance
        self.tile_size, self.num_tiles, self.cache = int(tile_size), num_tiles, cache
        self.scale = slide.downsample(mpp=mpp, magnification=magnification)  # level-0 pixels per crop pixel
        self.microns_per_pixel = self.scale * slide.mpp
        self.region = self._check_region(region)

        # 2) Where the annotations are: a coarse map of the region, one cell per 1/8 of a crop.
        x, y, width, height = self.region
        cell = self.scale * max(self.tile_size // CELLS_PER_CROP, 1)  # level-0 pixels per map cell
        shape = (max(int(height // cell), 1), max(int(width // cell), 1))
        coarse = load_qupath_annotations(
            geojson_path, shape, class_names=self.class_names, downsample=cell, origin=(x, y),
            image_size=slide.dimensions, unclassified=unclassified,
        )  # fmt: skip
        self.class_colors = coarse.colors
        annotated = np.argwhere(coarse.mask != IGNORE_INDEX)  # (n, 2) rows, cols of annotated cells
        if len(annotated) == 0:
            raise ValueError(
                f"region {self.region} (level-0 x, y, width, height) holds no annotated tissue in "
                f"{geojson_path.name}; move it over the annotations, or leave region=None for the whole slide"
            )

        # 3) One crop per index: around a random annotated cell (anywhere in it), moved inside the region; with
        #    balance=True, a random class first, then a cell of that class.
        cell_class = coarse.mask[annotated[:, 0], annotated[:, 1]]  # (n,)
        groups = [annotated[cell_class == k] for k in np.unique(cell_class)] if balance else [annotated]
        picks = []
        for index in range(num_tiles):
            rng = np.random.default_rng((seed, index))
            group = groups[rng.integers(len(groups))]
            picks.append(group[rng.integers(len(group))] + rng.random(2))  # (row, col) in cells
        picks = np.array(picks)  # (num_tiles, 2)
        centres = np.array([x, y]) + picks[:, ::-1] * cell  # level-0 (x, y)
        span = self.tile_size * self.scale  # a crop's side in level-0 pixels
        corner = np.clip(centres - span / 2, [x, y], [x + width - span, y + height - span])
        self.origins = np.floor(corner).astype(np.int64)  # whole level-0 pixels, still inside the region
        self._annotations = read_qupath_geojson(geojson_path)  # parsed once; painted for each crop
        self._labels, _, _ = class_labels(self._annotations, self.class_names, unclassified=unclassified)
        self._tiles: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _check_region(self, region: tuple[int, int, int, int] | None) -> tuple[int, int, int, int]:
        """``region`` as whole level-0 pixels inside the slide, large enough for one crop."""
        slide_width, slide_height = self.slide.dimensions
        if region is None:
            return 0, 0, slide_width, slide_height
        if len(region) != 4:
            raise ValueError(f"region must be (x, y, width, height) in level-0 pixels, got {region!r}")
        x, y, width, height = (int(round(v)) for v in region)
        if x < 0 or y < 0 or x + width > slide_width or y + height > slide_height:
            raise ValueError(
                f"region x {x}..{x + width}, y {y}..{y + height} reaches outside the slide ({slide_width} x "
                f"{slide_height} level-0 pixels)"
            )
        span = int(np.ceil(self.tile_size * self.scale))
        if width < span or height < span:
            raise ValueError(
                f"region {width} x {height} level-0 pixels is smaller than one crop: {self.tile_size} pixels at "
                f"{self.microns_per_pixel:g} µm/px are {span} level-0 pixels; enlarge the region or lower tile_size"
            )
        return x, y, width, height

    def __len__(self) -> int:
        return self.num_tiles

    def load_sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Crop ``index`` read from the slide: image uint8 (tile, tile, 3) and mask uint8 (tile, tile)."""
        if index in self._tiles:
            return self._tiles[index]
        origin = tuple(int(v) for v in self.origins[index])
        size = (self.tile_size, self.tile_size)
        image = self.slide.read_region(origin, size, magnification=self.magnification, mpp=self.mpp)  # (tile, tile, 3)
        # the same mask as self.slide.read_mask(geojson_path, origin, size, ...), without parsing the file again
        mask = paint_annotations(self._annotations, self._labels, size[::-1], origin=origin, downsample=self.scale)
        tile = (image, mask)
        if self.cache:
            self._tiles[index] = tile
        return tile

    def __repr__(self) -> str:
        at = f"{self.magnification:g}×" if self.magnification is not None else f"{self.mpp:g} µm/px"
        side = self.tile_size * self.microns_per_pixel
        return (
            f"SlideDataset({self.slide.path.name!r}, {self.geojson_path.name!r}, {at}: {self.num_tiles} crops of "
            f"{self.tile_size} x {self.tile_size} px = {side:.0f} x {side:.0f} µm, region={self.region}, "
            f"classes={self.class_names}, balance={self.balance}, seed={self.seed}, augment={self.augment})"
        )
