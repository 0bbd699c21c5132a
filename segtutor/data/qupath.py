"""QuPath annotations as a training mask: a GeoJSON export read, checked and filled in, one label per pixel.

QuPath (File > Export objects as GeoJSON) writes each annotation as a feature: a ``Polygon`` or ``MultiPolygon``
(inner rings are holes) in full-resolution pixel coordinates (x to the right, y down, the image's top-left corner
at 0, 0), and its class in ``properties.classification`` with a ``name`` and a ``color``. A class whose name ends
in ``*`` (QuPath's ``Ignore*``, ``Region*``) means "do not train on this": its pixels get ``IGNORE_INDEX``, like
pixels nobody annotated. Where annotations overlap, the one later in the file wins, as it is drawn on top.
Every feature with an area is painted, whatever its ``objectType`` (annotation, detection, cell: a cell by its
outline); export only the annotations from QuPath when that is what the mask should hold.

A mask pixel belongs to an annotation when its centre lies inside it (:mod:`segtutor.data.polygons`): pixel
(row, col) of a mask at ``downsample`` d covers full-resolution x from ``col * d`` to ``(col + 1) * d``, so its
centre is at x = (col + 0.5) * d, y = (row + 0.5) * d.

The way back: :func:`write_qupath_geojson` writes a predicted mask as GeoJSON that QuPath imports (File > Import
objects, or drag the file onto the slide), one object per class (or per region), outlined along the pixels'
edges in the same coordinates, so that reading it back gives the same mask.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segtutor.data.classes import IGNORE_INDEX, class_colors
from segtutor.data.files import FileFormatError
from segtutor.data.polygons import polygon_box, trace_outlines

AREA_TYPES = ("Polygon", "MultiPolygon")  # geometries that enclose pixels
NO_AREA_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString")  # skipped, with a warning
UNCLASSIFIED_CHOICES = ("error", "ignore", "skip")
OBJECT_TYPES = ("annotation", "detection")  # what QuPath makes of a written feature
EXPORT_HINT = "export the annotations from QuPath with File > Export objects as GeoJSON"


@dataclass(frozen=True, eq=False)
class QuPathAnnotation:
    """One feature of a QuPath GeoJSON file, as read, before it becomes pixels."""

    index: int  # position in the file's list of features, from 0
    class_name: str | None  # properties.classification.name; None: unclassified
    color: tuple[int, int, int] | None  # properties.classification.color (QuPath's colour for the class)
    polygons: tuple[tuple[np.ndarray, ...], ...]  # each polygon: outline, then holes; (n, 2) float64 x, y
    no_area: tuple[str, ...] = ()  # geometry types in it that enclose no pixels (points, lines), or "no geometry"
    name: str = ""  # properties.name, the annotation's name in QuPath, if any

    @property
    def is_ignored(self) -> bool:
        """True for QuPath's "do not train on this" classes, whose names end in ``*`` (``Ignore*``)."""
        return self.class_name is not None and self.class_name.endswith("*")

    def __str__(self) -> str:
        label = self.class_name if self.class_name is not None else "unclassified"
        return f"features[{self.index}] ({label}" + (f", {self.name!r}" if self.name else "") + ")"


@dataclass(frozen=True, eq=False)
class AnnotationMask:
    """A QuPath GeoJSON file as a mask. Unpacks as ``mask, class_names = load_qupath_annotations(...)``."""

    mask: np.ndarray  # int64 (H, W): index into class_names, or IGNORE_INDEX (unannotated, Ignore*)
    class_names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]  # one (R, G, B) per class: the annotator's colour from the file
    skipped: tuple[str, ...] = ()  # every feature left out of the mask, and why

    def __iter__(self):  # mask, class_names = ...
        return iter((self.mask, self.class_names))

    def __repr__(self) -> str:
        counts = np.bincount(self.mask[self.mask != IGNORE_INDEX].ravel(), minlength=len(self.class_names))
        share = counts / max(self.mask.size, 1)
        classes = ", ".join(f"{k} {name!r} {s:.1%}" for k, (name, s) in enumerate(zip(self.class_names, share)))
        ignored = float((self.mask == IGNORE_INDEX).mean()) if self.mask.size else 0.0
        skipped = f", {len(self.skipped)} feature(s) skipped" if self.skipped else ""
        return (
            f"AnnotationMask({self.mask.shape[0]}x{self.mask.shape[1]}: {classes}; "
            f"ignored {ignored:.1%}{skipped})"
        )


def load_qupath_annotations(
    path: str | Path,
    shape: tuple[int, int],
    *,
    class_names: Sequence[str] | None = None,
    downsample: float = 1.0,
    origin: tuple[float, float] = (0.0, 0.0),
    image_size: tuple[float, float] | None = None,
    unclassified: str = "error",
) -> AnnotationMask:
    """A mask from a QuPath GeoJSON export: one label per class, ``IGNORE_INDEX`` where nothing or ``Ignore*`` is.

    Annotations later in the file are painted over earlier ones. Points and lines enclose no pixels: they are
    skipped with a warning (and listed in ``.skipped``).

    Args:
        path: a ``.geojson`` file: a FeatureCollection, a list of features or one feature.
        shape: (H, W) of the mask.
        class_names: label order, e.g. ``("Stroma", "Tumor")``; ``None`` takes the classes in the order they first
            appear in the file. Classes ending in ``*`` are always ignored and cannot be listed.
        downsample: full-resolution pixels per mask pixel (4 for a mask at a quarter of the scan's resolution).
        origin: full-resolution (x, y) of the mask's top-left corner, for a mask of a region.
        image_size: full-resolution (width, height) of the image the annotations were drawn on; coordinates
            beyond it by more than a mask pixel are an error. ``None``: the area the mask covers. Pass the slide's
            size (``Slide.dimensions``) when the mask is a region of it: annotations are then cut at its border.
        unclassified: what to do with annotations that have no class: "error", "ignore" (paint them with
            ``IGNORE_INDEX``) or "skip" (leave them out, listed in ``.skipped``).

    Returns:
        An :class:`AnnotationMask`: ``mask`` int64 (H, W), ``class_names``, ``colors`` (the annotator's), ``skipped``.

    Raises:
        FileFormatError: not GeoJSON, a geometry that cannot be filled, coordinates outside the image, a class
            not in ``class_names``, an unclassified annotation (with ``unclassified="error"``).

    Example:
        >>> slide_path, geojson_path = write_sample_slide("data", size=512)
        >>> mask, class_names = load_qupath_annotations(geojson_path, (512, 512))
        >>> class_names, mask.shape
        (('Stroma', 'Tumor'), (512, 512))
        >>> labels = load_qupath_annotations(geojson_path, (128, 128), downsample=4)  # a quarter of the resolution
        >>> labels.colors  # QuPath's colours for the classes
        ((150, 200, 150), (200, 0, 0))
    """
    path = Path(path)
    shape = _check_shape(shape)
    if downsample <= 0:
        raise ValueError(f"downsample must be positive (full-resolution pixels per mask pixel), got {downsample}")
    annotations = read_qupath_geojson(path)
    names = resolve_class_names(annotations, class_names)
    problems = class_problems(annotations, names, unclassified=unclassified)
    if problems:
        raise FileFormatError(path, *problems[0])
    labels, colors, skipped = class_labels(annotations, names, unclassified=unclassified)
    if image_size is None:
        bounds = (origin[0], origin[1], origin[0] + shape[1] * downsample, origin[1] + shape[0] * downsample)
    else:
        bounds = (0.0, 0.0, float(image_size[0]), float(image_size[1]))
    outside = annotations_outside(annotations, bounds, slack=max(1.0, downsample))
    if outside:
        annotation, (x, y) = outside[0]
        more = f" (and {len(outside) - 1} more)" if len(outside) > 1 else ""
        raise FileFormatError(
            path,
            f"{annotation}{more} reaches x = {x:.1f}, y = {y:.1f}, outside the image "
            f"(x {bounds[0]:g}..{bounds[2]:g}, y {bounds[1]:g}..{bounds[3]:g} in full-resolution pixels)",
            "check that the annotations belong to this image; if the mask is smaller than the image they were "
            "drawn on, pass downsample=(image width / mask width); if it is a region of a slide, pass "
            "image_size=slide.dimensions (Slide.read_mask does)",
        )
    skipped += _warn_no_area(annotations, path)
    mask = paint_annotations(annotations, labels, shape, origin=origin, downsample=downsample)
    return AnnotationMask(mask.astype(np.int64), names, colors, tuple(skipped))


def write_qupath_geojson(
    path: str | Path,
    mask: np.ndarray,
    class_names: Sequence[str],
    *,
    colors: Sequence[tuple[int, int, int]] | None = None,
    downsample: float = 1.0,
    origin: tuple[float, float] = (0.0, 0.0),
    classes: Sequence[str] | None = None,
    object_type: str = "annotation",
    split: bool = False,
) -> Path:
    """Write a mask (a prediction, say) as QuPath GeoJSON: the way back into QuPath, in full-resolution pixels.

    Each class becomes one ``MultiPolygon`` feature (``split=True``: one ``Polygon`` per connected region), its
    outlines along the pixels' edges (holes included), classified with the class's name and colour. Pixels of
    ``IGNORE_INDEX`` or of a class left out of ``classes`` are written as nothing. Reading the file back with
    :func:`load_qupath_annotations` and the same ``shape``, ``downsample`` and ``origin`` gives the same mask.

    Args:
        path: the ``.geojson`` file to write.
        mask: int (H, W) labels, indices into ``class_names`` (e.g. ``probs.argmax(0)``).
        class_names: the name of each label, as QuPath should show it.
        colors: one (R, G, B) per class; None: segtutor's palette.
        downsample: full-resolution pixels per mask pixel (``slide.downsample(magnification=10)``).
        origin: full-resolution (x, y) of the mask's top-left corner, for a mask of a region.
        classes: the classes to write (e.g. ``["Tumor"]``); None: every class with pixels.
        object_type: "annotation" (editable in QuPath) or "detection" (many small objects, read-only).
        split: one feature per connected region instead of one per class.

    Returns:
        The path written.

    Example:
        >>> labels = np.zeros((64, 64), dtype=np.int64)
        >>> labels[16:40, 8:30] = 1
        >>> path = write_qupath_geojson("prediction.geojson", labels, ["Stroma", "Tumor"], downsample=4)
        >>> np.array_equal(load_qupath_annotations(path, (64, 64), downsample=4).mask, labels)
        True
    """
    path = Path(path)
    mask = np.asarray(mask)
    names = tuple(str(name) for name in class_names)
    if mask.ndim != 2 or not np.issubdtype(mask.dtype, np.integer):
        raise ValueError(f"mask must be int (H, W) labels, got {mask.dtype} {mask.shape}; pass probs.argmax(0)")
    labels = set(np.unique(mask).tolist()) - {IGNORE_INDEX}
    beyond = sorted(label for label in labels if not 0 <= label < len(names))
    if beyond:
        raise ValueError(
            f"mask holds labels {beyond[:5]} but class_names names only {len(names)} classes {list(names)}; "
            "pass a name for every label (IGNORE_INDEX pixels are left out)"
        )
    if object_type not in OBJECT_TYPES:
        raise ValueError(f"object_type must be one of {OBJECT_TYPES}, got {object_type!r}")
    if downsample <= 0:
        raise ValueError(f"downsample must be positive (full-resolution pixels per mask pixel), got {downsample}")
    unknown = sorted(set(classes or ()) - set(names))
    if unknown:
        raise ValueError(f"classes {unknown} are not in class_names {list(names)}")
    colors = tuple(colors) if colors is not None else class_colors(names)
    if len(colors) != len(names):
        raise ValueError(f"give one colour per class: {len(names)} classes, {len(colors)} colours")
    chosen = [label for label, name in enumerate(names) if (classes is None or name in classes) and label in labels]

    def position(corner: np.ndarray) -> list[float]:  # a corner's mask (row, col) to full-resolution [x, y]
        row, col = corner + 0.5  # pixel centres at integers: corners at half-integers
        return [round(origin[0] + col * downsample, 6), round(origin[1] + row * downsample, 6)]

    features = []
    for label in chosen:
        # 1) The class's regions as outlines and holes, along the pixels' edges.
        regions = trace_outlines(mask == label)
        polygons = [[[position(c) for c in [*ring, ring[0]]] for ring in rings] for rings in regions]  # closed rings
        # 2) One feature for the class, or one per region, classified as QuPath writes it.
        geometries = [{"type": "MultiPolygon", "coordinates": polygons}] if not split else [
            {"type": "Polygon", "coordinates": rings} for rings in polygons
        ]
        classification = {"name": names[label], "color": [int(c) for c in colors[label][:3]]}
        features += [
            {"type": "Feature", "geometry": geometry,
             "properties": {"objectType": object_type, "classification": classification}}
            for geometry in geometries
        ]  # fmt: skip
    with open(path, "w", encoding="utf-8") as file:
        json.dump({"type": "FeatureCollection", "features": features}, file)
    return path


def read_qupath_geojson(path: str | Path) -> tuple[QuPathAnnotation, ...]:
    """The features of a QuPath GeoJSON export, parsed and checked, in file order (nothing dropped).

    Raises:
        FileFormatError: not JSON, not GeoJSON features, a geometry type that cannot be filled, bad coordinates.

    Example:
        >>> slide_path, geojson_path = write_sample_slide("data", size=512)
        >>> [(a.class_name, len(a.polygons)) for a in read_qupath_geojson(geojson_path)][:3]
        [('Stroma', 1), ('Tumor', 1), ('Tumor', 2)]
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise FileFormatError(path, f"not JSON ({error.msg} at line {error.lineno})", EXPORT_HINT) from error
    except (OSError, UnicodeDecodeError) as error:
        raise FileFormatError(path, f"cannot read this file ({type(error).__name__}: {error})", EXPORT_HINT) from error
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        features = data.get("features")
    elif isinstance(data, dict) and data.get("type") == "Feature":
        features = [data]
    else:
        features = data
    if not isinstance(features, list):
        found = f"an object with keys {sorted(data)[:6]}" if isinstance(data, dict) else type(data).__name__
        raise FileFormatError(
            path, f"not GeoJSON annotations: expected a FeatureCollection or a list of features, found {found}",
            EXPORT_HINT,
        )
    return tuple(_read_feature(feature, index, path) for index, feature in enumerate(features))


def resolve_class_names(annotations: Sequence[QuPathAnnotation], class_names: Sequence[str] | None) -> tuple[str, ...]:
    """``class_names`` checked, or the painted classes in order of first appearance (``*`` classes left out)."""
    if class_names is None:
        painted = (a.class_name for a in annotations if a.polygons and a.class_name and not a.is_ignored)
        return tuple(dict.fromkeys(painted))
    names = tuple(class_names)
    starred = [name for name in names if name.endswith("*")]
    if starred:
        raise ValueError(
            f"class_names must not hold {starred}: QuPath classes ending in * (Ignore*, Region*) are never "
            "trained on, their pixels get IGNORE_INDEX"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"class_names must name each class once, got {names}")
    return names


def class_problems(
    annotations: Sequence[QuPathAnnotation], class_names: Sequence[str], *, unclassified: str = "error"
) -> list[tuple[str, str]]:
    """What is wrong with the annotations' classes: (problem, fix) pairs, none when all is well.

    Problems: annotations without a class (with ``unclassified="error"``), classes not in ``class_names``.
    """
    if unclassified not in UNCLASSIFIED_CHOICES:
        raise ValueError(f"unclassified must be one of {UNCLASSIFIED_CHOICES}, got {unclassified!r}")
    problems = []
    unnamed = [a for a in annotations if a.class_name is None and a.polygons]
    if unnamed and unclassified == "error":
        listed = ", ".join(str(a) for a in unnamed[:5]) + (f" and {len(unnamed) - 5} more" if len(unnamed) > 5 else "")
        problems.append((
            f"{len(unnamed)} annotation(s) have no class: {listed}",
            "give each a class in QuPath (right click > Set classification), or pass unclassified='ignore' to "
            "ignore their pixels or unclassified='skip' to leave them out",
        ))
    painted = {a.class_name for a in annotations if a.polygons and a.class_name and not a.is_ignored}
    unknown = sorted(painted - set(class_names))
    if unknown:
        lower = {name.lower(): name for name in class_names}
        hints = [f"{name!r} looks like {lower[name.lower()]!r}" for name in unknown if name.lower() in lower]
        problems.append((
            f"classes {unknown} are annotated but not in class_names {list(class_names)}"
            + (f" ({'; '.join(hints)}: names must match exactly)" if hints else ""),
            "add them to class_names, or rename them in QuPath",
        ))
    return problems


def class_labels(
    annotations: Sequence[QuPathAnnotation], class_names: Sequence[str], *, unclassified: str = "error"
) -> tuple[list[int | None], tuple[tuple[int, int, int], ...], list[str]]:
    """The label of every annotation, and the colour of every class.

    Check :func:`class_problems` first: annotations it would complain about get no label here.

    Returns:
        ``labels`` (one per annotation: a class index, ``IGNORE_INDEX``, or None to leave it out), ``colors`` (one
        per class: the file's, else segtutor's palette) and ``skipped`` (what was left out, and why).
    """
    labels: list[int | None] = []
    skipped: list[str] = []
    for annotation in annotations:
        if annotation.class_name is None:
            if unclassified != "ignore" and annotation.polygons:
                skipped.append(f"{annotation}: no class (unclassified={unclassified!r})")
            labels.append(IGNORE_INDEX if unclassified == "ignore" else None)
        elif annotation.is_ignored:
            labels.append(IGNORE_INDEX)
        elif annotation.class_name in class_names:
            labels.append(list(class_names).index(annotation.class_name))
        else:
            if annotation.polygons:
                skipped.append(f"{annotation}: class not in class_names")
            labels.append(None)
    file_colors: dict[str, tuple[int, int, int]] = {}
    for annotation in annotations:
        if annotation.class_name and annotation.color is not None:
            file_colors.setdefault(annotation.class_name, annotation.color)
    colors = tuple(file_colors.get(name, fallback) for name, fallback in zip(class_names, class_colors(class_names)))
    return labels, colors, skipped


def annotations_outside(
    annotations: Sequence[QuPathAnnotation], bounds: tuple[float, float, float, float], *, slack: float = 1.0
) -> list[tuple[QuPathAnnotation, tuple[float, float]]]:
    """The annotations with a corner beyond ``bounds`` = (x0, y0, x1, y1) by more than ``slack`` pixels.

    Returns:
        (annotation, (x, y) of its corner farthest out) for each.
    """
    x0, y0, x1, y1 = bounds
    outside = []
    for annotation in annotations:
        if not annotation.polygons:
            continue
        corners = np.concatenate([ring for polygon in annotation.polygons for ring in polygon])  # (n, 2) x, y
        beyond = np.maximum.reduce([x0 - corners[:, 0], corners[:, 0] - x1, y0 - corners[:, 1], corners[:, 1] - y1])
        if beyond.max() > slack:
            outside.append((annotation, tuple(float(v) for v in corners[np.argmax(beyond)])))
    return outside


def paint_annotations(
    annotations: Sequence[QuPathAnnotation],
    labels: Sequence[int | None],
    shape: tuple[int, int],
    *,
    origin: tuple[float, float] = (0.0, 0.0),
    downsample: float = 1.0,
) -> np.ndarray:
    """Paint each annotation's label into a mask, in file order (later ones on top); None labels are left out.

    Returns:
        uint8 (H, W), ``IGNORE_INDEX`` where nothing is painted.
    """
    mask = np.full(shape, IGNORE_INDEX, dtype=np.uint8)
    for annotation, label in zip(annotations, labels):
        if label is None:
            continue
        for polygon in annotation.polygons:
            # Full-resolution (x, y) to mask (row, column), pixel centres at integers.
            rings = [(ring[:, ::-1] - origin[::-1]) / downsample - 0.5 for ring in polygon]
            rows, cols, inside = polygon_box(rings, shape)
            mask[rows, cols][inside] = label
    return mask


def _read_feature(feature: object, index: int, path: Path) -> QuPathAnnotation:
    """One GeoJSON feature as a :class:`QuPathAnnotation`."""
    where = f"features[{index}]"
    if not isinstance(feature, dict) or "geometry" not in feature:
        raise FileFormatError(path, f"{where} is not a GeoJSON feature (no 'geometry')", EXPORT_HINT)
    properties = feature.get("properties") or {}
    classification = properties.get("classification") or {}
    class_name = classification.get("name") if isinstance(classification, dict) else None
    color = _read_color(classification) if isinstance(classification, dict) else None
    name = properties.get("name") or ""
    polygons: list[tuple[np.ndarray, ...]] = []
    no_area: list[str] = []
    geometries = [feature["geometry"]]
    while geometries:  # a GeometryCollection holds more geometries
        geometry = geometries.pop(0)
        if geometry is None:
            no_area.append("no geometry")
            continue
        kind = geometry.get("type") if isinstance(geometry, dict) else None
        if kind == "GeometryCollection":
            geometries.extend(geometry.get("geometries") or [])
        elif kind in NO_AREA_TYPES:
            no_area.append(kind)
        elif kind in AREA_TYPES:
            parts = geometry.get("coordinates")
            if not parts or not isinstance(parts, list):
                raise FileFormatError(path, f"{where} is a {kind} without coordinates", EXPORT_HINT)
            for rings in [parts] if kind == "Polygon" else parts:
                if not rings or not isinstance(rings, list):
                    raise FileFormatError(path, f"{where} has a {kind} part without rings", EXPORT_HINT)
                polygons.append(tuple(_read_ring(ring, f"{where} {kind}", path) for ring in rings))
        else:
            raise FileFormatError(
                path,
                f"{where} has a geometry of type {kind!r}, which cannot be filled into a mask",
                f"use {' or '.join(AREA_TYPES)} annotations (QuPath's rectangle, ellipse, polygon and brush tools "
                "all export as these)",
            )
    class_name = None if class_name is None else str(class_name)
    return QuPathAnnotation(index, class_name, color, tuple(polygons), tuple(no_area), str(name))


def _read_ring(ring: object, where: str, path: Path) -> np.ndarray:
    """A ring of [x, y] positions as (n, 2) float64 (a repeated closing position dropped)."""
    try:
        corners = np.array([position[:2] for position in ring], dtype=np.float64)
    except (TypeError, ValueError, IndexError) as error:
        raise FileFormatError(path, f"{where} has malformed coordinates ({error})", EXPORT_HINT) from error
    if corners.ndim != 2 or corners.shape[1] != 2 or not np.isfinite(corners).all():
        raise FileFormatError(path, f"{where} has coordinates that are not finite [x, y] pairs", EXPORT_HINT)
    if len(corners) > 1 and np.array_equal(corners[0], corners[-1]):
        corners = corners[:-1]
    if len(corners) < 3:
        raise FileFormatError(path, f"{where} has a ring with {len(corners)} corner(s); a polygon needs 3", EXPORT_HINT)
    return corners


def _read_color(classification: dict) -> tuple[int, int, int] | None:
    """The class colour: ``color`` [r, g, b] (QuPath 0.3 and later) or ``colorRGB`` packed ARGB (QuPath 0.2)."""
    color = classification.get("color")
    if isinstance(color, (list, tuple)) and len(color) >= 3:
        return tuple(int(c) for c in color[:3])
    packed = classification.get("colorRGB")
    if isinstance(packed, int):
        return ((packed >> 16) & 255, (packed >> 8) & 255, packed & 255)
    return None


def _warn_no_area(annotations: Sequence[QuPathAnnotation], path: Path) -> list[str]:
    """Warn once about points, lines and empty geometries (they enclose no pixels); return what was skipped."""
    skipped = [f"{a}: {', '.join(a.no_area)} enclose(s) no pixels" for a in annotations if a.no_area]
    if skipped:
        listed = "; ".join(skipped[:3]) + (f"; and {len(skipped) - 3} more" if len(skipped) > 3 else "")
        warnings.warn(
            f"{path.name}: {len(skipped)} feature(s) hold points, lines or no geometry, which enclose no pixels and "
            f"are left out of the mask: {listed}. Draw areas (polygon, brush) for what the network should learn.",
            UserWarning,
            stacklevel=3,
        )
    return skipped


def _check_shape(shape: tuple[int, int]) -> tuple[int, int]:
    """``shape`` as (H, W) of positive ints, or a clear error."""
    shape = tuple(shape)
    if len(shape) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in shape):
        hint = "; pass image.shape[:2]" if len(shape) == 3 else ""
        raise ValueError(f"shape must be (H, W) of the mask, two positive ints, got {shape}{hint}")
    return int(shape[0]), int(shape[1])
