"""One decoder for image files and uploaded bytes: the same pixels either way, limits checked before decoding."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tifffile
from PIL import Image

from segtutor.data import FileFormatError, read_image, read_image_bytes


def encoded(array: np.ndarray, kind: str) -> bytes:
    buffer = io.BytesIO()
    if kind == "tiff":
        tifffile.imwrite(buffer, array)
    else:
        Image.fromarray(array).save(buffer, format=kind)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "array, kind, suffix",
    [
        (np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8), "png", ".png"),
        (np.random.default_rng(1).integers(0, 65536, (40, 50, 3), dtype=np.uint16), "tiff", ".tif"),  # 16-bit RGB
        (np.random.default_rng(2).integers(0, 256, (40, 50), dtype=np.uint8), "tiff", ".tiff"),  # grey
    ],
)
def test_bytes_and_files_decode_to_the_same_pixels(tmp_path, array, kind, suffix):
    content = encoded(array, kind)
    path = tmp_path / f"image{suffix}"
    path.write_bytes(content)
    from_file, from_bytes = read_image(path), read_image_bytes(content, name=path.name)
    assert from_bytes.dtype == np.uint8 and from_bytes.shape == (40, 50, 3)
    np.testing.assert_array_equal(from_bytes, from_file)
    expected = array if array.dtype == np.uint8 else (array // 257).astype(np.uint8)  # 16 bits scaled to 8
    expected = np.repeat(expected[..., None], 3, -1) if expected.ndim == 2 else expected
    np.testing.assert_array_equal(from_bytes, expected)


def test_upload_limits_and_bad_bytes_name_the_file_and_the_fix():
    picture = encoded(np.zeros((120, 64, 3), np.uint8), "png")
    with pytest.raises(FileFormatError, match="big.png: the image is 64×120 pixels; the limit is 100") as error:
        read_image_bytes(picture, name="big.png", max_side=100)
    assert "crop or downscale" in error.value.fix
    with pytest.raises(FileFormatError, match="the models need at least 32×32"):
        read_image_bytes(encoded(np.zeros((20, 40, 3), np.uint8), "png"), min_side=32)
    with pytest.raises(FileFormatError, match="empty"):
        read_image_bytes(b"")
    with pytest.raises(FileFormatError, match="limit is 0 MB"):
        read_image_bytes(picture, max_bytes=10)
    with pytest.raises(FileFormatError, match="notes.txt: this file is not an image"):
        read_image_bytes(b"certainly not a picture", name="notes.txt")


# ---- messy files: each is read right, or refused with its cause -----------------------------------------------
from pathlib import Path  # noqa: E402
import struct  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
import zlib  # noqa: E402

from segtutor.data import read_mask  # noqa: E402
from segtutor.data.files import MAX_IMAGE_PIXELS, ImageConversionWarning  # noqa: E402


@pytest.mark.parametrize("bits", [8, 12])
def test_a_16_bit_tiff_holding_fewer_bits_is_scaled_by_what_it_holds_and_says_so(tmp_path, bits):
    top = 2**bits - 1
    array = np.linspace(0, top, 40 * 50 * 3).round().astype(np.uint16).reshape(40, 50, 3)  # uses the full range
    path = tmp_path / "scan.tif"
    tifffile.imwrite(path, array)
    with pytest.warns(ImageConversionWarning, match=f"scan.tif: 16-bit pixels that hold {bits}-bit values "
                      f"\\(the largest is {top}\\)"):  # fmt: skip
        image = read_image(path)
    np.testing.assert_array_equal(image, np.round(array * (255 / top)).astype(np.uint8))  # not black, not 16 levels
    assert image.max() == 255 and len(np.unique(image)) == 256


def test_a_full_16_bit_image_is_scaled_by_257_without_a_warning(tmp_path):
    array = np.array([[0, 257, 65535]], dtype=np.uint16)
    path = tmp_path / "deep.tif"
    tifffile.imwrite(path, array)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(read_image(path)[..., 0], [[0, 1, 255]])


def test_lzw_and_jpeg_compressed_tiffs_open_through_read_image_and_read_mask(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    mask = rng.integers(0, 3, (48, 64), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "lzw.tif", image, compression="lzw")
    tifffile.imwrite(tmp_path / "mask_lzw.tif", mask, compression="lzw")
    smooth = np.kron(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), np.ones((8, 8, 1), np.uint8))  # JPEG-friendly
    tifffile.imwrite(tmp_path / "jpeg.tif", smooth, compression="jpeg", photometric="rgb")
    tifffile.imwrite(tmp_path / "mask_jpeg.tif", mask, compression="jpeg")
    np.testing.assert_array_equal(read_image(tmp_path / "lzw.tif"), image)  # lossless
    np.testing.assert_array_equal(read_mask(tmp_path / "mask_lzw.tif"), mask)
    decoded = read_image(tmp_path / "jpeg.tif").astype(int)
    assert decoded.shape == (48, 64, 3) and np.abs(decoded - smooth).mean() < 12  # lossy, but the same picture
    assert np.abs(decoded - smooth).mean() < 0.2 * np.abs(decoded - smooth[::-1]).mean()  # and not another
    with pytest.raises(FileFormatError, match="mask_jpeg.tif: this TIFF is JPEG-compressed, which is lossy") as error:
        read_mask(tmp_path / "mask_jpeg.tif")
    assert "LZW" in error.value.fix


def test_jpeg_bytes_behind_a_png_name_are_refused_as_a_mask(tmp_path):
    labels = np.zeros((32, 32), np.uint8)
    labels[8:24, 8:24] = 1
    Image.fromarray(labels).save(tmp_path / "mask.png", format="JPEG")  # the name says PNG, the bytes are JPEG
    with pytest.raises(FileFormatError, match="this file holds JPEG data \\(although it is named .png\\)") as error:
        read_mask(tmp_path / "mask.png")
    assert "PNG" in error.value.fix and "renaming" in error.value.fix


@pytest.mark.parametrize("colour", ["one colour", "colours"])
def test_a_mask_drawn_as_transparency_is_refused_with_the_fix(tmp_path, colour):
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[8:24, 8:24, 3] = 255  # the drawn region: opaque; the rest transparent
    if colour == "colours":
        rgba[8:24, 8:24, 0] = 255
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "layer.png")
    expected = "drawn as transparency" if colour == "one colour" else "has transparent pixels"
    with pytest.raises(FileFormatError, match=f"layer.png: .*{expected}") as error:
        read_mask(tmp_path / "layer.png")
    assert "flatten the layer" in error.value.fix and "[..., -1] > 0" in error.value.fix
    opaque = rgba.copy()
    opaque[..., :3], opaque[..., 3] = 1, 255  # one label everywhere, no transparency: still a fine mask
    Image.fromarray(opaque, mode="RGBA").save(tmp_path / "opaque.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "opaque.png"), np.ones((32, 32)))


def test_exif_orientation_turns_a_phone_photo_upright(tmp_path):
    stored = np.random.default_rng(3).integers(0, 256, (40, 64, 3), dtype=np.uint8)  # as the sensor stored it
    exif = Image.Exif()
    exif[0x0112] = 6  # "turn 90° clockwise to view"
    Image.fromarray(stored).save(tmp_path / "phone.png", exif=exif)
    upright = np.rot90(stored, k=-1)  # 90° clockwise: (64, 40, 3)
    np.testing.assert_array_equal(read_image(tmp_path / "phone.png"), upright)
    np.testing.assert_array_equal(read_image_bytes((tmp_path / "phone.png").read_bytes()), upright)
    labels = np.zeros((40, 64), np.uint8)
    labels[:10, :5] = 1
    Image.fromarray(labels).save(tmp_path / "phone_mask.png", exif=exif)
    np.testing.assert_array_equal(read_mask(tmp_path / "phone_mask.png"), np.rot90(labels, k=-1))


def huge_png(path: Path, width: int, height: int) -> Path:
    """A few hundred bytes that declare a ``width`` x ``height`` PNG: a valid header, pixel data for one row."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))  # fmt: skip
    return path


def huge_tiff(path: Path, width: int, height: int) -> Path:
    """A small tiled TIFF whose header declares ``width`` x ``height`` pixels (as a huge scan's would)."""
    tifffile.imwrite(path, np.zeros((256, 256), np.uint8), tile=(256, 256), compression="zlib")
    with tifffile.TiffFile(path, mode="r+b") as file:
        file.pages[0].tags["ImageWidth"].overwrite(width)
        file.pages[0].tags["ImageLength"].overwrite(height)
    return path


@pytest.mark.parametrize("make", [huge_png, huge_tiff])
def test_huge_declared_sizes_are_refused_from_the_header_before_decoding(tmp_path, make):
    path = make(tmp_path / ("scan.png" if make is huge_png else "scan.tif"), 30_000, 30_000)
    assert path.stat().st_size < 10_000  # a small file ...
    for read in (read_image, read_mask, lambda p: read_image_bytes(p.read_bytes(), name=p.name, max_side=10**6)):
        started = time.perf_counter()
        with pytest.raises(FileFormatError, match="the image is 30000×30000 pixels \\(900 megapixels\\); segtutor "
                           "reads at most 67 megapixels") as error:  # fmt: skip
            read(path)
        assert time.perf_counter() - started < 1.0  # ... refused from its header: nothing decoded, nothing allocated
        assert "tiles" in error.value.fix and "check that it opens" not in str(error.value)
    assert MAX_IMAGE_PIXELS == 8192 * 8192
    under = make(tmp_path / ("ok.png" if make is huge_png else "ok.tif"), 2048, 2048)  # under the limit: decoded
    try:
        assert read_image(under).shape == (2048, 2048, 3)
    except FileFormatError as error:  # its pixel data is missing: a decoding error, not the size
        assert "megapixels" not in str(error)
