"""Whole-slide images: a region read at a chosen magnification, without loading the whole slide.

A scanned slide is too large to load (a 40× scan of 2 × 2 cm is 80,000 × 80,000 pixels, 19 GB of RGB). Slide
files are therefore *pyramids* of *tiles*: the full-resolution image, then copies at 1/2, 1/4, ... of it
(the levels), each cut into tiles of e.g. 256 × 256 pixels stored one by one. To read a region at 10×, take the
level closest to 10× that is at least as sharp, read only the tiles the region touches, and resample them to
exactly the pixel size asked for.

Magnification, here, is a name for a pixel size: ``µm per pixel = 10 / magnification``, so 40× ≈ 0.25 µm/px,
20× ≈ 0.5 µm/px, 10× ≈ 1.0 µm/px (scanners' convention; a real scanner's "20×" is within a few percent of
0.5 µm/px). The pixel size comes from the file: OME-TIFF ``PhysicalSizeX``, Aperio SVS ``MPP`` in the image
description, or the TIFF ``XResolution`` in pixels per cm or inch. tifffile reads OME-TIFF, SVS and pyramidal
TIFF (JPEG- and LZW-compressed tiles need ``imagecodecs``).
"""

from __future__ import annotations

import re
import warnings
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from segtutor.data.files import FileFormatError
from segtutor.data.qupath import AnnotationMask, load_qupath_annotations

# µm per pixel times magnification: 40× is 0.25 µm/px, 20× is 0.5, 10× is 1.0.
MAGNIFICATION_MPP = 10.0

# Pixel sizes a microscope gives (0.5× to 200×); a TIFF resolution outside this range is a print setting
# (image editors write 72 or 300 dpi, i.e. 353 or 85 µm per pixel), not a scan's.
PLAUSIBLE_MPP = (0.05, 20.0)

# A level whose pixels are at most this much coarser than asked for is used as is (no upsampling worth it).
LEVEL_TOLERANCE = 0.01

OME_UNITS_IN_UM = {"nm": 1e-3, "µm": 1.0, "um": 1.0, "mm": 1e3, "cm": 1e4, "m": 1e6}  # OME PhysicalSizeXUnit


def magnification_to_mpp(magnification: float) -> float:
    """µm per pixel of a magnification, by the scanners' convention (40× = 0.25 µm/px).

    Example:
        >>> magnification_to_mpp(20)
        0.5
    """
    if magnification <= 0:
        raise ValueError(f"magnification must be positive (e.g. 10 for 10×), got {magnification}")
    return MAGNIFICATION_MPP / magnification


@dataclass(frozen=True)
class SlideLevel:
    """One level of a slide's pyramid."""

    dimensions: tuple[int, int]  # (width, height) in pixels
    downsample: float  # level-0 pixels per pixel of this level (1 for level 0)
    mpp: float | None  # µm per pixel; None when the slide's pixel size is unknown
    tile: tuple[int, int]  # (width, height) of one stored tile (a strip for untiled TIFFs)


class Slide:
    """A whole-slide image (pyramidal TIFF, OME-TIFF, Aperio SVS): its levels, pixel size, and regions of it.

    Coordinates follow OpenSlide's: ``(x, y)`` in level-0 (full-resolution) pixels, x to the right, y down;
    sizes are ``(width, height)``.

    Args:
        path: the slide file.
        mpp: the level-0 pixel size in µm, for files that lack it (or to override a wrong one).

    Example:
        >>> slide_path, geojson_path = write_sample_slide("data")
        >>> slide = Slide(slide_path)
        >>> slide.mpp, slide.dimensions
        (1.0, (1536, 1536))
        >>> image = slide.read_region((512, 512), (256, 256), magnification=5)  # 2 µm/px: 512 x 512 µm
        >>> image.shape
        (256, 256, 3)
    """

    def __init__(self, path: str | Path, *, mpp: float | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path} does not exist")
        if mpp is not None and not mpp > 0:
            raise ValueError(f"mpp must be a positive pixel size in µm, got {mpp}")
        try:
            with tifffile.TiffFile(self.path) as tif:
                levels = _read_levels(tif.series[0], self.path)
                file_mpp, self.mpp_source = _read_mpp(tif)
        except FileFormatError:
            raise
        except Exception as error:  # tifffile raises many kinds of error for a file it cannot parse
            raise FileFormatError(
                self.path,
                f"not a TIFF slide ({type(error).__name__}: {error})",
                "Slide reads TIFF, OME-TIFF and SVS; convert other formats to OME-TIFF (QuPath: File > Export "
                "images > OME TIFF)",
            ) from error
        if mpp is not None:
            file_mpp, self.mpp_source = float(mpp), "given"
        self.mpp: float | None = file_mpp  # µm per level-0 pixel
        self.levels: tuple[SlideLevel, ...] = tuple(
            SlideLevel(level.dimensions, level.downsample, None if file_mpp is None else file_mpp * level.downsample,
                       level.tile)
            for level in levels
        )

    @property
    def dimensions(self) -> tuple[int, int]:
        """(width, height) of level 0, in pixels."""
        return self.levels[0].dimensions

    @property
    def magnification(self) -> float | None:
        """The magnification level 0 corresponds to (10 / mpp), or None when the pixel size is unknown."""
        return None if self.mpp is None else MAGNIFICATION_MPP / self.mpp

    def downsample(self, *, mpp: float | None = None, magnification: float | None = None) -> float:
        """Level-0 pixels per output pixel at a pixel size (``mpp``) or ``magnification``; 1 when neither is given.

        Example:
            >>> slide = Slide(write_sample_slide("data")[0])  # level 0 is 1 µm/px
            >>> slide.downsample(magnification=5)
            2.0
        """
        target = self._target_mpp(mpp, magnification)
        return 1.0 if target is None else target / self.mpp

    def size_at(self, *, mpp: float | None = None, magnification: float | None = None) -> tuple[int, int]:
        """(width, height) of the whole slide at a pixel size or magnification, rounded down.

        Example:
            >>> slide = Slide(write_sample_slide("data")[0])
            >>> slide.size_at(magnification=2.5)
            (384, 384)
            >>> thumbnail = slide.read_region((0, 0), slide.size_at(magnification=2.5), magnification=2.5)
        """
        scale = self.downsample(mpp=mpp, magnification=magnification)
        width, height = self.dimensions
        return int(np.floor(width / scale + 1e-9)), int(np.floor(height / scale + 1e-9))

    def read_region(
        self,
        origin_xy: tuple[float, float],
        size: tuple[int, int],
        *,
        mpp: float | None = None,
        magnification: float | None = None,
    ) -> np.ndarray:
        """A region of the slide at a pixel size or magnification, reading only the tiles it touches.

        Args:
            origin_xy: (x, y) of the region's top-left corner in level-0 pixels.
            size: (width, height) of the output in pixels (at the resolution asked for).
            mpp: output pixel size in µm; or
            magnification: output magnification (10 for 10×, 1 µm/px). Neither: level 0 as it is.

        Returns:
            uint8 (height, width, 3) RGB. Output pixel (row, col) covers level-0 x from
            ``x + col * d`` to ``x + (col + 1) * d`` with ``d = self.downsample(...)``, as the masks of
            :meth:`read_mask` do.

        Raises:
            ValueError: the region reaches outside the slide; the slide has no pixel size and ``mpp`` or
                ``magnification`` was asked for.
        """
        scale = self.downsample(mpp=mpp, magnification=magnification)
        box = self._level0_box(origin_xy, size, scale)
        width, height = _check_size(size)

        # 1) Level: the coarsest whose pixels are no larger than the output's (within 1 %).
        index = max(
            (i for i, level in enumerate(self.levels) if level.downsample <= scale * (1 + LEVEL_TOLERANCE)),
            key=lambda i: self.levels[i].downsample,
            default=0,
        )
        if scale < 1 - LEVEL_TOLERANCE:
            warnings.warn(
                f"{self.path.name}: {self._describe(scale * (self.mpp or 1.0))} is finer than the scan "
                f"({self.mpp:g} µm/px); the region is upsampled and shows no more detail",
                UserWarning,
                stacklevel=2,
            )
        level = self.levels[index]

        # 2) The region in that level's pixels (the level's own size ratios, which may round).
        level_width, level_height = level.dimensions
        ratio_x, ratio_y = level_width / self.dimensions[0], level_height / self.dimensions[1]
        x0, y0, x1, y1 = box[0] * ratio_x, box[1] * ratio_y, box[2] * ratio_x, box[3] * ratio_y

        # 3) Pixels that line up with the level's (same size, whole-pixel corner): read just those.
        if np.allclose([x1 - x0, y1 - y0, x0, y0], [width, height, round(x0), round(y0)], atol=1e-6):
            return self.read_level(index, (round(x0), round(y0)), (width, height))

        # 4) Otherwise read the level's pixels under the region, with a margin for the filter, and resample them
        #    to exactly the size asked for with Pillow's antialiased bilinear filter over the region's box.
        zoom = max((x1 - x0) / width, (y1 - y0) / height)  # level pixels per output pixel
        margin = int(np.ceil(max(zoom, 1.0) / 2)) + 1  # the filter reaches zoom / 2 beyond the outermost centre
        left, top = max(int(np.floor(x0)) - margin, 0), max(int(np.floor(y0)) - margin, 0)
        right = min(int(np.ceil(x1)) + margin, level_width)
        bottom = min(int(np.ceil(y1)) + margin, level_height)
        pixels = self.read_level(index, (left, top), (right - left, bottom - top))
        box_in_window = np.clip([x0 - left, y0 - top, x1 - left, y1 - top], 0, [right - left, bottom - top] * 2)
        resized = Image.fromarray(pixels).resize(
            (width, height), Image.Resampling.BILINEAR, box=tuple(float(v) for v in box_in_window)
        )
        return np.array(resized)  # a writable copy (torch.from_numpy warns about read-only arrays)

    def read_mask(
        self,
        geojson_path: str | Path,
        origin_xy: tuple[float, float],
        size: tuple[int, int],
        *,
        mpp: float | None = None,
        magnification: float | None = None,
        class_names: Sequence[str] | None = None,
        unclassified: str = "error",
    ) -> AnnotationMask:
        """The QuPath annotations of the same region as :meth:`read_region`, pixel for pixel.

        Annotations beyond the region are cut at its border; annotations beyond the slide are an error.

        Returns:
            An :class:`AnnotationMask` (unpacks as ``mask, class_names``), ``mask`` int64 (height, width).

        Example:
            >>> slide_path, geojson_path = write_sample_slide("data")
            >>> slide = Slide(slide_path)
            >>> image = slide.read_region((256, 256), (512, 512), magnification=5)  # (512, 512, 3)
            >>> mask, class_names = slide.read_mask(geojson_path, (256, 256), (512, 512), magnification=5)
            >>> mask.shape, class_names
            ((512, 512), ('Stroma', 'Tumor'))
        """
        scale = self.downsample(mpp=mpp, magnification=magnification)
        self._level0_box(origin_xy, size, scale)
        width, height = _check_size(size)
        return load_qupath_annotations(
            geojson_path,
            (height, width),
            class_names=class_names,
            downsample=scale,
            origin=(float(origin_xy[0]), float(origin_xy[1])),
            image_size=self.dimensions,
            unclassified=unclassified,
        )

    def read_level(self, index: int, origin_xy: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
        """Pixels of one pyramid level as stored, decoding only the tiles the window touches.

        Args:
            index: the level (0: full resolution).
            origin_xy: (x, y) of the window's top-left corner, in pixels of that level.
            size: (width, height) of the window.

        Returns:
            uint8 (height, width, 3) RGB.
        """
        if not 0 <= index < len(self.levels):
            raise IndexError(f"level {index} does not exist; this slide has levels 0..{len(self.levels) - 1}")
        (x, y), (width, height) = origin_xy, size
        level_width, level_height = self.levels[index].dimensions
        if x < 0 or y < 0 or width < 1 or height < 1 or x + width > level_width or y + height > level_height:
            raise ValueError(
                f"window x {x}..{x + width}, y {y}..{y + height} is not inside level {index} "
                f"({level_width} x {level_height} pixels)"
            )
        with tifffile.TiffFile(self.path) as tif:
            pages = tif.series[0].levels[index].pages
            try:
                return _read_window(pages, x, y, width, height)
            except Exception as error:  # each codec raises its own kind of error for a damaged tile
                message = f"{type(error).__name__}: {error}"
                fix = (
                    "install imagecodecs (`pip install imagecodecs`): tifffile decodes this slide's compression "
                    "through it"
                    if "imagecodecs" in message
                    else "check that the file opens in QuPath, or export it again"
                )
                raise FileFormatError(self.path, f"cannot decode its tiles ({message})", fix) from error

    def _target_mpp(self, mpp: float | None, magnification: float | None) -> float | None:
        """The output pixel size asked for, or None for level 0 as it is."""
        if mpp is not None and magnification is not None:
            raise ValueError("give either mpp or magnification, not both")
        if mpp is None and magnification is None:
            return None
        target = magnification_to_mpp(magnification) if magnification is not None else float(mpp)
        if not target > 0:
            raise ValueError(f"mpp must be a positive pixel size in µm, got {mpp}")
        if self.mpp is None:
            raise ValueError(
                f"{self.path.name} does not say its pixel size ({self.mpp_source}), so "
                f"{self._describe(target)} cannot be found; pass it yourself: Slide(path, mpp=0.25) for a 40× "
                "scan, 0.5 for 20×, 1.0 for 10× (QuPath shows it under Image > Pixel width)"
            )
        return target

    def _level0_box(self, origin_xy: tuple[float, float], size: tuple[int, int], scale: float) -> tuple[float, ...]:
        """(x0, y0, x1, y1) of a region in level-0 pixels, after checking it lies inside the slide."""
        width, height = _check_size(size)
        x0, y0 = float(origin_xy[0]), float(origin_xy[1])
        x1, y1 = x0 + width * scale, y0 + height * scale
        slide_width, slide_height = self.dimensions
        tolerance = 1e-6 * max(slide_width, slide_height)
        if x0 < -tolerance or y0 < -tolerance or x1 > slide_width + tolerance or y1 > slide_height + tolerance:
            raise ValueError(
                f"the region x {x0:g}..{x1:g}, y {y0:g}..{y1:g} (level-0 pixels; {width} x {height} output pixels "
                f"of {scale:g} level-0 pixels each) reaches outside the slide, which is {slide_width} x "
                f"{slide_height}; move it inside, or make it smaller (slide.size_at(...) is the whole slide's size)"
            )
        return x0, y0, x1, y1

    def _describe(self, mpp: float) -> str:
        """A pixel size in words: '1 µm/px (10×)'."""
        return f"{mpp:.3g} µm/px ({MAGNIFICATION_MPP / mpp:.3g}×)"

    def __repr__(self) -> str:
        width, height = self.dimensions
        if self.mpp is None:
            resolution = f"pixel size unknown: {self.mpp_source}"
        else:
            resolution = f"{self._describe(self.mpp)} from {self.mpp_source}"
        levels = ", ".join(
            f"{level.dimensions[0]}x{level.dimensions[1]}" + (f" {level.mpp:.3g} µm/px" if level.mpp else "")
            for level in self.levels
        )
        count = f"{len(self.levels)} level" + ("s" if len(self.levels) != 1 else "")
        return f"Slide({self.path.name!r}: {width} x {height} px, {resolution}; {count}: {levels})"


def _read_levels(series: tifffile.TiffPageSeries, path: Path) -> tuple[SlideLevel, ...]:
    """The pyramid of the slide's first image series, after checking it is a brightfield RGB image."""
    levels = []
    for level in series.levels:
        page = level.keyframe
        separate, depth, height, width, contig = page.shaped  # tifffile's normalised shape
        samples = separate * contig
        if depth != 1 or samples not in (1, 3, 4) or len(level.pages) != 1 or page.dtype not in (np.uint8, np.uint16):
            raise FileFormatError(
                path,
                f"its image is {level.shape} {level.dtype} (axes {level.axes}), not a 2-D RGB slide",
                "Slide reads brightfield RGB slides (8 or 16 bit); export one RGB image (QuPath: File > Export "
                "images > OME TIFF)",
            )
        tile = (page.tilewidth, page.tilelength) if page.is_tiled else (width, min(page.rowsperstrip, height))
        downsample = (series.levels[0].keyframe.imagewidth / width + series.levels[0].keyframe.imagelength / height) / 2
        levels.append(SlideLevel((width, height), float(downsample), None, tile))
    return tuple(levels)


def _read_mpp(tif: tifffile.TiffFile) -> tuple[float | None, str]:
    """The level-0 pixel size in µm and where it came from; (None, why not) when the file does not say."""
    page = tif.pages[0]
    # 1) OME-TIFF: <Pixels PhysicalSizeX="0.25" PhysicalSizeXUnit="µm"> (µm when no unit is given).
    if tif.is_ome and tif.ome_metadata:
        try:
            root = ElementTree.fromstring(tif.ome_metadata)
        except ElementTree.ParseError:
            root = None
        elements = root.iter() if root is not None else ()
        pixels = next((e for e in elements if e.tag.split("}")[-1] == "Pixels"), None)
        if pixels is not None and pixels.get("PhysicalSizeX"):
            unit = pixels.get("PhysicalSizeXUnit", "µm")
            if unit in OME_UNITS_IN_UM:
                mpp = float(pixels.get("PhysicalSizeX")) * OME_UNITS_IN_UM[unit]
                if PLAUSIBLE_MPP[0] <= mpp <= PLAUSIBLE_MPP[1]:
                    return mpp, "OME PhysicalSizeX"
    # 2) Aperio SVS: "...|MPP = 0.4990|..." in the image description.
    match = re.search(r"\|\s*MPP\s*=\s*([0-9.eE+-]+)", page.description or "")
    if tif.is_svs and match:
        return float(match.group(1)), "Aperio MPP"
    # 3) Plain TIFF: XResolution pixels per centimetre or inch.
    unit = {tifffile.RESUNIT.CENTIMETER: 1e4, tifffile.RESUNIT.INCH: 25400.0}.get(page.resolutionunit)
    x_resolution = page.resolution[0] if page.resolution else 0.0
    if unit is None or not x_resolution > 0:
        return None, "no OME PhysicalSizeX, no Aperio MPP, no TIFF XResolution in cm or inch"
    mpp = unit / x_resolution
    if not PLAUSIBLE_MPP[0] <= mpp <= PLAUSIBLE_MPP[1]:
        dpi = x_resolution * 25400.0 / unit
        return None, f"its TIFF resolution, {dpi:.0f} dpi = {mpp:.1f} µm/px, is a print setting, not a scan's"
    return mpp, "TIFF XResolution"


def _read_window(pages: Sequence[tifffile.TiffPage], x: int, y: int, width: int, height: int) -> np.ndarray:
    """Decode the tiles (or strips) of one page that a window touches, and cut the window out of them.

    Returns:
        uint8 (height, width, 3) RGB.
    """
    page = pages[0]
    keyframe = page.keyframe
    separate, _, level_height, level_width, contig = keyframe.shaped
    if keyframe.is_tiled:
        tile_height, tile_width = keyframe.tilelength, keyframe.tilewidth
    else:  # strips: tiles as wide as the image
        tile_height, tile_width = min(keyframe.rowsperstrip, level_height), level_width
    tiles_down, tiles_across = -(-level_height // tile_height), -(-level_width // tile_width)
    decode_options = {}
    if keyframe.compression in (6, 7, 34892, 33007):  # JPEG kinds: shared tables in the header
        decode_options = {"jpegtables": page.jpegtables, "jpegheader": keyframe.jpegheader}
    window = np.zeros((separate, height, width, contig), dtype=keyframe.dtype)

    # 1) The tiles the window touches: rows ty0..ty1, columns tx0..tx1 of the tile grid, for every sample plane.
    ty0, ty1 = y // tile_height, (y + height - 1) // tile_height
    tx0, tx1 = x // tile_width, (x + width - 1) // tile_width
    handle = page.parent.filehandle
    for plane in range(separate):
        for ty in range(ty0, ty1 + 1):
            for tx in range(tx0, tx1 + 1):
                index = (plane * tiles_down + ty) * tiles_across + tx  # tifffile's order: plane, row, column
                # 2) Read and decode one tile.
                offset, count = page.dataoffsets[index], page.databytecounts[index]
                data = None
                if count:
                    handle.seek(offset)
                    data = handle.read(count)
                tile, _, _ = keyframe.decode(data, index, **decode_options)  # (1, th, tw, contig) or None
                if tile is None:
                    continue  # an empty tile: zeros
                # 3) Copy the part of it inside the window.
                top, left = ty * tile_height, tx * tile_width
                r0, r1 = max(y, top), min(y + height, top + tile.shape[1], level_height)
                c0, c1 = max(x, left), min(x + width, left + tile.shape[2], level_width)
                window[plane, r0 - y : r1 - y, c0 - x : c1 - x] = tile[0, r0 - top : r1 - top, c0 - left : c1 - left]

    # 4) To (height, width, 3) uint8 RGB.
    pixels = np.moveaxis(window, 0, -1).reshape(height, width, separate * contig)
    if pixels.dtype == np.uint16:
        pixels = (pixels // 257).astype(np.uint8)
    if pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    return np.ascontiguousarray(pixels[..., :3])


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    """``size`` as (width, height) of positive ints, or a clear error."""
    size = tuple(size)
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in size):
        raise ValueError(f"size must be (width, height) in output pixels, two positive ints, got {size}")
    return int(size[0]), int(size[1])
