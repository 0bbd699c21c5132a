"""Reading images and masks: PNG, JPEG and TIFF images (from a file or from uploaded bytes); PNG and TIFF masks.

Masks must be lossless: JPEG blurs label values at every edge. A mask holds one integer label per pixel
(0, 1, 2, ...), in a single channel, in a greyscale or palette ("P" mode) PNG or in a TIFF.

Files and uploads go through the same decoder (:func:`read_image`, :func:`read_image_bytes`): TIFFs are read by
tifffile, everything else by Pillow, and 16-bit images are scaled to 8 bits the same way.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
MASK_SUFFIXES = (".png", ".tif", ".tiff")


TIFF_MAGIC = (b"II*\x00", b"MM\x00*")  # the first four bytes of a little- or big-endian TIFF


class FileFormatError(ValueError):
    """A file (or upload) that cannot serve as an image or a mask: which one, what is wrong, and how to fix it."""

    def __init__(self, path: str | Path, problem: str, fix: str) -> None:
        name = Path(path).name
        super().__init__(f"{name}: {problem}. Fix: {fix}.")
        self.file, self.problem, self.fix = name, problem, fix


def read_image(path: str | Path) -> np.ndarray:
    """An image file as RGB.

    Greyscale images become three equal channels, an alpha channel is dropped, 16-bit images are scaled down.

    Returns:
        uint8 (H, W, 3).

    Raises:
        FileFormatError: the file cannot be read or does not hold a 2-D image.
    """
    path = Path(path)
    return _to_rgb(_read_array(path, mode="RGB"), path)


def read_image_bytes(
    content: bytes, *, name: str = "the upload", max_bytes: int = 8_000_000, max_side: int = 1024, min_side: int = 1
) -> np.ndarray:
    """An image from its file's bytes (an upload), decoded exactly as :func:`read_image` decodes a file.

    Args:
        content: the file's bytes (PNG, JPEG or TIFF).
        name: the file's name, for the messages.
        max_bytes: larger files are refused.
        max_side: images wider or taller than this are refused (predicting them would take long).
        min_side: images narrower or shorter than this are refused (the networks need ``MIN_SIZE`` pixels).

    Returns:
        uint8 (H, W, 3).

    Raises:
        FileFormatError: empty, too large, too small, or not an image; the message says what to do.
    """
    if len(content) == 0:
        raise FileFormatError(name, "the file is empty", "upload a PNG, JPEG or TIFF image")
    if len(content) > max_bytes:
        raise FileFormatError(name, f"the file has {len(content) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB",
                              "upload a crop of the region you are interested in")  # fmt: skip
    tiff = content[:4] in TIFF_MAGIC
    height, width = _declared_size(io.BytesIO(content), name, tiff=tiff)  # read from the header: nothing decoded yet
    if max(height, width) > max_side:
        raise FileFormatError(name, f"the image is {width}×{height} pixels; the limit is {max_side} pixels per side",
                              "crop or downscale it first")  # fmt: skip
    rgb = _to_rgb(_decode(io.BytesIO(content), name, mode="RGB", tiff=tiff), name)
    height, width = rgb.shape[:2]
    if min(height, width) < min_side:
        raise FileFormatError(name, f"the image is {width}×{height} pixels; the models need at least "
                              f"{min_side}×{min_side}", "upload a larger image")  # fmt: skip
    return rgb


def _to_rgb(array: np.ndarray, path: str | Path) -> np.ndarray:
    """Decoded pixels as uint8 (H, W, 3): planar TIFFs turned, grey repeated, alpha dropped, 16 bits scaled."""
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)  # planar TIFF (C, H, W) -> (H, W, C)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise FileFormatError(path, f"expected a 2-D RGB or greyscale image, found an array of shape {array.shape}",
                              "save the image as a plain RGB PNG, JPEG or TIFF")
    array = array[..., :3] if array.shape[-1] != 1 else np.repeat(array, 3, axis=-1)
    if array.dtype == np.uint16:
        array = (array // 257).astype(np.uint8)
    elif array.dtype.kind == "f" and array.size and 0.0 <= array.min() and array.max() <= 1.0:
        array = np.round(array * 255).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise FileFormatError(path, f"pixel type {array.dtype} is not supported", "save the image as 8-bit RGB")
    return np.ascontiguousarray(array)


def read_mask(path: str | Path) -> np.ndarray:
    """A mask file as one integer label per pixel.

    Returns:
        int64 (H, W).

    Raises:
        FileFormatError: the file cannot be read, is a JPEG, is colour-coded RGB, or holds non-integer values.
    """
    path = Path(path)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        raise FileFormatError(
            path,
            "masks must not be JPEG: its compression changes label values near every edge",
            "save the mask as a PNG",
        )
    array = _read_array(path, mode=None)
    if array.ndim == 3 and array.shape[-1] in (2, 3, 4):  # RGB(A) or grey + alpha
        colour = array[..., :3] if array.shape[-1] >= 3 else array[..., :1]
        if (colour == colour[..., :1]).all():
            array = colour[..., 0]  # grey values stored in every channel: one channel carries it all
        else:
            raise FileFormatError(
                path,
                "this mask is colour-coded RGB",
                "convert each colour to its class index (0, 1, 2, ...) and save a single-channel (greyscale or "
                "palette) PNG",
            )
    array = np.squeeze(array)
    if array.ndim != 2:
        raise FileFormatError(path, f"expected a 2-D mask, found an array of shape {array.shape}",
                              "save one integer label per pixel in a single-channel PNG or TIFF")
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
            raise FileFormatError(
                path, "this mask holds fractional values (probabilities?)", "save integer class labels (0, 1, 2, ...)"
            )
    elif array.dtype.kind not in "iu":
        raise FileFormatError(path, f"mask pixel type {array.dtype} is not supported", "save integer labels")
    return array.astype(np.int64)


def _declared_size(source: Path | io.BytesIO, name: str | Path, *, tiff: bool) -> tuple[int, int]:
    """``(height, width)`` as the file's header declares it, without decoding the pixels."""
    try:
        if tiff:
            with tifffile.TiffFile(source) as file:
                page = file.pages[0]
                return int(page.imagelength), int(page.imagewidth)
        with Image.open(source) as image:
            width, height = image.size
            return height, width
    except Exception as error:  # noqa: BLE001 (any unreadable header: the same message as a failed decode)
        raise FileFormatError(
            name,
            f"this file is not an image segtutor can read ({type(error).__name__}: {error})",
            "check that it opens in an image viewer, or export it again as PNG, JPEG or TIFF",
        ) from error


def _read_array(path: Path, *, mode: str | None) -> np.ndarray:
    """The pixels of an image file: see :func:`_decode`."""
    return _decode(path, path, mode=mode, tiff=path.suffix.lower() in (".tif", ".tiff"))


def _decode(source: Path | io.BytesIO, name: str | Path, *, mode: str | None, tiff: bool) -> np.ndarray:
    """The pixels of a TIFF (tifffile) or any other image (Pillow, converted to ``mode`` unless None)."""
    try:
        if tiff:
            return tifffile.imread(source)
        with Image.open(source) as image:
            if mode is not None and image.mode not in ("I;16", "I;16B", "I;16L"):
                image = image.convert(mode)
            return np.array(image)
    except Exception as error:  # Pillow and tifffile raise many kinds of error for a bad file
        fix = "check that it opens in an image viewer, or export it again as PNG, JPEG or TIFF"
        if "imagecodecs" in str(error):  # LZW, JPEG, ... compressed TIFF: tifffile decodes them through imagecodecs
            fix = "install imagecodecs (`pip install imagecodecs`), which tifffile needs for this compression"
        problem = f"this file is not an image segtutor can read ({type(error).__name__}: {error})"
        raise FileFormatError(name, problem, fix) from error
