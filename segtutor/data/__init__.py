"""Data for segmentation: generated H&E tissue, a real skin slide, the learner's own folders, and tiling.

Every dataset yields ``image`` float32 (3, H, W) in [0, 1] and ``mask`` int64 (H, W), and carries
``class_names``, ``class_colors`` and ``num_classes``.

- :func:`generate_tile`, :class:`TissueDataset`: procedural tumor/stroma tiles with exact masks (``tissue``).
- :func:`load_skin`, :class:`SkinDataset`: a real H&E skin section with a 4-layer mask (``skin``).
- :class:`FolderDataset`, :func:`preflight`: your own images and masks, checked before training;
  :func:`read_image`, :func:`read_image_bytes`, :func:`read_mask`: one decoder for files and uploads alike.
- :func:`tile_image`, :func:`stitch`, :func:`tile_positions`, :func:`tile_starts`: large images in overlapping
  tiles (``tiling``).
- :func:`augment`: flips, quarter turns and colour jitter, applied to image and mask together.
- :func:`load_qupath_annotations`: QuPath GeoJSON annotations as a mask (``qupath``).
- :class:`Slide`, :func:`preflight_slide`: whole-slide images read at a magnification, checked with their
  annotations (``slide``); :func:`write_sample_slide` makes one, offline (``sample_slide``).
"""

from segtutor.data.augment import augment, random_crop
from segtutor.data.classes import (
    CLASS_COLORS,
    IGNORE_INDEX,
    SKIN_CLASS_NAMES,
    TISSUE_CLASS_NAMES,
    class_colors,
    class_names_of,
)
from segtutor.data.datasets import SegmentationDataset, TissueDataset, tile_seed, to_tensors
from segtutor.data.files import FileFormatError, read_image, read_image_bytes, read_mask
from segtutor.data.folder import FolderDataset
from segtutor.data.polygons import rasterize_polygon
from segtutor.data.preflight import PreflightReport, Problem, preflight, preflight_slide
from segtutor.data.qupath import AnnotationMask, QuPathAnnotation, load_qupath_annotations, read_qupath_geojson
from segtutor.data.sample_slide import write_sample_slide
from segtutor.data.skin import SkinDataset, load_skin, load_skin_outlines
from segtutor.data.slide import MAGNIFICATION_MPP, Slide, SlideLevel, magnification_to_mpp
from segtutor.data.tiling import stitch, tile_image, tile_positions, tile_starts
from segtutor.data.tissue import generate_tile, paint_tissue

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
    "class_names_of",
    "generate_tile",
    "load_skin",
    "load_skin_outlines",
    "preflight",
    "random_crop",
    "rasterize_polygon",
    "read_image",
    "read_image_bytes",
    "read_mask",
    "stitch",
    "tile_image",
    "tile_positions",
    "tile_starts",
    "tile_seed",
    "to_tensors",
    "AnnotationMask",
    "MAGNIFICATION_MPP",
    "QuPathAnnotation",
    "Slide",
    "SlideLevel",
    "load_qupath_annotations",
    "magnification_to_mpp",
    "paint_tissue",
    "preflight_slide",
    "read_qupath_geojson",
    "write_sample_slide",
]
