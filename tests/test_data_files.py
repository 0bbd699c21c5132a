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
