"""Procedural H&E tissue: tumor nests in fibrous stroma, with an exact label for every pixel.

H&E staining colours a slide with two dyes. Hematoxylin (H, purple-blue) binds DNA, so nuclei are dark; eosin
(E, pink) binds proteins, so collagen fibres and cytoplasm are pink. A tile is made in five steps:

1. Layout (:func:`tissue_layout`): threshold smooth random fields into tumor nests and, optionally, white
   background. This is the mask; every later step only paints what the mask says.
2. Texture: how much H and E each pixel of stroma (wavy collagen fibres) and tumor (cytoplasm) holds.
3. Nuclei (:func:`stamp_nuclei`): crowded, large, round, dark nuclei in tumor; sparse spindle-shaped
   fibroblasts along the fibres and a few small round lymphocytes in stroma.
4. Optics: the microscope's focus blurs the stains a little.
5. Colour (:func:`stain_to_rgb`): the Beer–Lambert law turns amounts of dye into RGB. Stain colours and
   strengths change a little from tile to tile, as they do between slides of one lab.
6. Scanner: its pixel size (the tissue is resampled to it), its lens blur and its camera noise.

Steps 2 to 6 (:func:`paint_tissue`) paint any layout, e.g. annotations drawn as polygons.

Labs differ more than slides do: another hematoxylin, a paler eosin, a blurrier scanner with smaller pixels.
A :class:`Lab` holds these settings and :data:`LABS` names three: a model trained on lab "A" meets labs "B"
and "C" as an app trained in one hospital meets slides from another (domain shift).

The scale is roughly 1 µm per pixel in lab A, what a slide scanner gives at about 10× (0.5 µm at 20×, 0.25 µm at
40×): tumor nuclei are 6–10 px across.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from segtutor.data.augment import zoom_pair
from segtutor.data.classes import TISSUE_CLASS_NAMES

# Optical density of one unit of each stain in (R, G, B), from Ruifrok & Johnston (2001),
# "Quantification of histochemical staining by color deconvolution".
HEMATOXYLIN_OD = (0.650, 0.704, 0.286)
EOSIN_OD = (0.072, 0.990, 0.105)


@dataclass(frozen=True)
class Lab:
    """How one lab's slides look: its dyes, its staining protocol, its scanner and camera.

    Every field is relative to lab A, the generator's reference look; the defaults are lab A. Tiles of one lab
    still vary among themselves (``stain_variation``, and each tile's own stain strength, focus and lamp).

    Example:
        >>> from dataclasses import replace
        >>> sharp_b = replace(LABS["B"], name="B, sharp", blur_sigma=0.0)  # lab B's stains, lab A's scanner
        >>> image, mask = generate_tile(128, seed=0, lab=sharp_b)
    """

    name: str
    description: str = ""
    hematoxylin_od: tuple[float, float, float] = HEMATOXYLIN_OD  # colour of the lab's hematoxylin: OD in R, G, B
    eosin_od: tuple[float, float, float] = EOSIN_OD  # colour of its eosin
    hematoxylin_strength: float = 1.0  # how dark the hematoxylin stains (longer staining: > 1)
    eosin_strength: float = 1.0  # how dark the eosin stains
    stain_variation: float = 0.05  # slide-to-slide jitter of each stain vector's components
    blur_sigma: float = 0.0  # the scanner's lens blur in pixels, on top of each tile's focus
    microns_per_pixel: float = 1.0  # the scanner's pixel size; 0.8 shows every nucleus 1.25 times wider
    noise: float = 1.0  # the camera's noise, as a multiple of lab A's
    illuminant: tuple[float, float, float] = (1.0, 1.0, 1.0)  # colour of empty glass (white balance), R G B

    def __post_init__(self):
        for field in ("hematoxylin_od", "eosin_od"):
            vector = np.asarray(getattr(self, field), dtype=float)
            if vector.shape != (3,) or (vector < 0).any() or not vector.sum() > 0:
                raise ValueError(f"{field} must be 3 non-negative optical densities (R, G, B), got {vector.tolist()}")
        hematoxylin, eosin = np.asarray(self.hematoxylin_od, float), np.asarray(self.eosin_od, float)
        if np.linalg.norm(np.cross(hematoxylin, eosin)) < 0.05 * np.linalg.norm(hematoxylin) * np.linalg.norm(eosin):
            raise ValueError(
                f"hematoxylin_od {self.hematoxylin_od} and eosin_od {self.eosin_od} point (almost) the same way; "
                "two dyes need two different colours"
            )
        for field in ("hematoxylin_strength", "eosin_strength"):
            if not getattr(self, field) > 0:
                raise ValueError(f"{field} must be > 0 (lab A: 1.0), got {getattr(self, field)!r}")
        if not 0.25 <= self.microns_per_pixel <= 4.0:
            raise ValueError(f"microns_per_pixel must lie in [0.25, 4] (lab A: 1.0), got {self.microns_per_pixel!r}")
        for field in ("stain_variation", "blur_sigma", "noise"):
            if not getattr(self, field) >= 0:
                raise ValueError(f"{field} must be >= 0 (lab A: {getattr(Lab, field)}), got {getattr(self, field)!r}")
        illuminant = np.asarray(self.illuminant, dtype=float)
        if illuminant.shape != (3,) or not ((illuminant > 0.5) & (illuminant <= 1.05)).all():
            raise ValueError(
                f"illuminant must be 3 factors in (0.5, 1.05] (R, G, B; lab A: 1, 1, 1), got {self.illuminant}"
            )


# Three labs, chosen so that a model trained on lab A alone loses clearly on B and C, while colour augmentation
# or stain normalisation (the ``stain`` module) wins much of it back.
LABS = {
    "A": Lab("A", "lab A: the reference lab the model is trained on"),
    "B": Lab(
        "B",
        "lab B: a paler, pinker stain (short hematoxylin, strong eosin), a different scanner: blurrier",
        hematoxylin_strength=0.6,
        eosin_strength=1.4,
        blur_sigma=0.7,
    ),
    "C": Lab(
        "C",
        "lab C: another hematoxylin (bluer) and a duller eosin, a yellowish lamp, a scanner with smaller "
        "pixels (0.8 µm: nuclei 1.25 times wider) and more noise",
        hematoxylin_od=(0.80, 0.55, 0.23),
        eosin_od=(0.20, 0.95, 0.25),
        microns_per_pixel=0.8,
        noise=1.8,
        illuminant=(1.0, 0.97, 0.88),
    ),
}


def get_lab(lab: str | Lab | None) -> Lab:
    """The :class:`Lab` named ``lab`` in :data:`LABS` (``None`` is lab "A"); a ``Lab`` is returned as it is."""
    if lab is None:
        return LABS["A"]
    if isinstance(lab, Lab):
        return lab
    if lab not in LABS:
        raise ValueError(f"unknown lab {lab!r}; choose one of {', '.join(map(repr, LABS))}, or pass a Lab(...)")
    return LABS[lab]


def random_lab(rng: np.random.Generator, name: str = "random") -> Lab:
    """A lab drawn at random: its own dyes, staining times, scanner blur, pixel size, camera noise and lamp.

    The ranges are wide enough to hold labs like "B" and "C" (see :data:`LABS`) without being them: tiles from
    many such labs teach a network that colour, sharpness and scale vary, as slides pooled from many hospitals
    do (the data a pretrained encoder learns from, :mod:`segtutor.train.pretrain`).

    Args:
        rng: the only source of randomness.
        name: the lab's name.

    Returns:
        A :class:`Lab`.

    Example:
        >>> lab = random_lab(np.random.default_rng(0))
        >>> image, mask = generate_tile(96, seed=1, lab=lab)
    """
    # 1) Dye colours: lab A's optical densities moved by up to 0.18 per component (lab C's differ by up to 0.15).
    hematoxylin = np.clip(np.asarray(HEMATOXYLIN_OD) + rng.uniform(-0.18, 0.18, 3), 0.02, None)
    eosin = np.clip(np.asarray(EOSIN_OD) + rng.uniform(-0.18, 0.18, 3), 0.02, None)
    # 2) Staining times (log-uniform: 0.6 as likely as 1 / 0.6), 3) the scanner, 4) the lamp's white balance.
    return Lab(
        name,
        "a lab drawn at random (random_lab)",
        hematoxylin_od=tuple(float(v) for v in hematoxylin),
        eosin_od=tuple(float(v) for v in eosin),
        hematoxylin_strength=float(np.exp(rng.uniform(np.log(0.55), np.log(1.6)))),
        eosin_strength=float(np.exp(rng.uniform(np.log(0.6), np.log(1.6)))),
        blur_sigma=float(rng.uniform(0.0, 1.0)),
        microns_per_pixel=float(np.exp(rng.uniform(np.log(0.75), np.log(1.33)))),
        noise=float(rng.uniform(0.5, 2.0)),
        illuminant=(1.0, float(rng.uniform(0.93, 1.0)), float(rng.uniform(0.85, 1.0))),
    )


def generate_tile(
    tile_size: int = 128,
    *,
    seed: int = 0,
    classes: Sequence[str] = ("stroma", "tumor"),
    tumor_fraction: float | None = None,
    lab: str | Lab | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One H&E-like tile and its mask, as lab ``lab`` stains and scans it.

    Args:
        tile_size: height and width in pixels.
        seed: the same seed gives the same tile, byte for byte.
        classes: class names in label order, a selection of ``TISSUE_CLASS_NAMES`` that holds "stroma" and
            "tumor"; add "background" for white holes (lumen, glass).
        tumor_fraction: share of the tile that is tumor (before background holes are cut out of it); ``None``
            draws it between 0.2 and 0.6.
        lab: a name from :data:`LABS` ("A", "B", "C") or your own :class:`Lab`; ``None`` is lab "A". The same
            seed gives the same tissue and mask in every lab that keeps lab A's pixel size.

    Returns:
        ``image`` uint8 (H, W, 3) RGB and ``mask`` int64 (H, W) holding the index of each pixel's class in ``classes``.

    Example:
        >>> image, mask = generate_tile(128, seed=3)
        >>> image.shape, mask.shape
        ((128, 128, 3), (128, 128))
        >>> image_b, mask_b = generate_tile(128, seed=3, lab="B")  # the same tissue, stained in lab B
    """
    classes = check_tissue_classes(classes)
    lab = get_lab(lab)
    if tile_size < 8:
        raise ValueError(f"tile_size must be at least 8 pixels, got {tile_size}")
    if tumor_fraction is not None and not 0.0 <= tumor_fraction <= 1.0:
        raise ValueError(f"tumor_fraction must lie in [0, 1], got {tumor_fraction}")
    rng = np.random.default_rng(seed)
    # The tissue is drawn at lab A's 1 µm per pixel, on as many pixels as the scanner's tile covers (step 6).
    side = tile_size if lab.microns_per_pixel == 1.0 else max(int(np.ceil(tile_size * lab.microns_per_pixel)), 8)
    shape = (side, side)

    # 1) Layout: which pixel is which tissue.
    if tumor_fraction is None:
        tumor_fraction = rng.uniform(0.2, 0.6)
    background_fraction = rng.uniform(0.03, 0.2) if "background" in classes else 0.0
    tissue = tissue_layout(shape, rng, tumor_fraction=tumor_fraction, background_fraction=background_fraction)

    # 2) to 6) Stains, nuclei, optics, colour and the scanner.
    image, tissue = paint_tissue(tissue, rng, lab=lab, size=(tile_size, tile_size))

    # Relabel from the generator's fixed codes (stroma 0, tumor 1, background 2) to the order asked for
    # (-1 marks background when it is not asked for; the layout then has none).
    codes = np.array([classes.index(name) if name in classes else -1 for name in TISSUE_CLASS_NAMES])
    return image, codes[tissue].astype(np.int64)


def paint_tissue(
    tissue: np.ndarray,
    rng: np.random.Generator,
    *,
    lab: str | Lab | None = None,
    size: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """H&E-like pixels for a given layout, as lab ``lab`` stains and scans it: steps 2 to 6 of :func:`generate_tile`.

    Any layout serves, e.g. polygons an annotator drew, filled in (:func:`segtutor.data.write_sample_slide`).

    Args:
        tissue: int (H, W) at 1 µm per pixel: 0 stroma, 1 tumor, 2 background (glass, lumen).
        rng: draws the stains, the nuclei and the noise.
        lab: a name from :data:`LABS` or a :class:`Lab`; ``None`` is lab "A".
        size: ``(height, width)`` of the scanned image when the lab's pixel size is not 1 µm (default: the
            layout's size scaled by it).

    Returns:
        ``image`` uint8 (h, w, 3) RGB and the layout at the scanner's pixels (the same array for a 1 µm scanner).

    Example:
        >>> tissue = np.zeros((64, 64), dtype=np.int64)
        >>> tissue[16:48, 16:48] = 1  # a square tumor nest in stroma
        >>> paint_tissue(tissue, np.random.default_rng(0))[0].shape
        (64, 64, 3)
    """
    lab = get_lab(lab)
    shape = tissue.shape
    tumor, background = tissue == 1, tissue == 2

    # 2) Texture: amounts of hematoxylin and eosin in stroma and in tumor cytoplasm.
    fibre_angle = rng.uniform(0.0, np.pi)
    hematoxylin, eosin = stroma_stains(shape, fibre_angle, rng)
    tumor_h, tumor_e = tumor_cytoplasm_stains(shape, rng)
    hematoxylin[tumor], eosin[tumor] = tumor_h[tumor], tumor_e[tumor]
    hematoxylin[background], eosin[background] = 0.01, 0.02

    # 3) Nuclei take hematoxylin and push eosin aside.
    nuclei = stamp_nuclei(tissue, fibre_angle, rng)  # (H, W) in [0, 1]
    chromatin = 1.0 + 0.2 * smooth_noise(shape, 0.7, rng)  # grainy texture inside nuclei
    hematoxylin += rng.uniform(1.3, 1.8) * nuclei * chromatin
    eosin *= 1.0 - 0.7 * nuclei

    # 3b) Retraction clefts: stroma shrinks during fixation and often pulls away from the nests, leaving a thin
    # white gap on the stroma side of the border along part of it.
    if rng.random() < 0.6:
        gap = ndimage.binary_dilation(tumor, iterations=int(rng.integers(1, 3))) & (tissue == 0)
        gap &= smooth_noise(shape, 6.0, rng) > rng.uniform(-0.5, 0.5)
        hematoxylin[gap] *= 0.2
        eosin[gap] *= 0.15

    # 4) Optics: the microscope's focus blurs the stains.
    focus = rng.uniform(0.4, 0.9)
    hematoxylin, eosin = ndimage.gaussian_filter(hematoxylin, focus), ndimage.gaussian_filter(eosin, focus)

    # 5) Colour: Beer–Lambert with the lab's stains and this tile's variation of them.
    image = stain_to_rgb(hematoxylin, eosin, rng, lab=lab)  # (H, W, 3) float in [0, 255]

    # 6) Scanner: its pixel size (image bilinear, labels nearest), its lens blur, its camera noise.
    if lab.microns_per_pixel != 1.0:
        if size is None:
            size = tuple(max(int(round(n / lab.microns_per_pixel)), 1) for n in shape)
        image, tissue = zoom_pair(image, tissue, 1.0 / lab.microns_per_pixel, size=size)
    if lab.blur_sigma > 0:
        image = ndimage.gaussian_filter(image, (lab.blur_sigma, lab.blur_sigma, 0.0))
    image += lab.noise * rng.uniform(1.5, 4.0) * rng.standard_normal(image.shape, dtype=np.float32)
    return np.clip(image + 0.5, 0, 255).astype(np.uint8), tissue


def smooth_noise(shape: tuple[int, int], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """White noise blurred by a Gaussian of ``sigma`` pixels, scaled to mean 0 and standard deviation 1.

    Returns:
        float32 (H, W): a random field whose blobs are about ``2 * sigma`` pixels across.
    """
    field = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma, mode="wrap", truncate=3.0)
    return (field - field.mean()) / (field.std() + 1e-8)


def tissue_layout(
    shape: tuple[int, int],
    rng: np.random.Generator,
    *,
    tumor_fraction: float,
    background_fraction: float = 0.0,
) -> np.ndarray:
    """Where tumor nests and background lie: thresholded smooth random fields.

    Thresholding a field at its ``1 - fraction`` quantile marks exactly ``fraction`` of the pixels, in rounded,
    lobulated islands like real tumor nests.

    Returns:
        int64 (H, W): 0 stroma, 1 tumor, 2 background.
    """
    nest_field = smooth_noise(shape, rng.uniform(6.0, 11.0), rng)
    layout = (nest_field > np.quantile(nest_field, 1.0 - tumor_fraction)).astype(np.int64)
    if background_fraction > 0.0:
        hole_field = smooth_noise(shape, rng.uniform(5.0, 9.0), rng)
        layout[hole_field > np.quantile(hole_field, 1.0 - background_fraction)] = 2
    return layout


def stroma_stains(
    shape: tuple[int, int], fibre_angle: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Hematoxylin and eosin amounts of fibrous stroma: wavy collagen fibres in bundles, with pale clefts.

    The fibres are a random one-dimensional "barcode" of bright and dark bands, read along a direction that a
    smooth random warp bends, so they run roughly parallel and wave.

    Args:
        shape: (H, W).
        fibre_angle: main direction of the fibres in radians, from the row axis: (cos, sin) in (row, column).
        rng: the tile's random generator.

    Returns:
        ``hematoxylin``, ``eosin``: float32 (H, W) amounts of dye.
    """
    rows, cols = np.indices(shape, dtype=np.float32)
    warp = rng.uniform(2.0, 5.0) * smooth_noise(shape, rng.uniform(8.0, 14.0), rng)  # pixels of sideways bend
    across = cols * np.cos(fibre_angle) - rows * np.sin(fibre_angle) + warp  # distance across the fibres
    barcode = ndimage.gaussian_filter1d(rng.standard_normal(4 * sum(shape)), rng.uniform(0.6, 1.0))
    barcode = np.clip(0.5 + barcode / (2.5 * barcode.std()), 0.0, 1.0)
    fibres = np.interp(across, np.arange(barcode.size) - 2 * sum(shape), barcode)
    bundles = np.clip(0.75 + 0.3 * smooth_noise(shape, 5.0, rng), 0.0, 1.0)  # denser and looser areas
    eosin = rng.uniform(0.55, 0.95) * (0.2 + 0.8 * fibres * bundles)
    hematoxylin = np.full(shape, rng.uniform(0.02, 0.07), dtype=np.float32)
    return hematoxylin, eosin.astype(np.float32)


def tumor_cytoplasm_stains(shape: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Hematoxylin and eosin amounts of tumor cytoplasm: smooth, mottled, from pale pink to lilac per tile.

    Returns:
        ``hematoxylin``, ``eosin``: float32 (H, W) amounts of dye.
    """
    mottle = 1.0 + 0.15 * smooth_noise(shape, 1.5, rng)
    hematoxylin = rng.uniform(0.12, 0.3) * mottle
    eosin = rng.uniform(0.25, 0.5) * mottle
    return hematoxylin.astype(np.float32), eosin.astype(np.float32)


def stamp_nuclei(tissue: np.ndarray, fibre_angle: float, rng: np.random.Generator) -> np.ndarray:
    """Nuclei of every kind, each drawn inside the tissue it belongs to.

    Tumor nuclei sit on a jittered grid (crowded, rarely overlapping), vary in size and outline, often show a
    nucleolus, and stay wholly inside their nest, so the mask stays exact at nest borders. Stroma gets
    fibroblasts (thin spindles along the fibres) and lymphocytes (small, round, very dark), clipped to the stroma.

    Args:
        tissue: int64 (H, W) layout from :func:`tissue_layout` (0 stroma, 1 tumor, 2 background).
        fibre_angle: direction of the stroma fibres in radians, from the row axis.

    Returns:
        float32 (H, W) nuclear density in [0, 1].
    """
    shape = tissue.shape

    # Tumor: one candidate per grid cell, kept where the whole nucleus fits inside the nest.
    tumor_nuclei = np.zeros(shape, dtype=np.float32)
    spacing = rng.uniform(6.5, 8.5)
    grid = np.stack(np.meshgrid(np.arange(0, shape[0], spacing), np.arange(0, shape[1], spacing)), -1).reshape(-1, 2)
    centers = grid + rng.uniform(-0.3, 0.3, size=grid.shape) * spacing
    radius = rng.uniform(2.8, 3.6) * rng.lognormal(0.0, 0.2, size=len(centers))  # pleomorphic
    depth = ndimage.distance_transform_edt(tissue == 1)  # distance to the nest border
    inside = _sample(depth, centers) > radius + 0.5
    centers, radius = centers[inside], radius[inside]
    n = len(centers)
    stamp_ellipses(
        tumor_nuclei,
        centers,
        radii=np.stack([radius * rng.uniform(0.7, 1.0, n), radius], -1),
        angles=rng.uniform(0, np.pi, n),
        darkness=rng.uniform(0.6, 0.95, n),  # some nuclei hyperchromatic, some pale
        rim=0.35,  # vesicular chromatin: darker membrane, paler centre
        wobble=0.08,
        rng=rng,
    )
    has_nucleolus = rng.random(n) < 0.5
    nucleoli = centers[has_nucleolus] + rng.normal(0.0, 0.5, size=(int(has_nucleolus.sum()), 2))
    stamp_ellipses(
        tumor_nuclei,
        nucleoli,
        radii=np.full((len(nucleoli), 2), 0.9),
        angles=np.zeros(len(nucleoli)),
        darkness=np.ones(len(nucleoli)),
    )

    # Stroma: fibroblasts and lymphocytes, a few hundred pixels of stroma apart.
    stroma = tissue == 0
    stroma_nuclei = np.zeros(shape, dtype=np.float32)
    area = stroma.sum()
    count = rng.poisson(area / rng.uniform(150, 350))
    stamp_ellipses(
        stroma_nuclei,
        rng.uniform(0, 1, size=(count, 2)) * shape,
        radii=np.stack([rng.uniform(1.0, 1.5, count), rng.uniform(4.0, 7.0, count)], -1),
        angles=fibre_angle + rng.normal(0.0, 0.2, count),
        darkness=rng.uniform(0.7, 1.0, count),
    )
    count = rng.poisson(area / rng.uniform(300, 3000))
    stamp_ellipses(
        stroma_nuclei,
        rng.uniform(0, 1, size=(count, 2)) * shape,
        radii=np.repeat(rng.uniform(2.0, 2.6, (count, 1)), 2, axis=1),
        angles=np.zeros(count),
        darkness=np.ones(count),
    )
    return np.maximum(tumor_nuclei, stroma_nuclei * stroma)


def stamp_ellipses(
    canvas: np.ndarray,
    centers: np.ndarray,
    *,
    radii: np.ndarray,
    angles: np.ndarray,
    darkness: np.ndarray,
    rim: float = 0.0,
    wobble: float = 0.0,
    rng: np.random.Generator | None = None,
) -> None:
    """Draw filled, anti-aliased ellipses into ``canvas`` in place (the darker value wins where they overlap).

    All ellipses are drawn at once: each gets a small square patch of pixels around its centre, (n, P, P),
    evaluated with array arithmetic and written into the canvas with ``np.maximum.at``.

    Args:
        canvas: float32 (H, W).
        centers: (n, 2) row, column of each centre; ellipses centred outside the canvas are skipped.
        radii: (n, 2) half-axes in pixels, the first across the ellipse's direction.
        angles: (n,) direction of the second half-axis in radians, from the row axis: (cos, sin) in (row, column).
        darkness: (n,) value at the centre.
        rim: how much darker the edge is than the centre (0 for a flat disc).
        wobble: how bumpy the outline is (0 for a smooth ellipse); needs ``rng``.
        rng: draws the bumps.
    """
    on_canvas = (centers >= 0).all(axis=1) & (centers[:, 0] < canvas.shape[0]) & (centers[:, 1] < canvas.shape[1])
    centers, radii = centers[on_canvas].astype(np.float32), radii[on_canvas].astype(np.float32)
    angles, darkness = angles[on_canvas].astype(np.float32), darkness[on_canvas].astype(np.float32)
    if len(centers) == 0:
        return
    reach = int(np.ceil(radii.max() * (1 + 2 * wobble))) + 1
    offsets = np.arange(-reach, reach + 1)  # (P,)
    corner = np.floor(centers).astype(np.int64)  # (n, 2) pixel holding the centre
    rows = corner[:, 0, None, None] + offsets[None, :, None]  # (n, P, 1)
    cols = corner[:, 1, None, None] + offsets[None, None, :]  # (n, 1, P)
    to_pixel = corner + np.float32(0.5) - centers  # (n, 2) from the ellipse centre to its pixel's centre
    dy = to_pixel[:, 0, None, None] + offsets.astype(np.float32)[None, :, None]  # (n, P, 1)
    dx = to_pixel[:, 1, None, None] + offsets.astype(np.float32)[None, None, :]  # (n, 1, P)
    cos, sin = np.cos(angles)[:, None, None], np.sin(angles)[:, None, None]
    across, along = dy * sin - dx * cos, dy * cos + dx * sin  # (n, P, P) in the ellipse's own axes
    distance = np.hypot(across / radii[:, 0, None, None], along / radii[:, 1, None, None])  # 1 on the edge
    if wobble > 0:  # bumpy outline: the radius varies with a random mix of 2- and 3-lobed shapes
        length = np.hypot(across, along) + 1e-6
        c, s = across / length, along / length  # cosine and sine of each pixel's direction from the centre
        lobes = np.stack([c * c - s * s, 2 * c * s, c * (4 * c * c - 3), s * (3 - 4 * s * s)])  # cos 2θ ... sin 3θ
        mix = rng.normal(0.0, 0.7, size=(4, len(centers), 1, 1)).astype(np.float32)
        distance *= 1.0 + wobble * (mix * lobes).sum(axis=0)
    coverage = np.clip((1.0 - distance) * radii[:, 0, None, None] + 0.5, 0.0, 1.0)  # 1-pixel soft edge
    value = coverage * darkness[:, None, None] * (1.0 - rim + rim * np.minimum(distance, 1.0) ** 3)

    # Write through a padded canvas, so that patches sticking out over the border need no special case.
    padded = np.zeros((canvas.shape[0] + 2 * reach, canvas.shape[1] + 2 * reach), dtype=canvas.dtype)
    flat_index = (rows + reach) * padded.shape[1] + (cols + reach)  # (n, P, P)
    np.maximum.at(padded.reshape(-1), flat_index.reshape(-1), value.reshape(-1).astype(canvas.dtype))
    np.maximum(canvas, padded[reach:-reach, reach:-reach], out=canvas)


def stain_to_rgb(
    hematoxylin: np.ndarray, eosin: np.ndarray, rng: np.random.Generator, *, lab: str | Lab | None = None
) -> np.ndarray:
    """Beer–Lambert law: light through two dyes, with this tile's stain colours and strengths.

    Each dye absorbs a fixed share of red, green and blue per unit (its optical density vector); optical
    densities add, and the light that gets through is ``white * exp(-total density)``. The lab sets the dyes'
    colours and strengths and the lamp's colour; its tiles differ by a slightly turned stain vector, a stronger
    or weaker stain, and the whiteness of the lamp.

    Args:
        hematoxylin, eosin: float32 (H, W) amounts of dye.
        rng: the tile's random generator.
        lab: the lab's stains and lamp; ``None`` is lab "A".

    Returns:
        float32 (H, W, 3) RGB in [0, 255].
    """
    lab = get_lab(lab)
    stains = []
    for vector, strength in ((lab.hematoxylin_od, lab.hematoxylin_strength), (lab.eosin_od, lab.eosin_strength)):
        jittered = np.abs(np.asarray(vector) + rng.normal(0.0, lab.stain_variation, size=3))
        stains.append((strength * rng.uniform(0.75, 1.3) * jittered / np.linalg.norm(jittered)).astype(np.float32))
    density = hematoxylin[..., None] * stains[0] + eosin[..., None] * stains[1]  # (H, W, 3)
    white = ((rng.uniform(235.0, 252.0) + rng.uniform(-4.0, 4.0, size=3)) * np.asarray(lab.illuminant)).astype(
        np.float32
    )
    return white * np.exp(-density)


def check_tissue_classes(classes: Sequence[str]) -> tuple[str, ...]:
    """``classes`` as a tuple, after checking it names "stroma" and "tumor", maybe "background", each once."""
    classes = tuple(classes)
    unknown = [name for name in classes if name not in TISSUE_CLASS_NAMES]
    if unknown or len(set(classes)) != len(classes) or not {"stroma", "tumor"} <= set(classes):
        raise ValueError(
            f"classes must name 'stroma' and 'tumor', optionally 'background', each once; got {classes}. "
            f"Valid names: {TISSUE_CLASS_NAMES}"
        )
    return classes


def _sample(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Values of ``image`` at (row, column) ``points``, nearest pixel; 0 outside."""
    index = np.floor(points).astype(np.int64)
    valid = (index >= 0).all(1) & (index[:, 0] < image.shape[0]) & (index[:, 1] < image.shape[1])
    values = np.zeros(len(points), dtype=image.dtype)
    values[valid] = image[index[valid, 0], index[valid, 1]]
    return values
