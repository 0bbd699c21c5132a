"""Static plotly figures: the course's pictures, grids of numbers and architecture diagrams (no widgets).

Notebooks call these directly (``fig = image_row(...)`` as a cell's last line shows it); the widgets of
:mod:`segtutor.widgets` build their live figures from them too.

- :mod:`~segtutor.figures.theme`: the look (``style``, ``TEMPLATE``).
- :mod:`~segtutor.figures.grids`: heatmaps with the numbers in the cells, cell outlines.
- :mod:`~segtutor.figures.pictures`: images as PNGs, rows of images with titles, feature-map mosaics.
- :mod:`~segtutor.figures.overlays`: tiles with their class labels painted on, a class legend, hover, µm axes.
- :mod:`~segtutor.figures.diagram`: an architecture drawn from the model's own stages.
- :mod:`~segtutor.figures.curves`: training curves: the learning-rate finder's loss against the learning rate;
  readable ticks for a log axis.
- :mod:`~segtutor.figures.calibration`: reliability diagrams (is "90 % sure" right 90 % of the time?).
"""

from segtutor.lazy import lazy_exports

# each name, by the module that defines it: imported the first time it is used (segtutor.lazy)
lazy_exports(
    __name__,
    {
        "segtutor.figures.calibration": ["reliability_figure"],
        "segtutor.figures.curves": ["log_ticks", "lr_finder_figure"],
        "segtutor.figures.diagram": ["architecture_figure", "legend_html", "place_stages"],
        "segtutor.figures.grids": [
            "MAX_NUMBERED", "cell_outline", "cell_text", "empty_cell_grid", "grid_heatmap", "square_cells"
        ],
        "segtutor.figures.overlays": ["compare_predictions", "hover_text", "legend_colors", "on_stain", "overlay_row"],
        "segtutor.figures.pictures": [
            "ERROR_COLORS", "class_legend_html", "error_picture", "image_row", "image_trace", "kernel_mosaic", "mosaic",
            "png_uri", "probability_picture"
        ],
        "segtutor.figures.theme": ["GRID", "HIGHLIGHT", "TEMPLATE", "style"],
    },
)

__all__ = [
    "ERROR_COLORS",
    "GRID",
    "HIGHLIGHT",
    "MAX_NUMBERED",
    "TEMPLATE",
    "architecture_figure",
    "cell_outline",
    "class_legend_html",
    "compare_predictions",
    "empty_cell_grid",
    "cell_text",
    "error_picture",
    "grid_heatmap",
    "hover_text",
    "image_row",
    "image_trace",
    "kernel_mosaic",
    "legend_colors",
    "legend_html",
    "log_ticks",
    "lr_finder_figure",
    "mosaic",
    "on_stain",
    "overlay_row",
    "place_stages",
    "png_uri",
    "probability_picture",
    "reliability_figure",
    "square_cells",
    "style",
]
