"""Whole slides: pyramid levels and pixel sizes from the metadata, regions read at a magnification and resampled,
the masks that match them, the pre-flight check, the sample slide, and compressed TIFFs."""

from __future__ import annotations

import importlib
import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from segtutor.data import (
    IGNORE_INDEX,
    FileFormatError,
    Slide,
    load_qupath_annotations,
    magnification_to_mpp,
    preflight_slide,
    read_image,
    read_qupath_geojson,
    write_sample_slide,
)
from segtutor.data import files
from segtutor.data.qupath import paint_annotations

preflight_module = importlib.import_module("segtutor.data.preflight")  # segtutor.data.preflight is the function

HAS_IMAGECODECS = importlib.util.find_spec("imagecodecs") is not None
needs_imagecodecs = pytest.mark.skipif(not HAS_IMAGECODECS, reason="imagecodecs is not installed")


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> tuple[Path, Path]:
    return write_sample_slide(tmp_path_factory.mktemp("sample"), size=512, seed=3)


def ramp(width: int, height: int) -> np.ndarray:
    """uint8 (H, W, 3): red rises with x, green with y (linear in the pixel centres), blue constant."""
    x = (np.arange(width) + 0.5) / width
    y = (np.arange(height) + 0.5) / height
    image = np.empty((height, width, 3), dtype=np.float64)
    image[..., 0], image[..., 1], image[..., 2] = 20 + 200 * x[None, :], 20 + 200 * y[:, None], 128
    return np.round(image).astype(np.uint8)


def write_pyramid(path: Path, image: np.ndarray, *, levels: int = 3, tile: int = 64, **options) -> list[np.ndarray]:
    """A generic pyramidal TIFF (reduced-resolution pages after the first), each level the 2 x 2 mean of the last."""
    pyramid = [image]
    for _ in range(levels - 1):
        previous = pyramid[-1].astype(np.float64)
        h, w = previous.shape[0] // 2 * 2, previous.shape[1] // 2 * 2
        pyramid.append(np.round(previous[:h, :w].reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))).astype(np.uint8))
    with tifffile.TiffWriter(path) as tif:
        for k, level in enumerate(pyramid):
            extra = options if k == 0 else {}
            tif.write(level, tile=(tile, tile), photometric="rgb", compression="zlib", metadata=None,
                      subfiletype=1 if k else 0, **extra)
    return pyramid


def test_magnification_convention():
    assert [magnification_to_mpp(m) for m in (40, 20, 10, 2.5)] == [0.25, 0.5, 1.0, 4.0]
    with pytest.raises(ValueError, match="magnification must be positive"):
        magnification_to_mpp(0)


def test_sample_slide_levels_and_pixel_size(sample):
    slide = Slide(sample[0])
    assert slide.mpp == 1.0 and slide.mpp_source == "OME PhysicalSizeX" and slide.magnification == 10.0
    assert slide.dimensions == (512, 512)
    assert [level.dimensions for level in slide.levels] == [(512, 512), (256, 256), (128, 128)]
    assert [level.downsample for level in slide.levels] == [1.0, 2.0, 4.0]
    assert [level.mpp for level in slide.levels] == [1.0, 2.0, 4.0]
    assert slide.levels[0].tile == (256, 256)
    assert "1 µm/px (10×)" in repr(slide) and "3 levels" in repr(slide)
    assert slide.size_at(magnification=2.5) == (128, 128) and slide.downsample(mpp=3.0) == 3.0


def test_regions_at_a_level_are_that_level_exactly(sample):
    slide = Slide(sample[0])
    with tifffile.TiffFile(sample[0]) as tif:
        levels = [level.asarray() for level in tif.series[0].levels]
    assert np.array_equal(slide.read_region((100, 37), (300, 200)), levels[0][37:237, 100:400])
    assert np.array_equal(slide.read_region((100, 38), (60, 50), magnification=5), levels[1][19:69, 50:110])
    assert np.array_equal(slide.read_region((0, 0), (128, 128), mpp=4.0), levels[2])
    assert np.array_equal(slide.read_level(1, (3, 4), (10, 20)), levels[1][4:24, 3:13])


def exact_ramp(size: int) -> np.ndarray:
    """uint8 (size, size, 3): red = 20 + 2 * column, green = 20 + 2 * row, blue 128.

    Linear in the pixel centres, and the 2 x 2 means of its pyramid levels are whole numbers again: every level
    holds the same ramp exactly, so a resampled region can be checked to half a grey level.
    """
    values = 20 + 2 * np.arange(size)
    image = np.full((size, size, 3), 128, dtype=np.uint8)
    image[..., 0], image[..., 1] = values[None, :], values[:, None]
    return image


@pytest.mark.parametrize(
    ("scale", "origin", "size"),
    [(1.0, (20.5, 31.25), (60, 50)), (1.3, (17.3, 21.9), (60, 55)), (2.0, (13.0, 15.0), (40, 35)),
     (3.0, (15.4, 12.6), (25, 20)), (5.5, (14.2, 13.7), (14, 12)), (0.7, (30.6, 25.1), (90, 80))],
)
def test_resampled_regions_sample_the_slide_at_the_output_pixel_centres(tmp_path, scale, origin, size):
    """Output pixel (row, col) must hold the slide's value at its centre, x + (col + 0.5) * scale, at any level."""
    pyramid = write_pyramid(tmp_path / "ramp.tif", exact_ramp(112), tile=32, resolution=(1e4 / 0.5, 1e4 / 0.5),
                            resolutionunit="CENTIMETER")
    for k, level in enumerate(pyramid):  # every level the same ramp, sampled at its own pixel centres
        assert (level[..., 0] == 20 + 2 * (np.arange(112 >> k) * 2**k + (2**k - 1) / 2)).all()
    slide = Slide(tmp_path / "ramp.tif")
    assert slide.mpp == pytest.approx(0.5) and slide.mpp_source == "TIFF XResolution"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = slide.read_region(origin, size, mpp=0.5 * scale)  # level-0 pixels per output pixel: scale
    assert any("finer than the scan" in str(w.message) for w in caught) == (scale < 1)
    assert image.shape == (size[1], size[0], 3) and image.dtype == np.uint8
    centre_x = origin[0] + (np.arange(size[0]) + 0.5) * scale  # level-0 coordinates of the output pixel centres
    centre_y = origin[1] + (np.arange(size[1]) + 0.5) * scale
    expected_red, expected_green = 20 + 2 * (centre_x - 0.5), 20 + 2 * (centre_y - 0.5)  # pixel i's centre: i + 0.5
    assert np.abs(image[..., 0] - expected_red[None, :]).max() <= 0.6
    assert np.abs(image[..., 1] - expected_green[:, None]).max() <= 0.6
    assert (image[..., 2] == 128).all()


def test_only_the_tiles_of_the_region_are_read_from_the_level_closest_at_or_above(tmp_path):
    """Corrupt one level-0 tile: regions that avoid it, or that come from level 1, still read."""
    path = tmp_path / "corrupt.tif"
    pyramid = write_pyramid(path, ramp(512, 512), tile=64, resolution=(1e4, 1e4), resolutionunit="CENTIMETER")
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        index = 2 * 8 + 3  # tile row 2, column 3: x 192..256, y 128..192
        offset, count = page.dataoffsets[index], page.databytecounts[index]
    with open(path, "r+b") as file:
        file.seek(offset)
        file.write(b"\x00not zlib\x00" * (count // 10))
    slide = Slide(path)
    assert np.array_equal(slide.read_region((0, 0), (192, 512)), pyramid[0][:, :192])  # left of the tile
    assert np.array_equal(slide.read_region((128, 64), (64, 64), mpp=2.0), pyramid[1][32:96, 64:128])  # level 1
    with pytest.raises(FileFormatError, match="cannot decode its tiles"):
        slide.read_region((180, 100), (30, 30))


def test_svs_tiff_resolution_and_missing_pixel_sizes(tmp_path):
    image = ramp(640, 480)
    svs = tmp_path / "scan.svs"
    description = "Aperio Image Library v12.0.15 \r\n640x480 [0,0 640x480] (64x64) RAW|AppMag = 20|MPP = 0.4990"
    with tifffile.TiffWriter(svs) as tif:
        options = {"photometric": "rgb", "compression": "zlib", "metadata": None}
        tif.write(image, tile=(64, 64), description=description, **options)
        tif.write(image[::8, ::8], description="Aperio Image Library v12.0.15 \r\nthumbnail", **options)
        tif.write(image[::4, ::4].copy(), tile=(64, 64), description=description, **options)
    slide = Slide(svs)
    assert slide.mpp == pytest.approx(0.499) and slide.mpp_source == "Aperio MPP"
    assert [level.dimensions for level in slide.levels] == [(640, 480), (160, 120)]  # the thumbnail is no level
    assert np.array_equal(slide.read_region((64, 32), (40, 20), mpp=0.499 * 4), image[::4, ::4][8:28, 16:56])

    inch = tmp_path / "inch.tif"
    tifffile.imwrite(inch, image, photometric="rgb", resolution=(25400 / 0.25, 25400 / 0.25), resolutionunit="INCH")
    assert Slide(inch).mpp == pytest.approx(0.25)

    printed = tmp_path / "photoshop.tif"
    tifffile.imwrite(printed, image, photometric="rgb", resolution=(72, 72), resolutionunit="INCH")
    slide = Slide(printed)
    assert slide.mpp is None and "72 dpi" in slide.mpp_source and "print setting" in slide.mpp_source
    assert np.array_equal(slide.read_region((10, 20), (30, 40)), image[20:60, 10:40])  # level 0 needs no pixel size
    with pytest.raises(ValueError, match=r"does not say its pixel size.*Slide\(path, mpp=0\.25\)"):
        slide.read_region((0, 0), (10, 10), magnification=10)
    given = Slide(printed, mpp=0.5)
    assert given.mpp == 0.5 and given.mpp_source == "given"
    assert given.read_region((0, 0), (32, 24), magnification=2.5).shape == (24, 32, 3)


def test_stripped_planar_and_grey_tiffs(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (90, 70, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "strips.tif", image, photometric="rgb", rowsperstrip=7, compression="zlib")
    planar = np.moveaxis(image, -1, 0)
    tifffile.imwrite(tmp_path / "planar.tif", planar, photometric="rgb", planarconfig="separate", rowsperstrip=16)
    tifffile.imwrite(tmp_path / "grey.tif", image[..., 0], photometric="minisblack", tile=(32, 32))
    for name in ("strips.tif", "planar.tif"):
        assert np.array_equal(Slide(tmp_path / name).read_region((5, 13), (60, 70)), image[13:83, 5:65]), name
    grey = Slide(tmp_path / "grey.tif").read_region((5, 13), (60, 70))
    assert np.array_equal(grey, np.repeat(image[13:83, 5:65, :1], 3, axis=-1))


def test_slide_errors(tmp_path, sample):
    slide = Slide(sample[0])
    with pytest.raises(ValueError, match=r"x 400\.\.656.*reaches outside the slide, which is 512 x 512"):
        slide.read_region((400, 0), (128, 128), magnification=5)
    with pytest.raises(ValueError, match="outside the slide"):
        slide.read_region((-1, 0), (10, 10))
    with pytest.raises(ValueError, match="either mpp or magnification, not both"):
        slide.read_region((0, 0), (10, 10), mpp=1.0, magnification=10)
    with pytest.raises(ValueError, match=r"size must be \(width, height\)"):
        slide.read_region((0, 0), (10, 10, 3))
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    with pytest.raises(FileFormatError, match="not a TIFF slide.*OME-TIFF"):
        Slide(tmp_path / "a.png")
    with pytest.raises(FileNotFoundError):
        Slide(tmp_path / "missing.svs")
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((4, 32, 32), dtype=np.uint8), photometric="minisblack",
                     metadata={"axes": "CYX"})
    with pytest.raises(FileFormatError, match="not a 2-D RGB slide"):
        Slide(tmp_path / "stack.tif")


def test_read_mask_matches_read_region_pixel_for_pixel(sample):
    slide_path, geojson_path = sample
    slide = Slide(slide_path)
    origin, size = (64.0, 96.0), (200, 150)
    result = slide.read_mask(geojson_path, origin, size, magnification=5)
    expected = load_qupath_annotations(geojson_path, (150, 200), downsample=2.0, origin=origin, image_size=(512, 512))
    assert np.array_equal(result.mask, expected.mask) and result.class_names == ("Stroma", "Tumor")
    # The image agrees with the mask at every level: tumor is darker than stroma, unannotated glass is bright.
    for magnification in (10, 5, 2.5):
        size = slide.size_at(magnification=magnification)
        image = slide.read_region((0, 0), size, magnification=magnification).astype(float)
        mask, _ = slide.read_mask(geojson_path, (0, 0), size, magnification=magnification)
        brightness = image.mean(axis=-1)
        assert brightness[mask == 1].mean() < brightness[mask == 0].mean() - 20
        glass = (mask == IGNORE_INDEX) & ~pen_pixels(geojson_path, mask.shape, 512 / size[0])
        assert brightness[glass].mean() > 200


def pen_pixels(geojson_path: Path, shape: tuple[int, int], downsample: float) -> np.ndarray:
    """bool (H, W): the pixels under the Ignore* annotations (the marker-pen stroke)."""
    annotations = read_qupath_geojson(geojson_path)
    labels = [0 if annotation.is_ignored else None for annotation in annotations]
    return paint_annotations(annotations, labels, shape, downsample=downsample) == 0


def test_sample_slide_is_deterministic_and_holds_every_kind_of_annotation(tmp_path, sample):
    first, again = (write_sample_slide(tmp_path / name, size=256, seed=5) for name in ("first", "again"))
    assert first[0].read_bytes() == again[0].read_bytes() and first[1].read_text() == again[1].read_text()
    other = write_sample_slide(tmp_path / "other", size=256, seed=6)
    assert other[0].read_bytes() != first[0].read_bytes() and other[1].read_text() != first[1].read_text()
    annotations = read_qupath_geojson(sample[1])
    kinds = json.loads(sample[1].read_text())["features"]
    assert {f["geometry"]["type"] for f in kinds} == {"Polygon", "MultiPolygon"}
    assert [a.class_name for a in annotations][:2] == ["Stroma", "Tumor"] and annotations[-1].class_name == "Ignore*"
    assert len(annotations[0].polygons[0]) == 2 and len(annotations[1].polygons[0]) == 2  # lumen, stroma core
    assert annotations[1].color == (200, 0, 0)
    # Green pen ink under Ignore*: more green than red there, unlike H&E.
    image = Slide(sample[0]).read_region((0, 0), (512, 512))
    pen = pen_pixels(sample[1], (512, 512), 1.0)
    assert pen.sum() > 1000
    assert (image[pen, 1].astype(int) - image[pen, 0]).mean() > 10
    assert (image[~pen, 1].astype(int) - image[~pen, 0]).mean() < 0
    with pytest.raises(ValueError, match="at least 256"):
        write_sample_slide(tmp_path, size=100)


def test_preflight_slide_passes_the_sample_and_counts_pixels_like_the_whole_mask(sample, monkeypatch):
    slide_path, geojson_path = sample
    report = preflight_slide(slide_path, geojson_path, magnification=5)
    assert report.ok and report.class_names == ["Stroma", "Tumor"] and not report.warnings, report
    whole = load_qupath_annotations(geojson_path, (256, 256), downsample=2).mask
    assert report.class_pixels == np.bincount(whole[whole != IGNORE_INDEX], minlength=2).tolist()
    monkeypatch.setattr(preflight_module, "PREFLIGHT_BAND_PIXELS", 1000)  # many bands of a few rows: the same counts
    assert preflight_slide(slide_path, geojson_path, magnification=5).class_pixels == report.class_pixels
    assert "sample_slide.ome.tif with sample_slide.geojson at 5×" in str(report) and "1 Tumor" in str(report)
    assert "Tumor" in report._repr_html_()


def test_preflight_slide_names_each_problem(tmp_path, sample):
    slide_path, geojson_path = sample
    features = json.loads(geojson_path.read_text())["features"]
    speck = [[[300.0, 300.0], [300.4, 300.0], [300.4, 300.4], [300.0, 300.4], [300.0, 300.0]]]
    features.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": speck},
                     "properties": {"classification": {"name": "Mitosis"}}})
    features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [5.0, 5.0]},
                     "properties": {"classification": {"name": "Tumor"}}})
    far = [[[600.0, 10.0], [650.0, 10.0], [650.0, 40.0], [600.0, 10.0]]]
    features.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": far},
                     "properties": {"classification": {"name": "Tumor"}}})
    path = tmp_path / "problems.geojson"
    path.write_text(json.dumps(features))
    report = preflight_slide(slide_path, path, magnification=5, class_names=["Stroma", "Tumor", "Mitosis", "Fat"])
    errors, warnings_ = [str(p) for p in report.errors], [str(p) for p in report.warnings]
    assert not report.ok
    assert any("reaches x = 650" in e and "outside the slide (512 x 512" in e for e in errors)
    assert any("'Mitosis' is annotated but covers no pixel at 5×" in e for e in errors)
    assert any("'Fat' is never annotated" in w for w in warnings_)
    assert any("points, lines or empty" in w and "Point" in w for w in warnings_)
    assert not any("32x32 tile" in w for w in warnings_)  # Stroma and Tumor are large enough at 5×
    with pytest.raises(ValueError, match="problem"):
        report.raise_if_errors()

    unknown = preflight_slide(slide_path, path, magnification=5, class_names=["Stroma", "Tumor"])
    assert any("['Mitosis'] are annotated but not in class_names" in str(e) for e in unknown.errors)
    features.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": speck}, "properties": {}})
    path.write_text(json.dumps(features))
    unnamed = preflight_slide(slide_path, path, magnification=5, class_names=["Stroma", "Tumor", "Mitosis"])
    last = f"features[{len(features) - 1}] (unclassified)"
    assert any(f"1 annotation(s) have no class: {last}" in str(e) for e in unnamed.errors)
    skipped = preflight_slide(slide_path, path, magnification=5, class_names=["Stroma", "Tumor", "Mitosis"],
                              unclassified="skip")
    assert any("1 annotation(s) without a class are left out" in str(w) for w in skipped.warnings)
    finer = preflight_slide(slide_path, geojson_path, magnification=20)
    assert finer.ok and any("finer than the scan" in str(w) for w in finer.warnings)
    tiny = preflight_slide(slide_path, geojson_path, magnification=0.5)
    assert any("'Tumor' covers only" in str(w) and "32x32 tile" in str(w) for w in tiny.warnings)
    with pytest.raises(ValueError, match="magnification=10"):
        preflight_slide(slide_path, geojson_path)


def test_preflight_slide_without_a_pixel_size(tmp_path, sample):
    image = Slide(sample[0]).read_region((0, 0), (512, 512))
    tifffile.imwrite(tmp_path / "bare.tif", image, photometric="rgb", tile=(256, 256))
    report = preflight_slide(tmp_path / "bare.tif", sample[1], magnification=10)
    assert [e.problem for e in report.errors][0].startswith("the slide does not say its pixel size")
    assert "slide_mpp=0.25" in report.errors[0].fix and len(report.errors) == 1
    assert preflight_slide(tmp_path / "bare.tif", sample[1], magnification=10, slide_mpp=1.0).ok
    missing = preflight_slide(tmp_path / "none.tif", tmp_path / "none.geojson", magnification=10)
    assert [e.file for e in missing.errors] == ["none.tif", "none.geojson"]


def test_lzw_tiff_reads_through_read_image(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "photoshop.tif", compression="tiff_lzw")  # Pillow writes LZW itself
    if not HAS_IMAGECODECS:
        with pytest.raises(FileFormatError, match=r"pip install imagecodecs"):
            read_image(tmp_path / "photoshop.tif")
        pytest.skip("imagecodecs is not installed: tifffile cannot decode LZW")
    assert np.array_equal(read_image(tmp_path / "photoshop.tif"), image)


def test_missing_codec_says_to_install_imagecodecs(tmp_path, monkeypatch):
    def needs_codec(path):
        raise ValueError("<COMPRESSION.LZW: 5> requires the 'imagecodecs' package")

    monkeypatch.setattr(files.tifffile, "imread", needs_codec)
    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(tmp_path / "a.tif")
    with pytest.raises(FileFormatError, match=r"Fix: install imagecodecs \(`pip install imagecodecs`\)"):
        read_image(tmp_path / "a.tif")


@needs_imagecodecs
def test_jpeg_and_lzw_tiled_slides(tmp_path):
    image = ramp(512, 384)
    with tifffile.TiffWriter(tmp_path / "jpeg.tif") as tif:
        tif.write(image, tile=(128, 128), photometric="rgb", compression="jpeg", compressionargs={"level": 95})
    with tifffile.TiffWriter(tmp_path / "lzw.tif") as tif:
        tif.write(image, tile=(128, 128), photometric="rgb", compression="lzw")
    assert np.array_equal(Slide(tmp_path / "lzw.tif").read_region((100, 50), (300, 200)), image[50:250, 100:400])
    jpeg = Slide(tmp_path / "jpeg.tif").read_region((100, 50), (300, 200)).astype(int)
    assert np.abs(jpeg - image[50:250, 100:400]).mean() < 2  # lossy, but close
