"""Reading images and masks from files: PNG, JPEG and TIFF images; PNG and TIFF masks.

Masks must be lossless: JPEG blurs label values at every edge. A mask holds one integer label per pixel
(0, 1, 2, ...), in a single channel, in a greyscale or palette ("P" mode) PNG or in a TIFF.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
MASK_SUFFIXES = (".png", ".tif", ".tiff")


class FileFormatError(ValueError):
    """A file that cannot serve as an image or a mask: which file, what is wrong, and how to fix it."""

    def __init__(self, path: Path, problem: str, fix: str) -> None:
        super().__init__(f"{path.name}: {problem}. Fix: {fix}.")
        self.file, self.problem, self.fix = path.name, problem, fix


def read_image(path: str | Path) -> np.ndarray:
    """An image file as RGB.

    Greyscale images become three equal channels, an alpha channel is dropped, 16-bit images are scaled down.

    Returns:
        uint8 (H, W, 3).

    Raises:
        FileFormatError: the file cannot be read or does not hold a 2-D image.
    """
    path = Path(path)
    array = _read_array(path, mode="RGB")
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


def _read_array(path: Path, *, mode: str | None) -> np.ndarray:
    """The pixels of a TIFF (tifffile) or any other image (Pillow, converted to ``mode`` unless None)."""
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            return tifffile.imread(path)
        with Image.open(path) as image:
            if mode is not None and image.mode not in ("I;16", "I;16B", "I;16L"):
                image = image.convert(mode)
            return np.array(image)
    except Exception as error:  # Pillow and tifffile raise many kinds of error for a bad file
        fix = "check that it opens, or export it again"
        if "imagecodecs" in str(error):  # LZW, JPEG, ... compressed TIFF: tifffile decodes them through imagecodecs
            fix = "install imagecodecs (`pip install imagecodecs`), which tifffile needs for this compression"
        raise FileFormatError(path, f"cannot read this file ({type(error).__name__}: {error})", fix) from error
