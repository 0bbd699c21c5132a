"""Pre-flight check of a folder of images and a folder of masks, or of a slide and its annotations, before training.

Most failed trainings on one's own data are data problems: masks saved as 0/255 or as grey levels, instance ids
or 16-bit values where class labels belong, labels beyond the number of classes, masks with no labelled pixel,
masks that do not match their image, a class that never occurs. :func:`preflight` finds them
all at once, names each file and says how to fix it; :func:`preflight_slide` does the same for a whole slide
and its QuPath annotations at the magnification the network will see.
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segtutor.data.classes import IGNORE_INDEX
from segtutor.data.files import (
    IMAGE_SUFFIXES,
    MASK_SUFFIXES,
    FileFormatError,
    ImageConversionWarning,
    read_header,
    read_image,
    read_mask,
)
from segtutor.data.qupath import (
    annotations_outside,
    class_labels,
    class_problems,
    paint_annotations,
    read_qupath_geojson,
    resolve_class_names,
)
from segtutor.data.slide import Slide
from segtutor.models.contract import MIN_SIZE

# A class with less than this share of all labelled pixels gets a warning.
RARE_CLASS_FRACTION = 0.01

# More classes than this, inferred from the largest label, are taken for a mistake (grey levels, instance ids).
MAX_INFERRED_CLASSES = 32

# preflight_slide paints a slide's annotations in bands of rows of at most this many pixels (64 M: 64 MB).
PREFLIGHT_BAND_PIXELS = 1 << 26


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the data: which file, what is wrong, and how to fix it."""

    file: str  # file name, or folder for problems of a whole folder
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.file}: {self.problem}. Fix: {self.fix}."


@dataclass
class PreflightReport:
    """What :func:`preflight` found: errors (training would fail or learn nonsense), warnings, class balance."""

    image_dir: Path
    mask_dir: Path
    num_classes: int  # as given, or 1 + the largest label found
    pairs: list[tuple[Path, Path]] = field(default_factory=list)  # (image, mask) files paired by stem
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    class_pixels: list[int] = field(default_factory=list)  # labelled pixels per class, over all masks
    class_names: list[str] = field(default_factory=list)  # names of the classes, where known
    image_sizes: dict[str, tuple[int, int]] = field(default_factory=dict)  # (height, width) by image file name
    description: str = ""  # what was checked, for the first line; empty: the two folders

    @property
    def ok(self) -> bool:
        """True when there are no errors (warnings allowed)."""
        return not self.errors

    @property
    def class_balance(self) -> list[float]:
        """Share of labelled pixels per class (ignored pixels and out-of-range labels left out)."""
        total = sum(self.class_pixels)
        return [count / total if total else 0.0 for count in self.class_pixels]

    def raise_if_errors(self) -> None:
        """Raise a ValueError that lists every error, if there is any."""
        if self.errors:
            lines = "\n".join(f"  - {error}" for error in self.errors)
            raise ValueError(
                f"the data in {self.image_dir} and {self.mask_dir} has {len(self.errors)} problem(s) to fix "
                f"before training:\n{lines}"
            )

    def __str__(self) -> str:
        subject = self.description or (
            f"{self.image_dir} (images) and {self.mask_dir} (masks): {len(self.pairs)} pairs"
        )
        lines = [
            f"Pre-flight check of {subject}, {self.num_classes} classes, "
            + ("OK" if self.ok else f"{len(self.errors)} error(s)")
            + f", {len(self.warnings)} warning(s)"
        ]
        lines += [f"  ERROR   {error}" for error in self.errors]
        lines += [f"  WARNING {warning}" for warning in self.warnings]
        if self.class_pixels:
            balance = ", ".join(f"{self._class(k)}: {share:.1%}" for k, share in enumerate(self.class_balance))
            lines.append(f"  Class balance (share of labelled pixels): {balance}")
        return "\n".join(lines)

    __repr__ = __str__

    def _class(self, k: int) -> str:
        """Class ``k`` by name where names are known: "1 Tumor", else "1"."""
        return f"{k} {self.class_names[k]}" if k < len(self.class_names) else str(k)

    def _repr_html_(self) -> str:
        verdict = "OK" if self.ok else f"{len(self.errors)} error(s)"
        rows = [
            f"<tr><td style='color:{colour};font-weight:bold'>{kind}</td><td>{html.escape(p.file)}</td>"
            f"<td>{html.escape(p.problem)}</td><td>{html.escape(p.fix)}</td></tr>"
            for kind, colour, problems in (("error", "#d55e00", self.errors), ("warning", "#e69f00", self.warnings))
            for p in problems
        ]
        balance = "".join(
            f"<tr><td>{html.escape(self._class(k))}</td><td>{count:,}</td><td>{share:.1%}</td></tr>"
            for k, (count, share) in enumerate(zip(self.class_pixels, self.class_balance))
        )
        return (
            "<div><b>Pre-flight check</b>: "
            + html.escape(self.description or f"{len(self.pairs)} image/mask pairs")
            + f", {self.num_classes} classes, "
            f"<b>{verdict}</b>, {len(self.warnings)} warning(s)"
            + (
                "<table><tr><th></th><th>file</th><th>problem</th><th>fix</th></tr>" + "".join(rows) + "</table>"
                if rows
                else ""
            )
            + (
                "<table><tr><th>class</th><th>pixels</th><th>share</th></tr>" + balance + "</table>"
                if balance
                else ""
            )
            + "</div>"
        )


def preflight(
    image_dir: str | Path,
    mask_dir: str | Path,
    *,
    num_classes: int | None,
    min_size: int = MIN_SIZE,
) -> PreflightReport:
    """Check a folder of images against a folder of masks before training.

    Images and masks pair by file stem (``a.jpg`` with ``a.png``). Errors: unreadable files, JPEG or
    colour-coded masks, masks saved as 0/255, labels outside ``0 .. num_classes - 1``, image and mask of
    different sizes, images smaller than ``min_size``, no pairs at all. Warnings: unpaired files, pixels
    labelled 255 (ignored in training), classes that never or rarely occur.

    Args:
        image_dir: folder of PNG, JPEG or TIFF images.
        mask_dir: folder of PNG or TIFF masks, one integer label per pixel.
        num_classes: number of classes; ``None`` takes 1 + the largest label found.
        min_size: smallest height and width the networks accept.

    Returns:
        A :class:`PreflightReport`; print it, or call ``raise_if_errors()``.

    Example:
        >>> report = preflight("my_images", "my_masks", num_classes=2)
        >>> report.raise_if_errors()
    """
    if num_classes is not None and num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    image_dir, mask_dir = Path(image_dir), Path(mask_dir)
    report = PreflightReport(image_dir, mask_dir, num_classes=num_classes or 0)

    # 1) Folders and file pairing.
    for folder, what in ((image_dir, "image"), (mask_dir, "mask")):
        if not folder.is_dir():
            report.errors.append(Problem(str(folder), f"the {what} folder does not exist", "check the path"))
    if not report.ok:
        return report
    if image_dir.resolve() == mask_dir.resolve():
        report.errors.append(
            Problem(str(image_dir), "images and masks are in the same folder", "put the masks in a folder of their own")
        )
        return report
    images = _files_by_stem(image_dir, IMAGE_SUFFIXES, "image", report)
    masks = _files_by_stem(mask_dir, IMAGE_SUFFIXES, "mask", report)  # JPEG masks pair, then fail with a reason
    for stem in sorted(images.keys() - masks.keys()):
        report.warnings.append(
            Problem(images[stem].name, "image without a mask; it is left out", f"add a mask named {stem}.png")
        )
    for stem in sorted(masks.keys() - images.keys()):
        report.warnings.append(
            Problem(
                masks[stem].name,
                "mask without an image; it is left out",
                f"name it like its image: the mask of {stem}.jpg is {stem}.png",
            )
        )
    report.pairs = [(images[stem], masks[stem]) for stem in sorted(images.keys() & masks.keys())]
    if not report.pairs:
        report.errors.append(
            Problem(
                str(mask_dir),
                f"no image/mask pairs found (images {len(images)}, masks {len(masks)})",
                "give each mask the file name stem of its image, e.g. "
                f"{image_dir.name}/a.jpg and {mask_dir.name}/a.png",
            )
        )
        return report

    # 2) Each pair: readable, same size, big enough; which labels the mask holds.
    labels_per_mask: list[tuple[Path, np.ndarray, np.ndarray]] = []  # (mask path, labels, pixel counts)
    for image_path, mask_path in report.pairs:
        image = mask = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ImageConversionWarning)
            try:
                image = read_image(image_path)
            except FileFormatError as error:
                report.errors.append(Problem(error.file, error.problem, error.fix))
            try:
                mask = read_mask(mask_path)
            except FileFormatError as error:
                report.errors.append(Problem(error.file, error.problem, error.fix))
        for warning in caught:
            if isinstance(warning.message, ImageConversionWarning):
                report.warnings.append(Problem(warning.message.file, warning.message.problem, warning.message.fix))
            else:
                warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        if image is not None:
            report.image_sizes[image_path.name] = image.shape[:2]
        if image is not None and mask is not None and image.shape[:2] != mask.shape:
            report.errors.append(Problem(mask_path.name, *_size_mismatch(image_path, image.shape[:2], mask.shape)))
        if image is not None and min(image.shape[:2]) < min_size:
            report.errors.append(
                Problem(
                    image_path.name,
                    f"image is {image.shape[0]}x{image.shape[1]}, smaller than the {min_size}x{min_size} the "
                    "networks need",
                    f"use images of at least {min_size} pixels per side, or pad them",
                )
            )
        if mask is not None:
            labels, counts = np.unique(mask, return_counts=True)
            labels_per_mask.append((mask_path, labels, counts))

    # 3) Labels: values that are not class labels (grey levels, instance ids, 16-bit), 0/255 masks, the ignore
    #    value, labels out of range, no labelled pixel at all; then the class balance.
    found = [label for _, labels, _ in labels_per_mask for label in labels.tolist() if label != IGNORE_INDEX]
    report.num_classes = num_classes if num_classes is not None else max(found, default=0) + 1
    every_value = sorted({label for _, labels, _ in labels_per_mask for label in labels.tolist()})
    pattern = label_pattern(every_value)
    if num_classes is None and (report.num_classes > MAX_INFERRED_CLASSES or pattern is not None):
        report.errors.append(Problem(str(mask_dir), *_not_class_labels(every_value, report.num_classes, pattern)))
        return report
    class_pixels = np.zeros(report.num_classes, dtype=np.int64)
    for mask_path, labels, counts in labels_per_mask:
        label_set = set(labels.tolist())
        if label_set == {0, IGNORE_INDEX}:
            report.errors.append(
                Problem(
                    mask_path.name,
                    "this looks like a binary mask saved as 0/255",
                    "divide by 255 or save labels 0/1",
                )
            )
            continue
        if label_set == {IGNORE_INDEX}:
            report.warnings.append(
                Problem(
                    mask_path.name,
                    f"every pixel holds {IGNORE_INDEX}, the 'ignore' label: this mask teaches nothing",
                    "label the pixels you know (0, 1, 2, ...), or leave the pair out",
                )
            )
        elif IGNORE_INDEX in label_set:
            ignored = int(counts[labels == IGNORE_INDEX][0])
            report.warnings.append(
                Problem(
                    mask_path.name,
                    f"{ignored:,} pixels hold {IGNORE_INDEX}, the 'ignore' label: the loss and the metrics skip them",
                    "nothing, if they are unannotated on purpose; otherwise give them a class "
                    f"0..{report.num_classes - 1}",
                )
            )
        out_of_range = sorted(label for label in label_set - {IGNORE_INDEX} if not 0 <= label < report.num_classes)
        if out_of_range:
            mask_pattern = label_pattern(sorted(label_set))  # grey levels, instance ids, ...: say so
            problem = (f"labels [{_listed(out_of_range)}] lie outside 0..{report.num_classes - 1} "
                       f"(num_classes={report.num_classes})")  # fmt: skip
            if mask_pattern is not None:
                problem, fix = f"{problem}; {mask_pattern[0]}", mask_pattern[1]
            elif max(out_of_range) >= report.num_classes:
                fix = f"pass num_classes={max(out_of_range) + 1} if they are real classes, or relabel them"
            else:
                fix = "relabel them: labels count 0, 1, 2, ..."
            report.errors.append(Problem(mask_path.name, problem, fix))
        in_range = (labels >= 0) & (labels < report.num_classes)
        np.add.at(class_pixels, labels[in_range], counts[in_range])
    report.class_pixels = class_pixels.tolist()
    total = class_pixels.sum()
    if total == 0 and labels_per_mask:
        report.errors.append(
            Problem(
                str(mask_dir),
                f"no mask holds a labelled pixel: every pixel is {IGNORE_INDEX} (the 'ignore' label) or out of range, "
                "so there is nothing to learn from",
                f"label the pixels you know with their class (0, 1, 2, ...); {IGNORE_INDEX} means 'not annotated'",
            )
        )
    for k, count in enumerate(class_pixels.tolist()):
        if total and count == 0:
            report.warnings.append(
                Problem(str(mask_dir), f"class {k} never occurs in any mask", "label some of it, or lower num_classes")
            )
        elif total and count / total < RARE_CLASS_FRACTION:
            report.warnings.append(
                Problem(
                    str(mask_dir),
                    f"class {k} covers only {count / total:.2%} of the labelled pixels",
                    "label more of it, or train with class weights or the Dice loss",
                )
            )
    return report


def label_pattern(values: Sequence[int]) -> tuple[str, str] | None:
    """What mask values look like when they are not class labels 0, 1, 2, ..., and how to convert them.

    Recognises a binary mask saved as 16-bit 0/65535, grey levels of an exported picture (a few values far
    apart, such as 0, 127, 255) and instance ids (one number per object, such as nuclei 1 ... 300).

    Returns:
        ``(what they look like, how to fix it)``, or None for values that may well be class labels.

    Example:
        >>> label_pattern([0, 127, 255])[0]
        'the values 0, 127, 255 look like grey levels of a picture, not class labels (0, 1, 2, ...)'
    """
    values = sorted(set(int(v) for v in values))
    if not values:
        return None
    listed = _listed(values)
    if set(values) == {0, 255}:
        return "the values 0 and 255 are a binary mask saved as black and white", "divide by 255 or save labels 0/1"
    if values[-1] > 255 and set(values) <= {0, 65535}:
        return (
            "the values 0 and 65535 are a binary mask saved as 16-bit black and white",
            "divide by 65535 (labels = mask // 65535) or save labels 0/1",
        )
    gaps = np.diff(values)
    if 2 <= len(values) <= 16 and values[-1] >= 64 and gaps.min() >= 16:
        return (
            f"the values {listed} look like grey levels of a picture, not class labels (0, 1, 2, ...)",
            f"map each grey level to its class, e.g. labels = np.searchsorted({values}, mask) gives "
            f"0..{len(values) - 1}, and save those (or pass num_classes if these really are labels)",
        )
    if len(values) > MAX_INFERRED_CLASSES:
        return (
            f"the {len(values)} values {listed} look like instance ids (one number per object, e.g. per nucleus), "
            "not classes",
            "for object vs background save labels = (mask > 0).astype(np.uint8); for classes of objects, map each "
            "id to its class",
        )
    return None


def _listed(values: Sequence[int], most: int = 6) -> str:
    """``0, 1, 2`` or ``1, 2, 3, …, 299, 300`` for long lists."""
    values = [int(v) for v in values]
    if len(values) <= most:
        return ", ".join(map(str, values))
    return ", ".join(map(str, values[: most - 2])) + ", …, " + ", ".join(map(str, values[-2:]))


def _not_class_labels(values: list[int], inferred: int, pattern: tuple[str, str] | None) -> tuple[str, str]:
    """The problem and fix of masks whose largest value would make ``inferred`` classes."""
    problem = f"num_classes was left to infer, and the largest mask value would make it {inferred:,}"
    if pattern is not None:
        return f"{problem}: {pattern[0]}", pattern[1]
    return (
        f"{problem} ({_listed(values)})",
        f"relabel the classes 0..K-1, or pass num_classes if you really have {inferred:,} classes",
    )


def _size_mismatch(image_path: Path, image_shape: tuple[int, int], mask_shape: tuple[int, int]) -> tuple[str, str]:
    """The problem and fix of a mask whose size differs from its image's (turned by 90°: an EXIF rotation?)."""
    problem = (
        f"mask is {mask_shape[0]}x{mask_shape[1]} but its image {image_path.name} is "
        f"{image_shape[0]}x{image_shape[1]} (height x width)"
    )
    if tuple(mask_shape) == tuple(image_shape)[::-1]:
        try:
            turned = read_header(image_path).orientation != 1
        except FileFormatError:
            turned = False
        why = ("the image's EXIF orientation (a phone photo) turns it, and segtutor applies it as image viewers do"
               if turned else "one of the two is turned by 90°")  # fmt: skip
        return (f"{problem}: {why}", "draw the mask on the image as viewers show it (upright), or save the image "
                "again without its orientation tag")  # fmt: skip
    return problem, "export the mask at the image's full resolution, without cropping or scaling"


def _files_by_stem(folder: Path, suffixes: tuple[str, ...], what: str, report: PreflightReport) -> dict[str, Path]:
    """The files of ``folder`` with one of ``suffixes``, by stem; warns about other files, errs on clashes."""
    by_stem: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_dir():
            report.warnings.append(
                Problem(
                    f"{folder.name}/{path.name}",
                    f"sub-folders are not read: only the {what} files directly in {folder.name}/ are",
                    f"move the files of {path.name}/ into {folder.name}/, or give the sub-folder itself as the "
                    f"{what} folder",
                )
            )
            continue
        if path.suffix.lower() not in suffixes:
            report.warnings.append(
                Problem(
                    path.name,
                    f"not a supported {what} file; it is left out",
                    f"use one of {', '.join(IMAGE_SUFFIXES if what == 'image' else MASK_SUFFIXES)}",
                )
            )
        elif path.stem in by_stem:
            report.errors.append(
                Problem(
                    path.name,
                    f"{by_stem[path.stem].name} has the same stem, so the pairing is ambiguous",
                    "keep one of the two files",
                )
            )
        else:
            by_stem[path.stem] = path
    return by_stem


def preflight_slide(
    slide_path: str | Path,
    geojson_path: str | Path,
    *,
    magnification: float | None = None,
    mpp: float | None = None,
    class_names: Sequence[str] | None = None,
    slide_mpp: float | None = None,
    unclassified: str = "error",
    min_size: int = MIN_SIZE,
) -> PreflightReport:
    """Check a slide and its QuPath annotations before training at a magnification (or pixel size).

    Errors: a file that cannot be read, a slide without a pixel size, annotations outside the slide, classes
    not in ``class_names``, annotations without a class, an annotated class that covers no pixel at this
    magnification, no annotated pixel at all. Warnings: a magnification finer than the scan, points and lines
    (they enclose no pixels), a class never annotated, a class smaller than one ``min_size`` x ``min_size``
    tile or under 1 % of the annotated pixels.

    Args:
        slide_path: the slide (pyramidal TIFF, OME-TIFF, SVS).
        geojson_path: its annotations, exported from QuPath as GeoJSON.
        magnification: the magnification to train at (10 for 10×, 1 µm/px); or
        mpp: the pixel size to train at, in µm.
        class_names: label order; ``None`` takes the classes in the order they first appear.
        slide_mpp: the slide's own pixel size in µm, for files that do not say it.
        unclassified: "error", "ignore" or "skip", as in :func:`load_qupath_annotations`.
        min_size: side of the smallest tile the networks take; a class with fewer pixels gets a warning.

    Returns:
        A :class:`PreflightReport` with ``class_names`` and the pixels of each class at that magnification.

    Example:
        >>> slide_path, geojson_path = write_sample_slide("data")
        >>> report = preflight_slide(slide_path, geojson_path, magnification=10)
        >>> report.ok, report.class_names
        (True, ['Stroma', 'Tumor'])
    """
    if (magnification is None) == (mpp is None):
        raise ValueError("give the resolution to train at: magnification=10 (for 10×) or mpp=1.0, one of the two")
    slide_path, geojson_path = Path(slide_path), Path(geojson_path)
    report = PreflightReport(slide_path, geojson_path, num_classes=0, pairs=[(slide_path, geojson_path)])
    at = f"{magnification:g}×" if magnification is not None else f"{mpp:g} µm/px"
    report.description = f"{slide_path.name} with {geojson_path.name} at {at}"

    # 1) The slide: readable, with a pixel size.
    slide = None
    try:
        slide = Slide(slide_path, mpp=slide_mpp)
    except (FileFormatError, FileNotFoundError) as error:
        problem, fix = (error.problem, error.fix) if isinstance(error, FileFormatError) else (str(error), "check it")
        report.errors.append(Problem(slide_path.name, problem, fix))
    if slide is not None and slide.mpp is None:
        report.errors.append(
            Problem(
                slide_path.name,
                f"the slide does not say its pixel size ({slide.mpp_source}), so {at} cannot be found",
                "pass slide_mpp=0.25 for a 40× scan (0.5 for 20×, 1.0 for 10×); QuPath shows it under Image > "
                "Pixel width",
            )
        )

    # 2) The annotations: readable, classified, with known classes, inside the slide.
    try:
        annotations = read_qupath_geojson(geojson_path)
    except (FileFormatError, FileNotFoundError) as error:
        problem, fix = (error.problem, error.fix) if isinstance(error, FileFormatError) else (str(error), "check it")
        report.errors.append(Problem(geojson_path.name, problem, fix))
        return report
    names = resolve_class_names(annotations, class_names)
    report.class_names, report.num_classes = list(names), len(names)
    for problem, fix in class_problems(annotations, names, unclassified=unclassified):
        report.errors.append(Problem(geojson_path.name, problem, fix))
    labels, _, _ = class_labels(annotations, names, unclassified=unclassified)
    no_area = [a for a in annotations if a.no_area]
    if no_area:
        listed = ", ".join(f"{a} ({', '.join(a.no_area)})" for a in no_area[:3])
        listed += " ..." if len(no_area) > 3 else ""
        report.warnings.append(
            Problem(
                geojson_path.name,
                f"{len(no_area)} feature(s) are points, lines or empty, which enclose no pixels: {listed}; "
                "they are left out",
                "nothing, if they mark things for people; draw areas (polygon, brush) for what the network "
                "should learn",
            )
        )
    unnamed = [a for a in annotations if a.class_name is None and a.polygons]
    if unclassified != "error" and unnamed:
        what = "left out" if unclassified == "skip" else "ignored in training"
        report.warnings.append(
            Problem(geojson_path.name, f"{len(unnamed)} annotation(s) without a class are {what}", "classify them")
        )
    if slide is None:
        return report
    width, height = slide.dimensions
    outside = annotations_outside(annotations, (0.0, 0.0, width, height))
    for annotation, (x, y) in outside[:5]:
        report.errors.append(
            Problem(
                geojson_path.name,
                f"{annotation} reaches x = {x:.0f}, y = {y:.0f}, outside the slide ({width} x {height} pixels)",
                "check that the annotations were exported from this slide (not another, nor a crop or a scaled copy)",
            )
        )
    if len(outside) > 5:
        report.errors.append(
            Problem(geojson_path.name, f"{len(outside) - 5} more annotation(s) reach outside the slide", "as above")
        )
    if slide.mpp is None:
        return report

    # 3) Pixels per class at the magnification asked for, over the annotations' bounding box, in bands of rows
    #    (a whole slide's mask at 40× would not fit in memory).
    scale = slide.downsample(mpp=mpp, magnification=magnification)
    if scale < 0.99:
        report.warnings.append(
            Problem(
                slide_path.name,
                f"{at} is finer than the scan ({slide.mpp:g} µm/px): images would be upsampled, with no more detail",
                f"train at {slide.magnification:.3g}× or lower",
            )
        )
    painted = [(a, label) for a, label in zip(annotations, labels) if label is not None and a.polygons]
    counts = np.zeros(len(names), dtype=np.int64)
    if painted:
        corners = np.concatenate([ring for a, _ in painted for polygon in a.polygons for ring in polygon])  # x, y
        low = np.clip(corners.min(axis=0), 0, [width, height]) / scale
        high = np.clip(corners.max(axis=0), 0, [width, height]) / scale
        col0, row0 = np.floor(low).astype(int)
        col1, row1 = np.ceil(high).astype(int)
        band = max(1, PREFLIGHT_BAND_PIXELS // max(col1 - col0, 1))  # rows per band
        for top in range(row0, row1, band):
            shape = (min(band, row1 - top), col1 - col0)
            mask = paint_annotations(
                [a for a, _ in painted], [label for _, label in painted], shape, origin=(col0 * scale, top * scale),
                downsample=scale,
            )
            counts += np.bincount(mask.ravel(), minlength=256)[: len(names)]
    report.class_pixels = counts.tolist()

    # 4) Classes that vanish at this magnification, or are too small to learn.
    total = int(counts.sum())
    annotated = {a.class_name for a, _ in painted}
    if painted and total == 0:
        report.errors.append(
            Problem(
                geojson_path.name,
                f"no annotated pixels at {at}",
                "annotate larger areas, or train at a higher magnification",
            )
        )
    for k, (name, count) in enumerate(zip(names, counts.tolist())):
        if count == 0 and name in annotated:
            if total:
                report.errors.append(
                    Problem(
                        geojson_path.name,
                        f"class {name!r} is annotated but covers no pixel at {at}: its annotations are smaller than "
                        f"a pixel ({scale * slide.mpp:g} µm), or painted over by later ones",
                        "annotate larger areas, or train at a higher magnification",
                    )
                )
        elif count == 0:
            report.warnings.append(
                Problem(
                    geojson_path.name,
                    f"class {name!r} is never annotated",
                    "annotate some, or drop it from class_names",
                )
            )
        elif count < min_size**2:
            report.warnings.append(
                Problem(
                    geojson_path.name,
                    f"class {name!r} covers only {count:,} pixels at {at}, less than one {min_size}x{min_size} tile",
                    "annotate more of it, or train at a higher magnification",
                )
            )
        elif count / total < RARE_CLASS_FRACTION:
            report.warnings.append(
                Problem(
                    geojson_path.name,
                    f"class {name!r} covers only {count / total:.2%} of the annotated pixels",
                    "annotate more of it, or train with class weights or the Dice loss",
                )
            )
    return report
