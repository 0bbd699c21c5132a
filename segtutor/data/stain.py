"""Stain colour: optical density, colour deconvolution, and two cures for slides from another lab.

Light through a stained section follows the Beer–Lambert law, ``I = white * exp(-OD)``, and the optical density
``OD (3,)`` of a pixel is the sum of its dyes' colours (unit OD vectors, one per dye) times their amounts. So
``OD = concentrations @ stains``, and inverting the 3x3 ``stains`` matrix (hematoxylin, eosin and a residual
orthogonal to both) gives each pixel's amounts of dye: colour deconvolution (Ruifrok & Johnston 2001), here
called HED space after its usual three stains (the third, DAB in scikit-image, is our residual).

A model trained on one lab's colours meets another lab's slides. Two families of cures:

- augmentation, so that training sees many labs: :func:`hed_jitter` / :class:`HEDJitter` scale and shift the
  amounts of H, E and residual per tile (Tellez et al. 2018);
- normalisation, so that every slide looks like the training lab: :class:`MacenkoNormalizer` (Macenko et al.
  2009) estimates each image's two stain vectors and swaps in the reference's; :class:`ReinhardNormalizer`
  (Reinhard et al. 2001) matches each colour channel's mean and spread in the lαβ colour space.

Images here are numpy arrays ``(..., 3)`` RGB with values in [0, 255] (uint8 or float); :class:`HEDJitter` takes
the tensors ``(3, H, W)`` in [0, 1] that segtutor's datasets yield. Optical densities use the natural logarithm,
as :mod:`segtutor.data.tissue` does (Ruifrok & Johnston use log10: the same vectors, densities 2.3 times larger).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from segtutor.data.tissue import EOSIN_OD, HEMATOXYLIN_OD

WHITE = 255.0  # the brightness of empty glass assumed when converting to optical density


# ---- optical density and colour deconvolution ---------------------------------------------------------------
def rgb_to_od(image: np.ndarray, *, white: float = WHITE) -> np.ndarray:
    """Optical density of each pixel and channel, ``-ln(I / white)``.

    Args:
        image: RGB (..., 3) in [0, 255]; values below 1 count as 1 (the logarithm of 0 is infinite).
        white: the brightness of empty glass; brighter pixels get a (slightly) negative density.

    Returns:
        float64 (..., 3).
    """
    return -np.log(np.maximum(np.asarray(image, dtype=np.float64), 1.0) / white)


def od_to_rgb(density: np.ndarray, *, white: float = WHITE) -> np.ndarray:
    """Inverse of :func:`rgb_to_od`: ``white * exp(-OD)``, float64 (..., 3), not clipped or rounded."""
    return white * np.exp(-np.asarray(density, dtype=np.float64))


def stain_matrix(
    hematoxylin_od: Sequence[float] = HEMATOXYLIN_OD, eosin_od: Sequence[float] = EOSIN_OD
) -> np.ndarray:
    """The 3x3 colour-deconvolution matrix: rows are unit OD vectors of H, E and a residual orthogonal to both.

    Defaults: Ruifrok & Johnston's H and E vectors, the ones :mod:`segtutor.data.tissue` stains with.

    Returns:
        float64 (3, 3); ``OD = hed @ stain_matrix()`` for row vectors.
    """
    hematoxylin, eosin = np.asarray(hematoxylin_od, dtype=np.float64), np.asarray(eosin_od, dtype=np.float64)
    stains = np.stack([hematoxylin, eosin, np.cross(hematoxylin, eosin)])
    return stains / np.linalg.norm(stains, axis=1, keepdims=True)


def rgb_to_hed(image: np.ndarray, stains: np.ndarray | None = None, *, white: float = WHITE) -> np.ndarray:
    """Colour deconvolution: the amounts of hematoxylin, eosin and residual in each pixel.

    Args:
        image: RGB (..., 3) in [0, 255].
        stains: (3, 3) matrix from :func:`stain_matrix`; default the Ruifrok–Johnston H and E.
        white: the brightness of empty glass.

    Returns:
        float64 (..., 3): H, E and residual concentrations (OD units along each unit stain vector).

    Example:
        >>> hed = rgb_to_hed(image)
        >>> hematoxylin = hed[..., 0]  # (H, W): dark where nuclei are
    """
    stains = stain_matrix() if stains is None else np.asarray(stains, dtype=np.float64)
    return rgb_to_od(image, white=white) @ np.linalg.inv(stains)


def hed_to_rgb(hed: np.ndarray, stains: np.ndarray | None = None, *, white: float = WHITE) -> np.ndarray:
    """Inverse of :func:`rgb_to_hed`: float64 RGB (..., 3), not clipped or rounded."""
    stains = stain_matrix() if stains is None else np.asarray(stains, dtype=np.float64)
    return od_to_rgb(np.asarray(hed, dtype=np.float64) @ stains, white=white)


# ---- augmentation in HED space (Tellez et al. 2018) -----------------------------------------------------------
def hed_jitter(image: np.ndarray, rng: np.random.Generator, *, sigma: float = 0.05) -> np.ndarray:
    """HED colour augmentation: each stain's amount becomes ``alpha * amount + beta`` (Tellez et al. 2018).

    One ``alpha`` in ``[1 - sigma, 1 + sigma]`` and one ``beta`` in ``[-sigma, sigma]`` per channel (H, E,
    residual) and per image: a tile stained a little more or less with each dye, as another lab might.
    Tellez et al. (2019) call ``sigma = 0.05`` "HED-light" and ``0.2`` "HED-strong".

    Args:
        image: RGB (H, W, 3) in [0, 255], uint8 or float.
        rng: draws alpha and beta; ``sigma = 0`` returns the image unchanged.
        sigma: the jitter's half-width, >= 0.

    Returns:
        The jittered image, clipped to [0, 255]: uint8 (rounded) for a uint8 input, else float64.

    Example:
        >>> jittered = hed_jitter(image, np.random.default_rng(0), sigma=0.1)
    """
    if not sigma >= 0:
        raise ValueError(f"sigma must be >= 0, got {sigma!r}; Tellez et al. use 0.05 (light) to 0.2 (strong)")
    # 1) Into stain space: H, E and residual amounts per pixel.
    hed = rgb_to_hed(image)  # (H, W, 3)
    # 2) Scale and shift each stain's amount by its own random factor and offset.
    alpha = rng.uniform(1.0 - sigma, 1.0 + sigma, size=3)
    beta = rng.uniform(-sigma, sigma, size=3)
    # 3) Back to RGB.
    jittered = np.clip(hed_to_rgb(hed * alpha + beta), 0.0, 255.0)
    if np.asarray(image).dtype == np.uint8:
        return np.round(jittered).astype(np.uint8)
    return jittered


@dataclass(frozen=True)
class HEDJitter:
    """:func:`hed_jitter` as a dataset augmentation step (see :class:`~segtutor.data.augment.Augmentation`).

    Example:
        >>> train = TissueDataset(256, augment=True, augmentations=[HEDJitter(sigma=0.1)])
    """

    sigma: float = 0.05  # half-width of alpha - 1 and of beta; 0.05 "HED-light", 0.2 "HED-strong"

    def __post_init__(self):
        if not self.sigma >= 0:
            raise ValueError(f"sigma must be >= 0, got {self.sigma!r}; Tellez et al. use 0.05 (light) to 0.2 (strong)")

    def __call__(
        self, image: torch.Tensor, mask: torch.Tensor, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``image`` float32 (3, H, W) in [0, 1], its colours jittered; ``mask`` unchanged."""
        pixels = image.permute(1, 2, 0).double().numpy() * 255.0  # (H, W, 3) in [0, 255]
        jittered = hed_jitter(pixels, rng, sigma=self.sigma) / 255.0
        return torch.from_numpy(np.ascontiguousarray(jittered.transpose(2, 0, 1))).to(image.dtype), mask


# ---- Macenko stain normalisation (Macenko et al. 2009) ---------------------------------------------------------
def macenko_stains(
    image: np.ndarray, *, beta: float = 0.15, alpha: float = 1.0, white: float = WHITE
) -> tuple[np.ndarray, np.ndarray]:
    """Estimate an image's two stain vectors and its maximal stain amounts (Macenko et al. 2009).

    Stained pixels' optical densities lie near the plane spanned by the two stain vectors. The method finds that
    plane, measures each pixel's angle in it, and takes the extreme angles (robustly: the ``alpha`` and
    ``100 - alpha`` percentiles) as the two purest stains.

    Args:
        image: RGB (H, W, 3) or a stack of tiles (N, H, W, 3), in [0, 255].
        beta: optical-density threshold; pixels with a shorter OD vector (glass, faint tissue) are left out.
        alpha: percentile (in %) of the angles taken as the extreme stain directions.
        white: the brightness of empty glass.

    Returns:
        ``stains`` float64 (2, 3): unit OD vectors, hematoxylin first (the one absorbing more red), then eosin;
        ``max_concentrations`` float64 (2,): the 99th percentile of each stain's amount over all pixels.

    Example:
        >>> stains, max_concentrations = macenko_stains(image)
    """
    image = np.asarray(image)
    if image.shape[-1] != 3 or image.ndim < 3:
        raise ValueError(f"image must be RGB (H, W, 3) or (N, H, W, 3), got shape {image.shape}")
    if not 0 <= alpha < 50:
        raise ValueError(f"alpha is a percentile in [0, 50), got {alpha!r}; Macenko et al. use 1")
    # 1) Optical density of every pixel.
    density = rgb_to_od(image, white=white).reshape(-1, 3)  # (P, 3)
    # 2) Leave out transparent pixels: glass and faint tissue carry no reliable colour.
    #    (Macenko et al. drop "OD intensity less than beta"; we read it as the OD vector's length. Dropping a pixel
    #    when any one channel is below beta, as some libraries do, would drop eosin-only stroma here, whose red
    #    and blue densities are small.)
    stained = density[np.linalg.norm(density, axis=1) >= beta]  # (S, 3)
    if len(stained) < max(100, len(density) // 100):
        raise ValueError(
            f"too few stained pixels for Macenko normalisation: {len(stained)} of {len(density)} have an optical "
            f"density of at least beta={beta}; give an image with tissue in it (not blank glass), or lower beta"
        )
    # 3) The plane of the two largest singular directions of the stained pixels' ODs.
    _, _, directions = np.linalg.svd(stained, full_matrices=False)  # rows: (3, 3), largest first
    plane = directions[:2].T  # (3, 2)
    plane *= np.where(plane.sum(axis=0) < 0, -1.0, 1.0)  # make both directions point into positive OD
    # 4) Each pixel's angle in the plane; the robust extremes are the two purest stains.
    projected = stained @ plane  # (S, 2)
    angles = np.arctan2(projected[:, 1], projected[:, 0])
    low, high = np.percentile(angles, [alpha, 100 - alpha])
    extremes = np.stack([np.cos([low, high]), np.sin([low, high])], axis=1) @ plane.T  # (2, 3)
    extremes /= np.linalg.norm(extremes, axis=1, keepdims=True)
    # 5) Hematoxylin absorbs more red than eosin: put it first.
    stains = extremes if extremes[0, 0] > extremes[1, 0] else extremes[::-1]
    # 6) Every pixel's stain amounts (least squares OD = concentrations @ stains), and their robust maxima.
    concentrations = np.linalg.lstsq(stains.T, density.T, rcond=None)[0].T  # (P, 2)
    max_concentrations = np.percentile(concentrations, 99, axis=0)
    return stains, max_concentrations


class MacenkoNormalizer:
    """Make images look stained like a reference: Macenko et al. (2009) stain normalisation.

    Fitting estimates the reference's stain vectors and maximal amounts (:func:`macenko_stains`). Normalising an
    image estimates its own, unmixes each pixel into amounts of its two stains, scales the amounts so their
    99th percentiles match the reference's, and mixes them again with the reference's stain vectors.

    Args:
        reference: RGB (H, W, 3) or (N, H, W, 3) in [0, 255]: one or more tiles of the lab to look like.
        beta, alpha, white: see :func:`macenko_stains`.
        source: a whole slide (RGB, or a stack of its tiles) whose stains every normalised image is assumed to
            have: estimated once, from all of it, instead of from each image. Use it for tiles of one slide: a
            tile of mostly glass has too few stained pixels for an estimate of its own. None: per image.

    Example:
        >>> normalize = MacenkoNormalizer(reference_tiles)  # e.g. a few tiles of the training lab
        >>> looks_like_reference = normalize(image)  # uint8 (H, W, 3)
        >>> per_slide = MacenkoNormalizer(reference_tiles, source=slide_image)  # one estimate for all its tiles
    """

    def __init__(
        self,
        reference: np.ndarray,
        *,
        beta: float = 0.15,
        alpha: float = 1.0,
        white: float = WHITE,
        source: np.ndarray | None = None,
    ):
        self.beta, self.alpha, self.white = beta, alpha, white
        self.stains, self.max_concentrations = macenko_stains(reference, beta=beta, alpha=alpha, white=white)
        self.source_stains = None
        if source is not None:
            self.source_stains = macenko_stains(source, beta=beta, alpha=alpha, white=white)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """``image`` RGB (H, W, 3) in [0, 255], restained with the reference's stains: uint8 (H, W, 3)."""
        image = np.asarray(image)
        # 1) This image's own stains and maximal amounts (or its slide's, estimated once).
        if self.source_stains is not None:
            stains, max_concentrations = self.source_stains
        else:
            stains, max_concentrations = macenko_stains(image, beta=self.beta, alpha=self.alpha, white=self.white)
        # 2) Unmix every pixel into amounts of its two stains.
        density = rgb_to_od(image, white=self.white).reshape(-1, 3)  # (P, 3)
        concentrations = np.linalg.lstsq(stains.T, density.T, rcond=None)[0].T  # (P, 2)
        # 3) Scale the amounts to the reference's range, and 4) mix them with the reference's stain vectors.
        concentrations *= self.max_concentrations / max_concentrations
        restained = od_to_rgb(concentrations @ self.stains, white=self.white).reshape(image.shape)
        return np.clip(np.round(restained), 0, 255).astype(np.uint8)

    def __repr__(self) -> str:
        h, e = (np.array2string(v, precision=3, separator=", ") for v in self.stains)
        source = ", source stains fixed" if self.source_stains is not None else ""
        return (f"MacenkoNormalizer(hematoxylin={h}, eosin={e}, max_concentrations={self.max_concentrations.round(3)}"
                f"{source})")  # fmt: skip


# ---- Reinhard colour transfer (Reinhard et al. 2001) -----------------------------------------------------------
# RGB -> LMS cone responses (Reinhard et al. 2001, eq. 4), then lαβ (Ruderman et al. 1998): l is achromatic,
# α yellow-blue, β red-green, and the three are nearly decorrelated for natural images.
RGB_TO_LMS = np.array([[0.3811, 0.5783, 0.0402], [0.1967, 0.7244, 0.0782], [0.0241, 0.1288, 0.8444]])
LOG_LMS_TO_LAB = np.diag([1 / np.sqrt(3), 1 / np.sqrt(6), 1 / np.sqrt(2)]) @ np.array(
    [[1.0, 1.0, 1.0], [1.0, 1.0, -2.0], [1.0, -1.0, 0.0]]
)


def rgb_to_lalphabeta(image: np.ndarray) -> np.ndarray:
    """RGB to Ruderman's lαβ colour space, the one Reinhard et al. (2001) transfer colour in (not CIELAB).

    Args:
        image: RGB (..., 3) in [0, 255]; values below 1 count as 1 (the space takes logarithms).

    Returns:
        float64 (..., 3): l, α, β.
    """
    rgb = np.maximum(np.asarray(image, dtype=np.float64), 1.0) / 255.0
    return np.log10(rgb @ RGB_TO_LMS.T) @ LOG_LMS_TO_LAB.T


def lalphabeta_to_rgb(lab: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_lalphabeta`: float64 RGB (..., 3) in [0, 255] scale, not clipped or rounded."""
    lms = 10.0 ** (np.asarray(lab, dtype=np.float64) @ np.linalg.inv(LOG_LMS_TO_LAB).T)
    return 255.0 * lms @ np.linalg.inv(RGB_TO_LMS).T


class ReinhardNormalizer:
    """Colour transfer to a reference: match each lαβ channel's mean and standard deviation (Reinhard et al. 2001).

    In lαβ the channels are nearly independent, so each can be shifted and stretched on its own:
    ``out = (x - mean) / std * reference_std + reference_mean``, over all pixels of the image.

    Args:
        reference: RGB (H, W, 3) or (N, H, W, 3) in [0, 255]: one or more tiles of the lab to look like.

    Example:
        >>> normalize = ReinhardNormalizer(reference_tiles)
        >>> looks_like_reference = normalize(image)  # uint8 (H, W, 3)
    """

    def __init__(self, reference: np.ndarray):
        lab = rgb_to_lalphabeta(_check_rgb(reference)).reshape(-1, 3)  # (P, 3)
        self.mean, self.std = lab.mean(axis=0), lab.std(axis=0)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """``image`` RGB (H, W, 3) in [0, 255] with the reference's colour statistics: uint8 (H, W, 3)."""
        # 1) Into lαβ, 2) each channel standardised, then given the reference's mean and spread, 3) back to RGB.
        lab = rgb_to_lalphabeta(_check_rgb(image))  # (H, W, 3)
        mean, std = lab.reshape(-1, 3).mean(axis=0), lab.reshape(-1, 3).std(axis=0)
        if not (std > 0).all():
            raise ValueError("the image has a channel of a single colour (zero spread): nothing to normalise")
        transferred = (lab - mean) / std * self.std + self.mean
        return np.clip(np.round(lalphabeta_to_rgb(transferred)), 0, 255).astype(np.uint8)

    def __repr__(self) -> str:
        return f"ReinhardNormalizer(mean={self.mean.round(3)}, std={self.std.round(3)})"


def _check_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim < 3 or image.shape[-1] != 3:
        raise ValueError(f"image must be RGB (H, W, 3) or (N, H, W, 3), got shape {image.shape}")
    return image
