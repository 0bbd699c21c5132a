"""Pre-flight check of a folder of images and a folder of masks, before any training.

Most failed trainings on one's own data are data problems: masks saved as 0/255, labels beyond the number
of classes, masks that do not match their image, a class that never occurs. :func:`preflight` finds them
all at once, names each file and says how to fix it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segtutor.data.classes import IGNORE_INDEX
from segtutor.data.files import IMAGE_SUFFIXES, MASK_SUFFIXES, FileFormatError, read_image, read_mask
from segtutor.models.contract import MIN_SIZE

# A class with less than this share of all labelled pixels gets a warning.
RARE_CLASS_FRACTION = 0.01


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
        lines = [
            f"Pre-flight check of {self.image_dir} (images) and {self.mask_dir} (masks): "
            f"{len(self.pairs)} pairs, {self.num_classes} classes, "
            + ("OK" if self.ok else f"{len(self.errors)} error(s)")
            + f", {len(self.warnings)} warning(s)"
        ]
        lines += [f"  ERROR   {error}" for error in self.errors]
        lines += [f"  WARNING {warning}" for warning in self.warnings]
        if self.class_pixels:
            balance = ", ".join(f"{k}: {share:.1%}" for k, share in enumerate(self.class_balance))
            lines.append(f"  Class balance (share of labelled pixels): {balance}")
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        verdict = "OK" if self.ok else f"{len(self.errors)} error(s)"
        rows = [
            f"<tr><td style='color:{colour};font-weight:bold'>{kind}</td><td>{html.escape(p.file)}</td>"
            f"<td>{html.escape(p.problem)}</td><td>{html.escape(p.fix)}</td></tr>"
            for kind, colour, problems in (("error", "#d55e00", self.errors), ("warning", "#e69f00", self.warnings))
            for p in problems
        ]
        balance = "".join(
            f"<tr><td>{k}</td><td>{count:,}</td><td>{share:.1%}</td></tr>"
            for k, (count, share) in enumerate(zip(self.class_pixels, self.class_balance))
        )
        return (
            f"<div><b>Pre-flight check</b>: {len(self.pairs)} image/mask pairs, {self.num_classes} classes, "
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
        try:
            image = read_image(image_path)
        except FileFormatError as error:
            report.errors.append(Problem(error.file, error.problem, error.fix))
        try:
            mask = read_mask(mask_path)
        except FileFormatError as error:
            report.errors.append(Problem(error.file, error.problem, error.fix))
        if image is not None and mask is not None and image.shape[:2] != mask.shape:
            report.errors.append(
                Problem(
                    mask_path.name,
                    f"mask is {mask.shape[0]}x{mask.shape[1]} but its image {image_path.name} is "
                    f"{image.shape[0]}x{image.shape[1]} (height x width)",
                    "export the mask at the image's full resolution, without cropping or scaling",
                )
            )
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

    # 3) Labels: 0/255 masks, the ignore value, labels out of range; then the class balance.
    found = [label for _, labels, _ in labels_per_mask for label in labels.tolist() if label != IGNORE_INDEX]
    report.num_classes = num_classes if num_classes is not None else max(found, default=0) + 1
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
        if IGNORE_INDEX in label_set:
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
            report.errors.append(
                Problem(
                    mask_path.name,
                    f"labels {out_of_range} lie outside 0..{report.num_classes - 1} (num_classes={report.num_classes})",
                    f"pass num_classes={max(out_of_range) + 1} if they are real classes, or relabel them"
                    if max(out_of_range) >= report.num_classes
                    else "relabel them: labels count 0, 1, 2, ...",
                )
            )
        in_range = (labels >= 0) & (labels < report.num_classes)
        np.add.at(class_pixels, labels[in_range], counts[in_range])
    report.class_pixels = class_pixels.tolist()
    total = class_pixels.sum()
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


def _files_by_stem(folder: Path, suffixes: tuple[str, ...], what: str, report: PreflightReport) -> dict[str, Path]:
    """The files of ``folder`` with one of ``suffixes``, by stem; warns about other files, errs on clashes."""
    by_stem: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.is_dir():
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
