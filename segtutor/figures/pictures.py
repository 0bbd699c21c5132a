"""Pictures in plotly figures: RGB arrays as compact PNGs, rows of images with titles, feature-map mosaics.

A ``go.Image`` whose ``source`` is a PNG data URI costs a few kilobytes, where the same picture as a ``z`` array
of numbers costs hundreds: live previews send PNGs.

Example:
    >>> image_row([tile, overlay(tile, mask, colors)], ["the tile", "its mask painted on it"])
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence

import numpy as np
import plotly.express as px
import plotly.graph_objects as go
import torch
from PIL import Image

from segtutor.predict import FALSE_NEGATIVE, FALSE_POSITIVE, OTHER_ERROR

EOSIN_PINK = (232, 160, 200)  # a typical stroma pixel of an H&E tile, under the overlays
ERROR_COLORS = {FALSE_POSITIVE: (214, 39, 40), FALSE_NEGATIVE: (31, 119, 180), OTHER_ERROR: (240, 200, 0)}


def png_uri(rgb: np.ndarray, *, scale: int = 1) -> str:
    """``rgb`` uint8 ``(H, W, 3)`` (or ``(H, W)`` grey) as a ``data:image/png;base64,...`` URI.

    Args:
        rgb: the picture.
        scale: repeat each pixel ``scale × scale`` times (crisp pixels for tiny pictures such as 3x3 kernels).
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8:
        raise TypeError(f"png_uri needs uint8 pixels, got {rgb.dtype}")
    if scale > 1:
        rgb = rgb.repeat(scale, axis=0).repeat(scale, axis=1)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", compress_level=1)  # fast: sent live, not archived
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def image_trace(rgb: np.ndarray, name: str, *, scale: int = 1) -> go.Image:
    """A ``go.Image`` of ``rgb`` (uint8 ``(H, W, 3)``), hover showing the pixel's row and column."""
    return go.Image(source=png_uri(rgb, scale=scale), name=name, dx=1 / scale, dy=1 / scale,
                    x0=-0.5 + 0.5 / scale, y0=-0.5 + 0.5 / scale,
                    hovertemplate=f"{name}<br>row %{{y:.0f}}, col %{{x:.0f}}<extra></extra>")  # fmt: skip


DIVERGING = ("rdbu", "rdbu_r", "puor", "puor_r", "piyg", "piyg_r", "prgn", "prgn_r", "brbg", "brbg_r", "rdylbu",
             "rdylbu_r", "rdgy", "rdgy_r", "balance", "curl", "delta", "picnic", "portland", "tropic")  # lower case


def image_row(
    images: Sequence[np.ndarray | torch.Tensor] | np.ndarray | torch.Tensor,
    titles: Sequence[str] | None = None,
    *,
    height: int = 360,
    title: str | None = None,
    columns: int | None = None,
    colorbar_title: str | None = None,
    per_panel: bool = False,
    microns_per_pixel: float | None = None,
    **imshow: object,
) -> go.Figure:
    """Images side by side, each with its title: ``(H, W, 3)`` pictures, or ``(H, W)`` maps on one colour scale.

    Maps of signed values on a diverging scale (``"RdBu_r"``, ...) are centred on zero (white = 0, red positive
    with ``"RdBu_r"``), unless ``color_continuous_midpoint`` or ``zmin``/``zmax`` say otherwise.

    Args:
        images: a list of same-sized images, or one stacked array ``(N, H, W)`` / ``(N, H, W, 3)``.
        titles: one title per image (default: their index).
        height: figure height in pixels.
        title: the figure's title.
        columns: images per row before wrapping (default: all in one row).
        colorbar_title: what the colours of maps show (default "value", with "white = 0" on a diverging scale).
        per_panel: each map on its own colour scale, with its own colour bar under it (maps whose ranges differ
            a lot, e.g. an image and its edges); default one scale shared by all.
        microns_per_pixel: the pixel size of the images; the axes are then in µm (default: axes in pixels).
        **imshow: passed to ``plotly.express.imshow``, e.g. ``color_continuous_scale="RdBu_r"``.

    Example:
        >>> image_row(np.stack([red, green, blue]), ["red", "green", "blue"], color_continuous_scale="gray")
    """
    stack = np.stack([np.asarray(image) for image in images]) if not hasattr(images, "shape") else np.asarray(images)
    titles = [str(index) for index in range(len(stack))] if titles is None else list(titles)
    if len(titles) != len(stack):
        raise ValueError(f"got {len(titles)} titles for {len(stack)} images")
    maps = stack.ndim == 3  # (N, H, W): values on a colour scale, not pictures
    scale = str(imshow.get("color_continuous_scale", "")).lower()
    centred = maps and scale in DIVERGING and np.nanmin(stack) < 0 < np.nanmax(stack)
    if centred and "color_continuous_midpoint" not in imshow and "zmin" not in imshow and "zmax" not in imshow:
        imshow["color_continuous_midpoint"] = 0  # white = 0: a colour says the sign
    figure = px.imshow(stack, facet_col=0, facet_col_wrap=columns, height=height, title=title, **imshow)
    for annotation in figure.layout.annotations:  # plotly names the facets "facet_col=0", "facet_col=1", ...
        annotation.text = titles[int(annotation.text.split("=")[-1])]
    # the axes count pixels or µm (say which), and hover gives the pixel's place (and value), not an RGBA tuple
    value = ": %{z:.3f}" if maps else ""
    if microns_per_pixel is None:
        figure.update_layout(xaxis_title_text="pixels", yaxis_title_text="pixels")
        figure.update_traces(hovertemplate=f"row %{{y}}, col %{{x}}{value}<extra></extra>")
    else:  # pixel i covers [i, i + 1) × microns_per_pixel µm
        unit = f"µm ({microns_per_pixel:g} µm per pixel)"
        figure.update_layout(xaxis_title_text=unit, yaxis_title_text=unit)
        half = 0.5 * microns_per_pixel
        figure.update_traces(x0=half, dx=microns_per_pixel, y0=half, dy=microns_per_pixel,
                             hovertemplate=f"x %{{x:.0f}} µm, y %{{y:.0f}} µm{value}<extra></extra>")
    if maps:
        zero = centred or imshow.get("color_continuous_midpoint") == 0
        label = colorbar_title if colorbar_title is not None else "value<br>(white = 0)" if zero else "value"
        figure.update_layout(coloraxis_colorbar=dict(title=dict(text=label)))
        if per_panel:
            _own_scales(figure, stack, label, zero, height)
    return figure


def _own_scales(figure: go.Figure, stack: np.ndarray, label: str, zero: bool, height: int) -> None:
    """Give each map of an :func:`image_row` figure (``height`` pixels tall) its own colour axis (symmetric about 0
    if ``zero``), its colour bar under it, below the axis title."""
    shared = figure.layout.coloraxis
    top, bottom_margin = figure.layout.margin.t or 60, 120
    gap = 46 / max(height - top - bottom_margin, 1)  # 46 px: under the tick labels and the axis title
    for index, trace in enumerate(figure.data):
        values = stack[index]
        low, high = float(np.nanmin(values)), float(np.nanmax(values))
        if zero:
            high = max(abs(low), abs(high), 1e-12)
            low = -high
        elif high <= low:
            high = low + 1e-12
        axis = "coloraxis" if index == 0 else f"coloraxis{index + 1}"
        domain = figure.layout[trace.xaxis.replace("x", "xaxis")].domain
        bottom = figure.layout[trace.yaxis.replace("y", "yaxis")].domain[0]
        trace.coloraxis = axis
        figure.update_layout({axis: dict(colorscale=shared.colorscale, cmin=low, cmax=high, colorbar=dict(
            title=dict(text=label.replace("<br>", " "), side="top"), orientation="h", x=(domain[0] + domain[1]) / 2,
            xanchor="center", len=0.9 * (domain[1] - domain[0]), y=bottom - gap, yanchor="top", thickness=10))})
    figure.update_layout(margin=dict(b=bottom_margin))


def mosaic(maps: torch.Tensor | np.ndarray, columns: int = 8, gap: int = 1) -> np.ndarray:
    """Feature maps side by side in a grid, each scaled to [0, 1] on its own (a flat map becomes 0).

    Args:
        maps: ``(n, h, w)``.
        columns: maps per grid row.
        gap: NaN pixels between maps (drawn as blank).

    Returns:
        ``(rows * (h + gap) - gap, columns * (w + gap) - gap)`` float with NaN in the gaps and unused cells.
    """
    maps = np.asarray(maps, dtype=np.float64)
    count, height, width = maps.shape
    columns = max(1, min(columns, count))
    rows = math.ceil(count / columns)
    low = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    scaled = np.where(span > 0, (maps - low) / np.where(span > 0, span, 1), 0.0)
    grid = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap), np.nan)
    for index in range(count):
        row, col = divmod(index, columns)
        top, left = row * (height + gap), col * (width + gap)
        grid[top : top + height, left : left + width] = scaled[index]
    return grid


def kernel_mosaic(weight: torch.Tensor, columns: int = 8, gap: int = 1) -> np.ndarray:
    """The kernels of a first convolution layer as small pictures: uint8 ``(rows * (k + gap) - gap, ..., 3)``.

    Each kernel ``weight[o]`` (``(in_channels, k, k)``) is scaled by its largest absolute weight so that 0 is
    mid-grey: a reddish tap means "more red in the pixel raises this feature". Kernels over 3 input channels
    are drawn in RGB, others in grey (their mean over the input channels). Gaps are white.
    """
    weight = weight.detach().float().cpu()
    out_channels, in_channels, height, width = weight.shape
    pictures = weight if in_channels == 3 else weight.mean(1, keepdim=True).expand(-1, 3, -1, -1)  # (O, 3, k, k)
    scale = pictures.abs().amax(dim=(1, 2, 3), keepdim=True).clamp(min=1e-12)
    pictures = (0.5 + 0.5 * pictures / scale).clamp(0, 1)  # 0 -> grey
    columns = max(1, min(columns, out_channels))
    rows = math.ceil(out_channels / columns)
    grid = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap, 3), 255, np.uint8)
    for index in range(out_channels):
        row, col = divmod(index, columns)
        top, left = row * (height + gap), col * (width + gap)
        grid[top : top + height, left : left + width] = (pictures[index].permute(1, 2, 0) * 255).round().byte().numpy()
    return grid


def error_picture(image: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """The image in pale grey with the errors of :func:`segtutor.predict.error_map` painted on: uint8 (H, W, 3).

    False positives red, false negatives blue, other errors yellow (:data:`ERROR_COLORS`).
    """
    grey = image.astype(np.float32).mean(axis=2, keepdims=True)  # (H, W, 1)
    picture = np.repeat(150 + 0.4 * grey, 3, axis=2)  # pale, so the colours stand out
    for code, color in ERROR_COLORS.items():
        picture[codes == code] = color
    return picture.clip(0, 255).astype(np.uint8)


def class_legend_html(class_names: Sequence[str], colors: Sequence[Sequence[int]], *, alpha: float = 0.45) -> str:
    """One line of HTML naming the overlay colour of each class: the legend of an :func:`segtutor.predict.overlay`.

    Each swatch shows the class colour itself and, next to it, that colour mixed at ``alpha`` over an
    eosin-pink pixel, as it looks on the tissue (a bluish green turns teal there).

    Example:
        >>> class_legend_html(["stroma", "tumor"], [(0, 158, 115), (213, 94, 0)])
    """
    if len(class_names) != len(colors):
        raise ValueError(f"got {len(colors)} colours for {len(class_names)} classes; give one colour per class")
    items = []
    for name, color in zip(class_names, colors):
        mixed = tuple(round((1 - alpha) * e + alpha * c) for e, c in zip(EOSIN_PINK, color))
        swatch = "display:inline-block;width:14px;height:14px;vertical-align:middle;border:1px solid #666"
        items.append(f"<span style='white-space:nowrap;margin-right:14px'><span style='{swatch};background:"
                     f"rgb{tuple(color)}'></span><span style='{swatch};border-left:0;background:rgb{mixed}'></span> "
                     f"{html.escape(name)}</span>")  # fmt: skip
    return (f"<div style='font-size:13px'>overlay colours (pure, then over the pink stain): {''.join(items)}"
            "</div>")


PROBABILITY_RAMP = ((255, 255, 255), (253, 174, 97), (215, 48, 39), (103, 0, 13))  # white, orange, red, dark red


def probability_picture(probs: np.ndarray | torch.Tensor) -> np.ndarray:
    """A map of probabilities in [0, 1] as a picture: white for 0, through orange and red, to dark red for 1.

    A picture (sent as a PNG of a few kilobytes) rather than a heatmap of numbers: what live views send.

    Args:
        probs: ``(H, W)`` values in [0, 1] (e.g. one class's probability); NaN is drawn grey.

    Returns:
        ``(H, W, 3)`` uint8.
    """
    values = np.asarray(torch.as_tensor(probs).float().cpu(), dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"probs must be one (H, W) map, got shape {values.shape}; pick a class, e.g. probs[1]")
    ramp = np.array(PROBABILITY_RAMP, dtype=np.float64)  # (4, 3)
    position = np.clip(np.nan_to_num(values, nan=0.0), 0, 1) * (len(ramp) - 1)  # 0 … 3
    low = np.minimum(position.astype(int), len(ramp) - 2)
    share = (position - low)[..., None]
    picture = (1 - share) * ramp[low] + share * ramp[low + 1]  # linear between neighbouring colours
    picture[np.isnan(values)] = 190
    return picture.round().astype(np.uint8)
