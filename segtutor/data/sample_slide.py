"""A sample whole slide made on the spot: a pyramidal OME-TIFF and its QuPath annotations, offline.

The annotations come first, as a pathologist's would: a tissue outline (Stroma) with a lumen cut out of it,
tumor nests on top of it (one nest with a stroma core as a hole, two nests in one MultiPolygon), and a marker-pen
stroke marked ``Ignore*``. They are filled into a layout (:mod:`segtutor.data.qupath`), the procedural tissue
generator paints H&E into that layout (:func:`segtutor.data.tissue.paint_tissue`), and pen ink is laid over the
stroke. So the GeoJSON file is exact for the image, as no real annotation is.

The generator's tissue has about 1 µm per pixel: tumor nuclei are 6–10 px across. The slide says so (OME
``PhysicalSizeX`` = 1 µm): it imitates a scan at 10×, not at 20× or 40×. Its pyramid holds 1, 2 and 4 µm/px
(10×, 5×, 2.5×), in 256 × 256 tiles, zlib-compressed (read without imagecodecs).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage

from segtutor.data.polygons import rasterize_polygon
from segtutor.data.qupath import class_labels, paint_annotations, read_qupath_geojson
from segtutor.data.tissue import paint_tissue

SAMPLE_MPP = 1.0  # µm per pixel of level 0: the tissue generator's scale (about 10×)
SAMPLE_LEVELS = 3  # 1, 2, 4 µm per pixel
SAMPLE_TILE = 256

# QuPath's default classes and colours.
QUPATH_COLORS = {"Stroma": (150, 200, 150), "Tumor": (200, 0, 0), "Ignore*": (180, 180, 180)}

# Optical density of green marker ink in (R, G, B): it absorbs red and blue.
INK_OD = (1.1, 0.25, 0.9)


def write_sample_slide(
    folder: str | Path, *, size: int = 1536, seed: int = 0, name: str = "sample_slide"
) -> tuple[Path, Path]:
    """Write a small pyramidal OME-TIFF slide and its QuPath GeoJSON annotations into ``folder``.

    Args:
        folder: where to write (created if missing).
        size: width and height of level 0 in pixels (1 µm each), at least 256. 1536 takes about 3 s; the time
            grows with the area.
        seed: the same seed gives the same files, byte for byte.
        name: file name stem: ``<name>.ome.tif`` and ``<name>.geojson``.

    Returns:
        The paths of the slide and of the annotations.

    Example:
        >>> slide_path, geojson_path = write_sample_slide("data", size=1024, seed=0)
        >>> slide_path.name, geojson_path.name
        ('sample_slide.ome.tif', 'sample_slide.geojson')
        >>> Slide(slide_path).mpp, Slide(slide_path).dimensions
        (1.0, (1024, 1024))
    """
    if size < 256:
        raise ValueError(f"size must be at least 256 pixels, got {size}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    slide_path, geojson_path = folder / f"{name}.ome.tif", folder / f"{name}.geojson"
    rng = np.random.default_rng(seed)

    # 1) Annotations: polygons in full-resolution (x, y) pixels, written as QuPath writes them.
    features = sample_features(size, rng)
    geojson_path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, indent=1))

    # 2) Layout: the annotations filled in, the Ignore* stroke left out (there is tissue under the ink).
    annotations = read_qupath_geojson(geojson_path)
    labels, _, _ = class_labels(annotations, ("Stroma", "Tumor"))
    labels = [None if annotation.is_ignored else label for annotation, label in zip(annotations, labels)]
    mask = paint_annotations(annotations, labels, (size, size))  # uint8: 0 Stroma, 1 Tumor, 255 glass
    tissue = np.where(mask == 255, 2, mask).astype(np.int64)  # the generator's codes: 0 stroma, 1 tumor, 2 glass

    # 3) H&E into the layout, then green pen ink over the Ignore* stroke (soft-edged, Beer–Lambert again).
    image = paint_tissue(tissue, rng)[0].astype(np.float32)
    ink = np.zeros((size, size), dtype=np.float32)
    for annotation in annotations:
        if annotation.is_ignored:
            for polygon in annotation.polygons:
                ink[rasterize_polygon([ring[:, ::-1] - 0.5 for ring in polygon], (size, size))] = 1.0
    ink = ndimage.gaussian_filter(ink, 2.0) * rng.uniform(0.6, 0.9)
    image *= np.exp(-ink[..., None] * np.asarray(INK_OD, dtype=np.float32))
    levels = [np.clip(image + 0.5, 0, 255).astype(np.uint8)]

    # 4) Pyramid: each level the 2 x 2 mean of the one before.
    for _ in range(SAMPLE_LEVELS - 1):
        previous = levels[-1].astype(np.float32)
        h, w = previous.shape[0] // 2 * 2, previous.shape[1] // 2 * 2
        blocks = previous[:h, :w].reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
        levels.append(np.clip(blocks + 0.5, 0, 255).astype(np.uint8))
    write_pyramid(slide_path, levels, mpp=SAMPLE_MPP, uuid=str(uuid.UUID(bytes=rng.bytes(16), version=4)))
    return slide_path, geojson_path


def write_pyramid(path: Path, levels: list[np.ndarray], *, mpp: float, uuid: str) -> None:
    """Write RGB levels (full resolution first, each half the one before) as a tiled, zlib-compressed OME-TIFF.

    Level 0 goes into the main image with the pixel size in its OME metadata; the others into sub-IFDs, as
    QuPath and bfconvert write them. ``uuid`` names the file in its OME metadata (fixed, for identical files).
    """
    options = {
        "tile": (SAMPLE_TILE, SAMPLE_TILE),
        "photometric": "rgb",
        "compression": "zlib",  # Python's own zlib: no imagecodecs needed to write or read it
        "compressionargs": {"level": 1},  # fast; level 6 saves 1 % on noisy tissue and takes twice as long
    }
    with tifffile.TiffWriter(path, ome=True) as tif:
        for k, level in enumerate(levels):
            level_mpp = mpp * levels[0].shape[1] / level.shape[1]
            resolution = {"resolution": (1e4 / level_mpp, 1e4 / level_mpp), "resolutionunit": "CENTIMETER"}
            if k == 0:
                metadata = {
                    "axes": "YXS",
                    "UUID": uuid,
                    "Name": "segtutor sample slide",
                    "PhysicalSizeX": mpp,
                    "PhysicalSizeXUnit": "µm",
                    "PhysicalSizeY": mpp,
                    "PhysicalSizeYUnit": "µm",
                }
                tif.write(level, subifds=len(levels) - 1, metadata=metadata, **resolution, **options)
            else:
                tif.write(level, subfiletype=1, **resolution, **options)


def sample_features(size: int, rng: np.random.Generator) -> list[dict]:
    """The sample's annotations as QuPath GeoJSON features: Stroma (with a lumen), Tumor nests, Ignore*.

    Returns:
        GeoJSON features, in painting order (later ones on top).
    """
    center = size / 2 + rng.uniform(-0.02, 0.02, size=2) * size

    # 1) Tissue outline, with a lumen (a hole) in it.
    radius = 0.40 * size
    lumen_at = center + _direction(rng.uniform(0, 2 * np.pi)) * 0.55 * radius
    lumen = _blob(lumen_at, 0.035 * size, rng, roughness=0.15)
    tissue = np.clip(_blob(center, radius, rng, roughness=0.12), 0, size)
    features = [_feature("Polygon", [_ring(tissue), _ring(lumen)], "Stroma", rng)]

    # 2) Tumor nests inside the tissue, away from the lumen and from each other.
    nests: list[tuple[np.ndarray, float]] = []
    for _ in range(10_000):  # rejection sampling; six fit easily
        if len(nests) == 6:
            break
        at = center + _direction(rng.uniform(0, 2 * np.pi)) * rng.uniform(0.0, 0.6) * radius
        nest_radius = rng.uniform(0.05, 0.09) * size
        others = [(lumen_at, 0.035 * size), *nests]
        if all(np.hypot(*(at - c)) > 1.5 * (nest_radius + r) for c, r in others):
            nests.append((at, nest_radius))
    outlines = [_blob(at, r, rng, roughness=0.25) for at, r in nests]
    core = _blob(nests[0][0], 0.35 * nests[0][1], rng, roughness=0.1)  # a stroma core: the nest's hole
    features.append(_feature("Polygon", [_ring(outlines[0]), _ring(core)], "Tumor", rng))
    features.append(_feature("MultiPolygon", [[_ring(outlines[1])], [_ring(outlines[2])]], "Tumor", rng))
    features += [_feature("Polygon", [_ring(outline)], "Tumor", rng) for outline in outlines[3:]]

    # 3) A marker-pen stroke across the tissue's edge: a band around a gently curved line.
    start = center + _direction(rng.uniform(0, 2 * np.pi)) * radius * 1.05
    heading = np.arctan2(*(center - start)[::-1]) + rng.uniform(-0.6, 0.6)
    steps = np.linspace(0.0, 0.45 * size, 40)
    angle = heading + 0.4 * np.sin(steps / (0.3 * size) * np.pi + rng.uniform(0, np.pi))
    line = start + np.cumsum(np.stack([np.cos(angle), np.sin(angle)], -1) * steps[1], axis=0)  # (40, 2) x, y
    normal = np.stack([-np.sin(angle), np.cos(angle)], -1) * 0.012 * size
    band = np.clip(np.concatenate([line + normal, (line - normal)[::-1]]), 0, size)
    features.append(_feature("Polygon", [_ring(band)], "Ignore*", rng))
    return features


def _blob(center: np.ndarray, radius: float, rng: np.random.Generator, *, roughness: float) -> np.ndarray:
    """A lobulated closed outline: a circle whose radius varies with a few random harmonics. (n, 2) x, y."""
    theta = np.linspace(0.0, 2 * np.pi, 128, endpoint=False)
    wobble = sum(
        roughness / k * np.cos(k * theta + rng.uniform(0, 2 * np.pi)) * rng.uniform(0.5, 1.0) for k in range(2, 7)
    )
    return center + (radius * (1.0 + wobble))[:, None] * np.stack([np.cos(theta), np.sin(theta)], -1)


def _direction(angle: float) -> np.ndarray:
    """The unit vector (x, y) at ``angle`` radians."""
    return np.array([np.cos(angle), np.sin(angle)])


def _ring(corners: np.ndarray) -> list[list[float]]:
    """Corners as a closed GeoJSON ring (the first position repeated at the end), rounded to 0.01 pixel."""
    positions = np.round(corners, 2).tolist()
    return positions + positions[:1]


def _feature(kind: str, coordinates: list, class_name: str, rng: np.random.Generator) -> dict:
    """One annotation as QuPath exports it."""
    return {
        "type": "Feature",
        "id": str(uuid.UUID(bytes=rng.bytes(16), version=4)),
        "geometry": {"type": kind, "coordinates": coordinates},
        "properties": {
            "objectType": "annotation",
            "classification": {"name": class_name, "color": list(QUPATH_COLORS[class_name])},
        },
    }
