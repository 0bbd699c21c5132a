"""Reading images and masks: PNG, JPEG and TIFF images (from a file or from uploaded bytes); PNG and TIFF masks.

Masks must be lossless: JPEG blurs label values at every edge. A mask holds one integer label per pixel
(0, 1, 2, ...), in a single channel, in a greyscale or palette ("P" mode) PNG or in a TIFF.

Files and uploads go through the same decoder (:func:`read_image`, :func:`read_image_bytes`), in two steps:

1. The header: what the file holds, read from its first bytes (not its name), and its size, before any pixel is
   decoded. Files larger than ``MAX_IMAGE_PIXELS`` are refused here, so a small file that declares a huge image
   (a tiled or compressed TIFF) never fills the memory.
2. The pixels: TIFFs by tifffile (LZW, JPEG, ... compressions through imagecodecs), everything else by Pillow,
   turned upright as the EXIF orientation of a phone photo says. 16-bit images are scaled to 8 bits by what
   their values hold: a 12-bit scan (values up to 4095) by 255 / 4095, with an :class:`ImageConversionWarning`
   that says so.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, ImageOps

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
MASK_SUFFIXES = (".png", ".tif", ".tiff")

# The largest image (height x width) segtutor decodes from one file or upload: 8192 x 8192, about 200 MB as RGB
# and 540 MB as an int64 mask. Larger images are refused from their header, before decoding.
MAX_IMAGE_PIXELS = 8192 * 8192

TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF, little- and big-endian
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
LOSSY_TIFF_COMPRESSIONS = ("JPEG", "OJPEG", "JPEG_2000", "JPEG2000", "WEBP", "JPEGXL", "JPEG_LOSSY")
EXIF_ORIENTATION = 0x0112  # the EXIF tag that says how to turn a photo upright; 5 to 8 swap height and width


class FileFormatError(ValueError):
    """A file (or upload) that cannot serve as an image or a mask: which one, what is wrong, and how to fix it."""

    def __init__(self, path: str | Path, problem: str, fix: str) -> None:
        name = Path(path).name
        super().__init__(f"{name}: {problem}. Fix: {fix}.")
        self.file, self.problem, self.fix = name, problem, fix


class ImageConversionWarning(UserWarning):
    """A file was read, but its pixels were changed on the way: which file, what was done, and what to do."""

    def __init__(self, path: str | Path, problem: str, fix: str) -> None:
        name = Path(path).name
        super().__init__(f"{name}: {problem}. Fix: {fix}.")
        self.file, self.problem, self.fix = name, problem, fix


@dataclass(frozen=True)
class ImageHeader:
    """What a file's first bytes say, before any pixel is decoded."""

    format: str  # "PNG", "JPEG", "TIFF", ... (from the content, not the file name)
    height: int  # as the learner sees it (EXIF orientation applied)
    width: int
    compression: str = ""  # TIFF compression ("LZW", "JPEG", ...); "" for other formats
    bits: int | None = None  # TIFF bits per sample, e.g. 12 for a 12-bit scan stored as such
    orientation: int = 1  # EXIF orientation: 1 upright, 6 and 8 turned by 90 degrees (phone photos)


def read_image(path: str | Path, *, warn: bool = True) -> np.ndarray:
    """An image file as RGB.

    Greyscale images become three equal channels, an alpha channel is dropped, 16-bit images are scaled down by
    the bits their values use, phone photos are turned upright as their EXIF orientation says.

    Args:
        path: a PNG, JPEG or TIFF file.
        warn: say so (:class:`ImageConversionWarning`) when 16-bit pixels are scaled by the bits they use.

    Returns:
        uint8 (H, W, 3).

    Raises:
        FileFormatError: the file cannot be read, is larger than ``MAX_IMAGE_PIXELS``, or does not hold a 2-D image.
    """
    path = Path(path)
    header = read_header(path)
    return _to_rgb(_decode(path, path, header, mode="RGB"), path, header, warn=warn)


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
    header = read_header(io.BytesIO(content), name)  # read from the header: nothing decoded yet
    if max(header.height, header.width) > max_side:
        raise FileFormatError(name, f"the image is {header.width}×{header.height} pixels; the limit is {max_side} "
                              "pixels per side", "crop or downscale it first")  # fmt: skip
    rgb = _to_rgb(_decode(io.BytesIO(content), name, header, mode="RGB"), name, header)
    height, width = rgb.shape[:2]
    if min(height, width) < min_side:
        raise FileFormatError(name, f"the image is {width}×{height} pixels; the models need at least "
                              f"{min_side}×{min_side}", "upload a larger image")  # fmt: skip
    return rgb


def read_mask(path: str | Path) -> np.ndarray:
    """A mask file as one integer label per pixel.

    Returns:
        int64 (H, W).

    Raises:
        FileFormatError: the file cannot be read, is too large, holds JPEG data (whatever its name says), is
            colour-coded RGB, has its labels in a transparent layer, or holds non-integer values.
    """
    path = Path(path)
    header = read_header(path)
    lossy_fix = "export the mask again as a PNG (lossless); renaming or converting a JPEG does not undo its damage"
    if header.format in ("JPEG", "MPO"):  # MPO: a phone's JPEG with extra pictures
        named = "" if path.suffix.lower() in (".jpg", ".jpeg") else f" (although it is named {path.suffix})"
        raise FileFormatError(path, f"masks must not be JPEG, and this file holds JPEG data{named}: its compression "
                              "changes label values near every edge", lossy_fix)  # fmt: skip
    if header.compression.upper() in LOSSY_TIFF_COMPRESSIONS:
        raise FileFormatError(path, f"this TIFF is {header.compression}-compressed, which is lossy: it changes label "
                              "values near every edge", "save the mask uncompressed, or with LZW or Deflate "
                              "(lossless) compression, or as a PNG")  # fmt: skip
    array = _decode(path, path, header, mode=None)
    if array.ndim == 3 and array.shape[-1] in (2, 4):  # grey + alpha or RGBA: a layer with transparency
        array = _drop_alpha(array, path)
    if array.ndim == 3 and array.shape[-1] == 3:  # RGB
        if (array == array[..., :1]).all():
            array = array[..., 0]  # grey values stored in every channel: one channel carries it all
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


def read_header(source: str | Path | io.BytesIO, name: str | Path | None = None) -> ImageHeader:
    """What an image file (or upload) holds and how large it is, from its first bytes; no pixel is decoded.

    The format comes from the content (a JPEG named ``.png`` is a JPEG); the size is checked against
    ``MAX_IMAGE_PIXELS``.

    Raises:
        FileFormatError: the header cannot be read, or declares an image larger than ``MAX_IMAGE_PIXELS``.
    """
    name = name if name is not None else source
    try:
        if isinstance(source, io.BytesIO):
            start = source.getvalue()[:32]
        else:
            with Path(source).open("rb") as file:
                start = file.read(32)
        if len(start) == 0:
            raise FileFormatError(name, "the file is empty (0 bytes)", "export or copy it again")
        if start[:4] in TIFF_MAGIC:
            with tifffile.TiffFile(source) as file:
                page = file.pages[0]
                compression = getattr(page.compression, "name", str(page.compression))
                header = ImageHeader("TIFF", int(page.imagelength), int(page.imagewidth), compression,
                                     int(page.bitspersample))  # fmt: skip
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size is checked below
                image = Image.open(source)
            with image:
                width, height = image.size
                orientation = int(image.getexif().get(EXIF_ORIENTATION, 1))
                if orientation in (5, 6, 7, 8):
                    width, height = height, width  # a phone photo taken upright, stored on its side
                header = ImageHeader(image.format or "", height, width, orientation=orientation)
    except FileFormatError:
        raise
    except Image.DecompressionBombError as error:  # Pillow refuses to open it at all
        if start[:8] != PNG_MAGIC or start[12:16] != b"IHDR":
            raise FileFormatError(name, f"the image is far too large ({error})", _too_large_fix()) from error
        width, height = struct.unpack(">II", start[16:24])  # a PNG says its size in its first chunk
        header = ImageHeader("PNG", height, width)
    except Exception as error:  # noqa: BLE001 (any unreadable header: the same message as a failed decode)
        raise FileFormatError(
            name,
            f"this file is not an image segtutor can read ({type(error).__name__}: {error})",
            "check that it opens in an image viewer, or export it again as PNG, JPEG or TIFF",
        ) from error
    if header.height * header.width > MAX_IMAGE_PIXELS:
        raise FileFormatError(
            name,
            f"the image is {header.width}×{header.height} pixels ({header.width * header.height / 1e6:,.0f} "
            f"megapixels); segtutor reads at most {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels (8192×8192) from one file",
            _too_large_fix(),
        )
    return header


def _too_large_fix() -> str:
    return ("cut it into tiles (e.g. with QuPath's tile exporter), or, for a whole-slide scan, read regions of it "
            "with segtutor.data.Slide")  # fmt: skip


def _drop_alpha(array: np.ndarray, path: Path) -> np.ndarray:
    """A mask with an alpha channel, without it; an error if the alpha channel varies (labels drawn as transparency)."""
    alpha, colour = array[..., -1], array[..., :-1]
    if alpha.min() == alpha.max():
        return colour  # opaque everywhere (or transparent everywhere): the colours are the labels
    one_colour = bool((colour == colour.reshape(-1, colour.shape[-1])[0]).all())
    problem = (
        "its labels are drawn as transparency (the alpha channel of a layer in one colour), so the colours hold "
        "no labels at all"
        if one_colour
        else "this mask has transparent pixels (an alpha channel that varies), so segtutor cannot tell whether the "
        "labels are the colours or the transparency"
    )
    raise FileFormatError(
        path,
        problem,
        "flatten the layer and save labels 0, 1, 2, ... as a greyscale PNG; in Python, one drawn class is "
        "labels = (np.asarray(Image.open(path))[..., -1] > 0).astype(np.uint8)",
    )


def _to_rgb(array: np.ndarray, path: str | Path, header: ImageHeader, *, warn: bool = True) -> np.ndarray:
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
        bits = header.bits if header.bits is not None and header.bits < 16 else None
        array = _scale_16_bit(array, path, bits, warn=warn)
    elif array.dtype.kind == "f" and array.size and 0.0 <= array.min() and array.max() <= 1.0:
        array = np.round(array * 255).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise FileFormatError(path, f"pixel type {array.dtype} is not supported", "save the image as 8-bit RGB")
    return np.ascontiguousarray(array)


def _scale_16_bit(array: np.ndarray, path: str | Path, bits: int | None, *, warn: bool) -> np.ndarray:
    """uint16 pixels as uint8, scaled by the bits they use: the file's own bits per sample, else the largest value.

    Many scanners and cameras store 8-, 10-, 12- or 14-bit values in 16-bit files. Dividing those by 257 (the
    16-bit scale) turns an 8-bit image black and a 12-bit one into 16 grey levels, so the scale comes from the
    smallest bit depth that holds the largest value (up to 255: 8 bits, up to 4095: 12 bits, ...). That guess
    is made per image: a 12-bit image that is dark everywhere (all values below 1024) comes out brighter.
    """
    peak = int(array.max(initial=0))
    if bits is None:
        bits = next((b for b in (8, 10, 12, 14) if peak < 2**b), 16)
    if bits >= 16:
        return (array // 257).astype(np.uint8)  # full 16-bit data: 65535 -> 255
    top = 2**bits - 1
    if warn:
        how = "read as they are" if bits == 8 else f"scaled by 255/{top} to 8 bits"
        problem = f"16-bit pixels that hold {bits}-bit values (the largest is {peak}): {how}"
        fix = (f"nothing, if the scanner or camera wrote {bits}-bit values; otherwise save the image as 8-bit, "
               "scaled as you want it")  # fmt: skip
        warnings.warn(ImageConversionWarning(path, problem, fix), stacklevel=4)
    return np.round(np.minimum(array, top) * (255.0 / top)).astype(np.uint8)


def _decode(source: Path | io.BytesIO, name: str | Path, header: ImageHeader, *, mode: str | None) -> np.ndarray:
    """The pixels of a TIFF (tifffile) or any other image (Pillow, upright, converted to ``mode`` unless None)."""
    try:
        if header.format == "TIFF":
            return tifffile.imread(source)
        with Image.open(source) as image:
            image = ImageOps.exif_transpose(image)  # a phone photo: turned upright, as every viewer shows it
            if mode is not None and image.mode not in ("I;16", "I;16B", "I;16L"):
                image = image.convert(mode)
            return np.array(image)
    except Exception as error:  # Pillow and tifffile raise many kinds of error for a bad file
        fix = "check that it opens in an image viewer, or export it again as PNG, JPEG or TIFF"
        if "imagecodecs" in str(error):  # LZW, JPEG, ... compressed TIFF: tifffile decodes them through imagecodecs
            fix = "install imagecodecs (`pip install imagecodecs`), which tifffile needs for this compression"
        problem = f"this file is not an image segtutor can read ({type(error).__name__}: {error})"
        raise FileFormatError(name, problem, fix) from error
