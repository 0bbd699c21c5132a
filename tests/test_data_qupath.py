"""QuPath GeoJSON to masks, against a brute-force point-in-polygon test of every pixel centre; and the errors."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from segtutor.data import (
    IGNORE_INDEX,
    AnnotationMask,
    FileFormatError,
    class_colors,
    load_qupath_annotations,
    rasterize_polygon,
    read_qupath_geojson,
    trace_outlines,
    write_qupath_geojson,
)
from segtutor.data.polygons import polygon_box

# Corners off the half-pixel grid, so that no pixel centre lies on an edge (ties are tested on their own).
STROMA = [[[1.3, 0.7], [37.2, 1.1], [38.6, 27.4], [2.2, 28.9], [1.3, 0.7]]]
TUMOR_WITH_HOLE = [
    [[5.1, 4.3], [19.7, 3.6], [21.4, 18.2], [12.2, 22.9], [4.4, 17.1], [5.1, 4.3]],
    [[9.3, 8.2], [15.6, 9.1], [13.8, 15.3], [8.7, 13.9], [9.3, 8.2]],  # a hole: stroma shows through
]
TUMOR_PART = [[[26.3, 5.2], [34.1, 7.7], [30.9, 14.6], [25.2, 12.3], [26.3, 5.2]]]
IGNORE = [[[16.2, 14.1], [29.8, 16.3], [28.4, 25.7], [17.7, 24.2], [16.2, 14.1]]]  # over stroma and tumor


def feature(kind: str, coordinates: list, class_name: str | None = None, color: list | None = None, **extra) -> dict:
    properties: dict = {"objectType": "annotation", **extra}
    if class_name is not None:
        properties["classification"] = {"name": class_name, **({"color": color} if color else {})}
    return {"type": "Feature", "geometry": {"type": kind, "coordinates": coordinates}, "properties": properties}


def write(path: Path, features: list | dict, *, collection: bool = True) -> Path:
    """Write features as a FeatureCollection (as QuPath 0.4 does), or as they are (a list, or one feature)."""
    data = {"type": "FeatureCollection", "features": features} if collection else features
    path.write_text(json.dumps(data))
    return path


def sample_features() -> list[dict]:
    return [
        feature("Polygon", STROMA, "Stroma", [150, 200, 150]),
        feature("MultiPolygon", [TUMOR_WITH_HOLE, TUMOR_PART], "Tumor", [200, 0, 0]),
        feature("Polygon", IGNORE, "Ignore*", [180, 180, 180]),
    ]


def inside(x: float, y: float, rings: list) -> bool:
    """Even–odd ray casting towards +x, one edge at a time (W. R. Franklin's PNPOLY)."""
    count = 0
    for ring in rings:
        for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1]):
            if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
                count += 1
    return count % 2 == 1


def reference_mask(painted: list[tuple[list, int]], shape, downsample=1.0, origin=(0.0, 0.0)) -> np.ndarray:
    """Label of every pixel centre: the last (polygons of a feature, label) pair that contains it."""
    mask = np.full(shape, IGNORE_INDEX, dtype=np.int64)
    for row in range(shape[0]):
        for col in range(shape[1]):
            x, y = origin[0] + (col + 0.5) * downsample, origin[1] + (row + 0.5) * downsample
            for polygons, label in painted:
                if any(inside(x, y, rings) for rings in polygons):
                    mask[row, col] = label
    return mask


def sample_reference(shape, downsample=1.0, origin=(0.0, 0.0), stroma=0, tumor=1) -> np.ndarray:
    painted = [([STROMA], stroma), ([TUMOR_WITH_HOLE, TUMOR_PART], tumor), ([IGNORE], IGNORE_INDEX)]
    return reference_mask(painted, shape, downsample, origin)


def test_holes_multipolygons_overlaps_and_ignore_match_a_brute_force_reference(tmp_path):
    path = write(tmp_path / "a.geojson", sample_features())
    result = load_qupath_annotations(path, (30, 40))
    mask, class_names = result  # the (mask, class_names) contract
    assert isinstance(result, AnnotationMask)
    assert mask.dtype == np.int64 and mask.shape == (30, 40)
    assert class_names == ("Stroma", "Tumor")  # order of first appearance; Ignore* is no class
    assert result.colors == ((150, 200, 150), (200, 0, 0))  # the annotator's colours
    expected = sample_reference((30, 40))
    assert np.array_equal(mask, expected)
    # The reference really holds each case: a hole, a second part, Ignore* on top, unannotated border.
    assert expected[11, 12] == 0 and expected[6, 8] == 1 and expected[10, 29] == 1
    assert expected[20, 22] == IGNORE_INDEX and expected[29, 39] == IGNORE_INDEX
    assert result.skipped == ()
    assert "Stroma" in repr(result) and "30x40" in repr(result)


def test_downsample_and_origin_give_the_mask_of_a_scaled_region(tmp_path):
    path = write(tmp_path / "a.geojson", sample_features())
    mask, _ = load_qupath_annotations(path, (9, 11), downsample=2.5, origin=(6.3, 4.1), image_size=(40, 30))
    assert np.array_equal(mask, sample_reference((9, 11), downsample=2.5, origin=(6.3, 4.1)))
    quarter, _ = load_qupath_annotations(path, (8, 10), downsample=4)
    assert np.array_equal(quarter, sample_reference((8, 10), downsample=4))


def test_class_names_set_the_label_order_and_unknown_colours_come_from_the_palette(tmp_path):
    path = write(tmp_path / "a.geojson", sample_features())
    result = load_qupath_annotations(path, (30, 40), class_names=("Necrosis", "Tumor", "Stroma"))
    assert result.class_names == ("Necrosis", "Tumor", "Stroma")
    assert np.array_equal(result.mask, sample_reference((30, 40), stroma=2, tumor=1))
    assert result.colors == (class_colors(("Necrosis",))[0], (200, 0, 0), (150, 200, 150))


def test_a_plain_list_of_features_and_qupath_0_2_colours(tmp_path):
    features = sample_features()
    del features[0]["properties"]["classification"]["color"]
    features[0]["properties"]["classification"]["colorRGB"] = -(1 << 24) + (10 << 16) + (20 << 8) + 30  # ARGB
    result = load_qupath_annotations(write(tmp_path / "a.geojson", features, collection=False), (30, 40))
    assert np.array_equal(result.mask, sample_reference((30, 40)))
    assert result.colors[0] == (10, 20, 30)
    single = load_qupath_annotations(write(tmp_path / "b.geojson", features[1], collection=False), (30, 40))
    assert single.class_names == ("Tumor",)


def test_later_annotations_win_where_they_overlap(tmp_path):
    square = [[[2.2, 2.2], [12.2, 2.2], [12.2, 12.2], [2.2, 12.2], [2.2, 2.2]]]
    shifted = [[[[x + 5, y + 5] for x, y in square[0]]]]
    features = [feature("Polygon", square, "A"), feature("MultiPolygon", shifted, "B")]
    ab, _ = load_qupath_annotations(write(tmp_path / "ab.geojson", features), (20, 20))
    ba, _ = load_qupath_annotations(write(tmp_path / "ba.geojson", features[::-1]), (20, 20), class_names=("A", "B"))
    assert ab[10, 10] == 1 and ba[10, 10] == 0  # the overlap
    assert ab[4, 4] == ba[4, 4] == 0 and ab[15, 15] == ba[15, 15] == 1


def test_pixel_centre_rule_and_shared_edges(tmp_path):
    # A rectangle from x = 2 to 5 (full-resolution pixel edges) holds the pixels whose centres 2.5, 3.5, 4.5 it covers.
    rect = [[[2, 1], [5, 1], [5, 3], [2, 3], [2, 1]]]
    mask, _ = load_qupath_annotations(write(tmp_path / "r.geojson", [feature("Polygon", rect, "A")]), (4, 7))
    assert np.argwhere(mask == 0).tolist() == [[r, c] for r in (1, 2) for c in (2, 3, 4)]
    # Edges through pixel centres: top and left count as inside, bottom and right as outside.
    square = np.array([[1.0, 1.0], [1.0, 4.0], [4.0, 4.0], [4.0, 1.0]])  # (row, col) corners on pixel centres
    assert np.argwhere(rasterize_polygon(square, (6, 6))).tolist() == [[r, c] for r in (1, 2, 3) for c in (1, 2, 3)]
    # Two polygons that share a slanted edge through pixel centres: every pixel goes to exactly one of them.
    left = np.array([[0.0, 0.0], [0.0, 3.0], [10.0, 7.0], [10.0, 0.0]])
    right = np.array([[0.0, 3.0], [0.0, 10.0], [10.0, 10.0], [10.0, 7.0]])
    claimed = rasterize_polygon(left, (10, 11)).astype(int) + rasterize_polygon(right, (10, 11))
    assert (claimed[:, :10] == 1).all()


def test_rasterize_polygon_rings_and_box_match_the_reference():
    rng = np.random.default_rng(0)
    for _ in range(20):
        outline = rng.uniform(-3, 27, size=(int(rng.integers(3, 12)), 2))  # often self-intersecting: even–odd
        hole = rng.uniform(5, 15, size=(4, 2))
        rings = [outline, hole]
        as_xy = [[[c + 0.5, r + 0.5] for r, c in ring] for ring in rings]  # (row, col) centres to (x, y)
        expected = reference_mask([([as_xy], 1)], (21, 25)) == 1
        assert np.array_equal(rasterize_polygon(rings, (21, 25)), expected)
        rows, cols, box = polygon_box(rings, (21, 25))
        assert np.array_equal(box, expected[rows, cols]) and box.sum() == expected.sum()  # nothing outside the box


def test_unclassified_annotations_error_by_default_or_as_asked(tmp_path):
    features = sample_features() + [feature("Polygon", TUMOR_PART, name="my outline")]
    path = write(tmp_path / "u.geojson", features)
    with pytest.raises(FileFormatError, match=r"features\[3\] \(unclassified, 'my outline'\).*unclassified='ignore'"):
        load_qupath_annotations(path, (30, 40))
    ignored = load_qupath_annotations(path, (30, 40), unclassified="ignore")
    expected = sample_reference((30, 40))
    assert (ignored.mask[expected == 1] != 1).any()  # the unclassified part was painted over the tumor part
    assert np.array_equal(ignored.mask, reference_mask(
        [([STROMA], 0), ([TUMOR_WITH_HOLE, TUMOR_PART], 1), ([IGNORE], IGNORE_INDEX), ([TUMOR_PART], IGNORE_INDEX)],
        (30, 40),
    ))
    skipped = load_qupath_annotations(path, (30, 40), unclassified="skip")
    assert np.array_equal(skipped.mask, expected) and "features[3]" in skipped.skipped[0]
    with pytest.raises(ValueError, match="unclassified must be one of"):
        load_qupath_annotations(path, (30, 40), unclassified="drop")


def test_points_and_lines_are_skipped_with_a_warning(tmp_path):
    features = sample_features() + [
        feature("Point", [3.0, 4.0], "Tumor"),
        feature("LineString", [[1.0, 1.0], [20.0, 20.0]], "Stroma"),
    ]
    path = write(tmp_path / "p.geojson", features)
    with pytest.warns(UserWarning, match=r"2 feature\(s\) hold points, lines.*features\[3\] \(Tumor\): Point"):
        result = load_qupath_annotations(path, (30, 40))
    assert np.array_equal(result.mask, sample_reference((30, 40)))
    assert len(result.skipped) == 2 and "LineString" in result.skipped[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning when there is nothing to skip
        load_qupath_annotations(write(tmp_path / "q.geojson", sample_features()), (30, 40))


def test_geometry_collections_paint_their_areas_and_skip_their_lines(tmp_path):
    collection = {"type": "GeometryCollection", "geometries": [
        {"type": "Polygon", "coordinates": STROMA}, {"type": "LineString", "coordinates": [[0, 0], [5, 5]]},
    ]}
    features = [{"type": "Feature", "geometry": collection, "properties": {"classification": {"name": "Stroma"}}}]
    with pytest.warns(UserWarning, match=r"features\[0\] \(Stroma\): LineString"):
        mask, _ = load_qupath_annotations(write(tmp_path / "c.geojson", features), (30, 40))
    assert np.array_equal(mask, reference_mask([([STROMA], 0)], (30, 40)))


def test_read_qupath_geojson_keeps_every_feature_in_order(tmp_path):
    path = write(tmp_path / "a.geojson", sample_features() + [feature("MultiPoint", [[1, 2], [3, 4]], "Tumor")])
    annotations = read_qupath_geojson(path)
    assert [a.class_name for a in annotations] == ["Stroma", "Tumor", "Ignore*", "Tumor"]
    assert [len(a.polygons) for a in annotations] == [1, 2, 1, 0]
    assert [len(rings) for rings in annotations[1].polygons] == [2, 1]  # outline + hole, outline
    assert annotations[2].is_ignored and annotations[3].no_area == ("MultiPoint",)
    assert annotations[0].polygons[0][0].shape == (4, 2)  # the repeated closing corner dropped


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("this is not json", r"not JSON \(Expecting value at line 1\).*File > Export objects as GeoJSON"),
        ('{"type": "Topology", "objects": {}}', r"not GeoJSON annotations.*found an object with keys"),
        ('[{"type": "Feature", "properties": {}}]', r"features\[0\] is not a GeoJSON feature"),
        ('[{"geometry": {"type": "Circle", "coordinates": [1, 2]}}]', r"type 'Circle'.*cannot be filled"),
        ('[{"geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 0]]]}}]', r"ring with 2 corner"),
        ('[{"geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, "a"], [2, 0]]]}}]', r"malformed coordinates"),
        ('[{"geometry": {"type": "Polygon", "coordinates": []}}]', r"Polygon without coordinates"),
    ],
)
def test_bad_files_get_a_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.geojson"
    path.write_text(content)
    with pytest.raises(FileFormatError, match=message):
        load_qupath_annotations(path, (10, 10))


def test_coordinates_outside_the_image_are_an_error_that_says_what_to_pass(tmp_path):
    path = write(tmp_path / "a.geojson", sample_features())
    message = r"features\[0\] \(Stroma\) \(and 1 more\) reaches x = 38\.6.*downsample="
    with pytest.raises(FileFormatError, match=message):
        load_qupath_annotations(path, (30, 30))  # the annotations are 39 pixels wide
    with pytest.raises(FileFormatError, match=r"image_size=slide\.dimensions"):
        load_qupath_annotations(path, (10, 10), origin=(5.0, 5.0))  # a region: pass image_size
    load_qupath_annotations(path, (10, 10), origin=(5.0, 5.0), image_size=(40, 30))  # cut at the region's border
    with pytest.raises(FileFormatError, match="outside the image"):
        load_qupath_annotations(path, (10, 10), origin=(5.0, 5.0), image_size=(30, 30))


def test_classes_must_be_listed_and_named_exactly(tmp_path):
    path = write(tmp_path / "a.geojson", sample_features())
    with pytest.raises(FileFormatError, match=r"classes \['Tumor'\] are annotated but not in class_names \['Stroma'\]"):
        load_qupath_annotations(path, (30, 40), class_names=("Stroma",))
    with pytest.raises(FileFormatError, match=r"'Tumor' looks like 'tumor'.*match exactly"):
        load_qupath_annotations(path, (30, 40), class_names=("Stroma", "tumor"))
    with pytest.raises(ValueError, match=r"must not hold \['Ignore\*'\]"):
        load_qupath_annotations(path, (30, 40), class_names=("Stroma", "Tumor", "Ignore*"))
    with pytest.raises(ValueError, match="each class once"):
        load_qupath_annotations(path, (30, 40), class_names=("Stroma", "Tumor", "Stroma"))


def test_bad_arguments(tmp_path):
    path = write(tmp_path / "a.geojson", sample_features())
    with pytest.raises(ValueError, match=r"shape must be \(H, W\).*image\.shape\[:2\]"):
        load_qupath_annotations(path, (30, 40, 3))
    with pytest.raises(ValueError, match="downsample must be positive"):
        load_qupath_annotations(path, (30, 40), downsample=0)


# ---- the way back: masks (predictions) as QuPath GeoJSON -----------------------------------------------------
def random_labels(rng: np.random.Generator, shape: tuple[int, int], num_classes: int, smooth: float) -> np.ndarray:
    """Blobs with holes, islands and pixels touching only at corners; some pixels IGNORE_INDEX."""
    from scipy import ndimage

    noise = rng.random((num_classes, *shape))
    if smooth:
        noise = ndimage.gaussian_filter(noise, (0, smooth, smooth))
    labels = noise.argmax(0).astype(np.int64)
    labels[rng.random(shape) < 0.05] = IGNORE_INDEX
    return labels


def shoelace(ring: list) -> float:
    """Signed area of a closed [x, y] ring, y down: > 0 clockwise on the screen (anticlockwise with y up)."""
    xy = np.array(ring[:-1], dtype=float)
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


@pytest.mark.parametrize(("smooth", "shape", "downsample", "origin"), [
    (0.0, (13, 17), 1.0, (0.0, 0.0)),  # salt and pepper: corners touching everywhere
    (1.5, (40, 52), 4.0, (1000.0, 520.0)),  # blobs with holes and islands, a region of a slide at a quarter
    (2.5, (33, 29), 2.5, (12.5, 7.0)),
])
def test_a_written_mask_fills_back_to_itself_by_a_brute_force_point_in_polygon_test(
    tmp_path, smooth, shape, downsample, origin
):
    rng = np.random.default_rng(int(smooth * 10))
    labels = random_labels(rng, shape, 3, smooth)
    path = write_qupath_geojson(tmp_path / "p.geojson", labels, ["Stroma", "Tumor", "Necrosis"],
                                downsample=downsample, origin=origin)  # fmt: skip
    data = json.loads(path.read_text())
    assert data["type"] == "FeatureCollection"
    painted = []
    for item in data["features"]:
        assert item["geometry"]["type"] == "MultiPolygon" and item["properties"]["objectType"] == "annotation"
        label = ["Stroma", "Tumor", "Necrosis"].index(item["properties"]["classification"]["name"])
        polygons = item["geometry"]["coordinates"]
        for rings in polygons:
            assert all(ring[0] == ring[-1] for ring in rings)  # GeoJSON rings are closed
            assert shoelace(rings[0]) > 0 and all(shoelace(hole) < 0 for hole in rings[1:])  # RFC 7946 orientation
        area = sum(shoelace(ring) for rings in polygons for ring in rings)
        assert area == pytest.approx((labels == label).sum() * downsample**2)  # outlines along the pixels' edges
        painted.append((polygons, label))
    assert [label for _, label in painted] == sorted(set(np.unique(labels)) - {IGNORE_INDEX})
    assert np.array_equal(reference_mask(painted, shape, downsample, origin), labels)  # the independent reference
    back = load_qupath_annotations(path, shape, class_names=["Stroma", "Tumor", "Necrosis"], downsample=downsample,
                                   origin=origin, image_size=(origin[0] + shape[1] * downsample,
                                                              origin[1] + shape[0] * downsample))  # fmt: skip
    assert np.array_equal(back.mask, labels)


def test_trace_outlines_counts_regions_and_holes_like_scipys_labelling():
    from scipy import ndimage

    rng = np.random.default_rng(3)
    for _ in range(30):
        region = random_labels(rng, (24, 31), 2, float(rng.uniform(0, 2))) == 1
        polygons = trace_outlines(region)
        _, regions = ndimage.label(region)  # 4-connected regions
        # A hole: a piece of the outside (8-connected, the dual of 4) that does not reach the border.
        _, pieces = ndimage.label(np.pad(~region, 1, constant_values=True), structure=np.ones((3, 3)))
        holes = pieces - 1  # all but the piece around the border
        assert len(polygons) == regions and sum(len(rings) - 1 for rings in polygons) == holes
        for rings in polygons:  # each region with its holes fills exactly one labelled region
            filled = rasterize_polygon(rings, region.shape)
            assert filled.any() and np.array_equal(filled & region, filled)
            assert len(np.unique(ndimage.label(region)[0][filled])) == 1


def test_corner_touching_pixels_and_a_ring_give_the_expected_outlines():
    checker = np.array([[1, 0], [0, 1]], dtype=bool)  # touching at one corner: two regions
    assert [rings[0].tolist() for rings in trace_outlines(checker)] == [
        [[-0.5, -0.5], [-0.5, 0.5], [0.5, 0.5], [0.5, -0.5]],
        [[0.5, 0.5], [0.5, 1.5], [1.5, 1.5], [1.5, 0.5]],
    ]
    ring = np.ones((3, 3), dtype=bool)
    ring[1, 1] = False
    (outline, hole), = trace_outlines(ring)
    assert len(outline) == len(hole) == 4  # only the corners where the outline turns
    assert sorted(map(tuple, hole.tolist())) == [(0.5, 0.5), (0.5, 1.5), (1.5, 0.5), (1.5, 1.5)]
    assert trace_outlines(np.zeros((4, 4), dtype=bool)) == []
    with pytest.raises(ValueError, match="bool"):
        trace_outlines(np.ones((4, 4)))


def test_write_qupath_geojson_options_and_errors(tmp_path):
    labels = np.zeros((20, 20), dtype=np.int64)
    labels[2:6, 2:6] = labels[10:15, 8:18] = 1
    path = write_qupath_geojson(tmp_path / "t.geojson", labels, ["Stroma", "Tumor"], classes=["Tumor"],
                                colors=[(1, 2, 3), (200, 0, 0)], object_type="detection", split=True)  # fmt: skip
    features = json.loads(path.read_text())["features"]
    assert [f["geometry"]["type"] for f in features] == ["Polygon", "Polygon"]  # one per region, Tumor only
    assert {f["properties"]["objectType"] for f in features} == {"detection"}
    assert features[0]["properties"]["classification"] == {"name": "Tumor", "color": [200, 0, 0]}
    back = load_qupath_annotations(path, (20, 20))
    assert back.class_names == ("Tumor",) and back.colors == ((200, 0, 0),)
    assert np.array_equal(back.mask == 0, labels == 1) and (back.mask[labels == 0] == IGNORE_INDEX).all()
    with pytest.raises(ValueError, match=r"labels \[2\] but class_names names only 2"):
        write_qupath_geojson(tmp_path / "x.geojson", labels + 1, ["Stroma", "Tumor"])
    with pytest.raises(ValueError, match="int \\(H, W\\) labels.*argmax"):
        write_qupath_geojson(tmp_path / "x.geojson", labels.astype(float), ["Stroma", "Tumor"])
    with pytest.raises(ValueError, match=r"classes \['tumor'\] are not in class_names"):
        write_qupath_geojson(tmp_path / "x.geojson", labels, ["Stroma", "Tumor"], classes=["tumor"])
    with pytest.raises(ValueError, match="object_type must be one of"):
        write_qupath_geojson(tmp_path / "x.geojson", labels, ["Stroma", "Tumor"], object_type="cell")
