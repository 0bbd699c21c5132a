"""Data for segmentation: generated H&E tissue, a real skin slide, the learner's own folders, and tiling.

Every dataset yields ``image`` float32 (3, H, W) in [0, 1] and ``mask`` int64 (H, W), and carries
``class_names``, ``class_colors`` and ``num_classes``.

- :func:`generate_tile`, :class:`TissueDataset`: procedural tumor/stroma tiles with exact masks (``tissue``).
- :func:`load_skin`, :class:`SkinDataset`: a real H&E skin section with a 4-layer mask (``skin``).
- :class:`FolderDataset`, :func:`preflight`: your own images and masks, checked before training.
- :func:`tile_image`, :func:`stitch`, :func:`tile_positions`, :func:`tile_starts`: large images in overlapping
  tiles (``tiling``).
- :func:`augment`: flips, quarter turns and colour jitter, applied to image and mask together; further
  :class:`Augmentation` steps such as :class:`RandomZoom` (scale) and :class:`HEDJitter` (stain colour).
- :class:`Lab`, :data:`LABS`: how a lab stains and scans; tiles from labs "B" and "C" show domain shift.
- ``stain``: optical density and colour deconvolution (:func:`rgb_to_hed`), HED augmentation (:func:`hed_jitter`),
  stain normalisation (:class:`MacenkoNormalizer`, :class:`ReinhardNormalizer`).
"""

from segtutor.data.augment import Augmentation, RandomZoom, augment, random_crop, zoom_pair
from segtutor.data.classes import (
    CLASS_COLORS,
    IGNORE_INDEX,
    SKIN_CLASS_NAMES,
    TISSUE_CLASS_NAMES,
    class_colors,
)
from segtutor.data.datasets import SegmentationDataset, TissueDataset, tile_seed, to_tensors
from segtutor.data.files import FileFormatError, read_image, read_mask
from segtutor.data.folder import FolderDataset
from segtutor.data.preflight import PreflightReport, Problem, preflight
from segtutor.data.skin import SkinDataset, load_skin, load_skin_outlines, rasterize_polygon
from segtutor.data.stain import (
    HEDJitter,
    MacenkoNormalizer,
    ReinhardNormalizer,
    hed_jitter,
    hed_to_rgb,
    lalphabeta_to_rgb,
    macenko_stains,
    od_to_rgb,
    rgb_to_hed,
    rgb_to_lalphabeta,
    rgb_to_od,
    stain_matrix,
)
from segtutor.data.tiling import stitch, tile_image, tile_positions, tile_starts
from segtutor.data.tissue import LABS, Lab, generate_tile, get_lab

__all__ = [
    "CLASS_COLORS",
    "IGNORE_INDEX",
    "SKIN_CLASS_NAMES",
    "TISSUE_CLASS_NAMES",
    "FileFormatError",
    "FolderDataset",
    "PreflightReport",
    "Problem",
    "SegmentationDataset",
    "SkinDataset",
    "TissueDataset",
    "augment",
    "class_colors",
    "generate_tile",
    "load_skin",
    "load_skin_outlines",
    "preflight",
    "random_crop",
    "rasterize_polygon",
    "read_image",
    "read_mask",
    "stitch",
    "tile_image",
    "tile_positions",
    "tile_starts",
    "tile_seed",
    "to_tensors",
    "Augmentation",
    "HEDJitter",
    "LABS",
    "Lab",
    "MacenkoNormalizer",
    "RandomZoom",
    "ReinhardNormalizer",
    "get_lab",
    "hed_jitter",
    "hed_to_rgb",
    "lalphabeta_to_rgb",
    "macenko_stains",
    "od_to_rgb",
    "rgb_to_hed",
    "rgb_to_lalphabeta",
    "rgb_to_od",
    "stain_matrix",
    "zoom_pair",
]
