"""Data for segmentation: generated H&E tissue, a real skin slide, the learner's own folders and slides, tiling.

Every dataset yields ``image`` float32 (3, H, W) in [0, 1] and ``mask`` int64 (H, W), and carries
``class_names``, ``class_colors`` and ``num_classes``.

- :func:`generate_tile`, :class:`TissueDataset`: procedural tumor/stroma tiles with exact masks (``tissue``);
  :class:`Lab`, :data:`LABS`: how a lab stains and scans; tiles from labs "B" and "C" show domain shift;
  :func:`random_lab`, :class:`ManyLabsDataset`: tiles pooled from many labs.
- :func:`load_skin`, :class:`SkinDataset`: a real H&E skin section with a 4-layer mask (``skin``).
- :class:`FolderDataset`, :func:`preflight`: your own images and masks, checked before training;
  :func:`read_image`, :func:`read_image_bytes`, :func:`read_mask`: one decoder for files and uploads alike,
  which checks sizes (``MAX_IMAGE_PIXELS``) before decoding and warns when it rescales pixels.
- :func:`load_qupath_annotations`: QuPath GeoJSON annotations as a mask (``qupath``); :func:`write_qupath_geojson`:
  a mask (a prediction) back to QuPath; :func:`rasterize_polygon`, :func:`trace_outlines`: outlines to pixels and
  back (``polygons``).
- :class:`Slide`, :func:`preflight_slide`: whole-slide images read at a magnification, checked with their
  annotations (``slide``); :func:`write_sample_slide` makes one, offline (``sample_slide``); :class:`SlideDataset`:
  training crops of a slide and its annotations, read at a magnification when they are used (``slide_dataset``).
- :func:`tile_image`, :func:`stitch`, :func:`tile_positions`, :func:`tile_starts`: large images in overlapping
  tiles (``tiling``).
- :func:`augment`: flips, quarter turns and colour jitter, applied to image and mask together; further
  :class:`Augmentation` steps such as :class:`RandomZoom` (scale) and :class:`HEDJitter` (stain colour).
- ``stain``: optical density and colour deconvolution (:func:`rgb_to_hed`), HED augmentation (:func:`hed_jitter`),
  stain normalisation (:class:`MacenkoNormalizer`, :class:`ReinhardNormalizer`).
"""

from segtutor.lazy import lazy_exports

# each name, by the module that defines it: imported the first time it is used (segtutor.lazy)
lazy_exports(
    __name__,
    {
        "segtutor.data.augment": ["Augmentation", "RandomZoom", "augment", "random_crop", "zoom_pair"],
        "segtutor.data.classes": [
            "CLASS_COLORS", "IGNORE_INDEX", "SKIN_CLASS_NAMES", "TISSUE_CLASS_NAMES", "class_colors", "class_names_of"
        ],
        "segtutor.data.datasets": [
            "ManyLabsDataset", "SegmentationDataset", "TissueDataset", "class_balance", "tile_seed", "to_tensors"
        ],
        "segtutor.data.files": [
            "MAX_IMAGE_PIXELS", "FileFormatError", "ImageConversionWarning", "read_image", "read_image_bytes",
            "read_mask"
        ],
        "segtutor.data.folder": ["FolderDataset"],
        "segtutor.data.polygons": ["rasterize_polygon", "trace_outlines"],
        "segtutor.data.preflight": ["PreflightReport", "Problem", "preflight", "preflight_slide"],
        "segtutor.data.qupath": [
            "AnnotationMask", "QuPathAnnotation", "load_qupath_annotations", "read_qupath_geojson",
            "write_qupath_geojson"
        ],
        "segtutor.data.sample_slide": ["write_sample_slide"],
        "segtutor.data.skin": ["SkinDataset", "load_skin", "load_skin_outlines"],
        "segtutor.data.slide": ["MAGNIFICATION_MPP", "Slide", "SlideLevel", "magnification_to_mpp"],
        "segtutor.data.slide_dataset": ["SlideDataset"],
        "segtutor.data.stain": [
            "HEDJitter", "MacenkoNormalizer", "ReinhardNormalizer", "hed_jitter", "hed_to_rgb", "lalphabeta_to_rgb",
            "macenko_stains", "od_to_rgb", "rgb_to_hed", "rgb_to_lalphabeta", "rgb_to_od", "stain_matrix"
        ],
        "segtutor.data.tiling": ["stitch", "tile_image", "tile_positions", "tile_starts"],
        "segtutor.data.tissue": ["LABS", "Lab", "generate_tile", "get_lab", "paint_tissue", "random_lab"],
    },
)

__all__ = [
    "AnnotationMask",
    "Augmentation",
    "CLASS_COLORS",
    "FileFormatError",
    "FolderDataset",
    "HEDJitter",
    "IGNORE_INDEX",
    "ImageConversionWarning",
    "LABS",
    "Lab",
    "MAGNIFICATION_MPP",
    "MAX_IMAGE_PIXELS",
    "MacenkoNormalizer",
    "ManyLabsDataset",
    "PreflightReport",
    "Problem",
    "QuPathAnnotation",
    "RandomZoom",
    "ReinhardNormalizer",
    "SKIN_CLASS_NAMES",
    "SegmentationDataset",
    "SkinDataset",
    "Slide",
    "SlideDataset",
    "SlideLevel",
    "TISSUE_CLASS_NAMES",
    "TissueDataset",
    "augment",
    "class_balance",
    "class_colors",
    "class_names_of",
    "generate_tile",
    "get_lab",
    "hed_jitter",
    "hed_to_rgb",
    "lalphabeta_to_rgb",
    "load_qupath_annotations",
    "load_skin",
    "load_skin_outlines",
    "macenko_stains",
    "magnification_to_mpp",
    "od_to_rgb",
    "paint_tissue",
    "random_lab",
    "preflight",
    "preflight_slide",
    "random_crop",
    "rasterize_polygon",
    "read_image",
    "read_image_bytes",
    "read_mask",
    "read_qupath_geojson",
    "rgb_to_hed",
    "rgb_to_lalphabeta",
    "rgb_to_od",
    "stain_matrix",
    "stitch",
    "tile_image",
    "tile_positions",
    "tile_seed",
    "tile_starts",
    "to_tensors",
    "trace_outlines",
    "write_qupath_geojson",
    "write_sample_slide",
    "zoom_pair",
]
