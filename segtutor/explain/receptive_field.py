"""Receptive fields: which input pixels can change one output pixel of a network?

A 3×3 convolution sees 3 pixels across; a second one on top sees 5; after a stride-2 pooling every further
layer's step counts double. For a chain of layers (Araujo et al., "Computing Receptive Fields of Convolutional
Neural Networks", Distill 2019, https://distill.pub/2019/computing-receptive-fields/)::

    size_out = size_in + dilation·(kernel_size − 1) · jump_in     # input pixels across
    jump_out = jump_in · stride                                    # input pixels between neighbouring outputs

Real segmentation networks branch (ASPP), merge (skips, sums, concatenations) and upsample, and then
neighbouring output pixels can see differently placed regions. So instead of the formula we follow the exact
rule behind it through a real forward pass: for every pixel of every feature map, along rows and along columns,
we keep the first and last input pixel it can see (a :class:`Span`). A convolution's output pixel sees from the
first to the last pixel its taps see; a merge sees what any of its inputs sees. The forward pass sends a batch
of *zero* images: every shape is computed but no arithmetic is done, so a 4096-pixel image costs nothing.

* :func:`receptive_field` gives, per layer, the largest region any pixel sees (``size``) and the ``jump``, in
  input pixels and, for a pixel size in µm (``microns_per_pixel``), in µm of tissue (``size_um``, ``jump_um``).
* :func:`receptive_boxes` gives the box of input pixels one output pixel sees, for drawing.

:mod:`segtutor.explain.effective_field` measures the same regions with autograd instead, and how strongly each
pixel actually matters (the effective receptive field).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from segtutor.models import evaluating, input_channels

GLOBAL = math.inf  # the size of a field that covers the whole image, however large (global average pooling)
# µm per pixel of the course's tissue: the generator paints about 1 µm per pixel, and the skin slide was
# photographed through a 10× objective (scikit-image's description), which scanners digitise at about 1 µm/px.
COURSE_MICRONS_PER_PIXEL = 1.0
LAYER_TYPES = (nn.Conv2d, nn.ConvTranspose2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Upsample)
VIRTUAL_SIZE = 4096  # the virtual image receptive_field sends through: larger than any field it reports


@dataclass(frozen=True)
class Span:
    """Along one axis of a feature map, the first and last input pixel each of its pixels can see.

    Attributes:
        first: ``(n,)`` int; ``first > last`` for a pixel that sees nothing.
        last: ``(n,)`` int.
        jump: input pixels between two neighbouring pixels of the map (the product of the strides so far).
    """

    first: np.ndarray
    last: np.ndarray
    jump: float = 1.0

    @classmethod
    def of_image(cls, n: int) -> Span:
        """The input itself: pixel ``i`` sees pixel ``i``."""
        return cls(np.arange(n), np.arange(n))

    @property
    def extent(self) -> np.ndarray:
        """``(n,)`` how many input pixels across each pixel sees."""
        return np.maximum(self.last - self.first + 1, 0)

    def gather(self, n_out: int, out_index: np.ndarray, in_index: np.ndarray, jump: float) -> Span:
        """The span of a map of ``n_out`` pixels where pixel ``out_index[k]`` reads pixel ``in_index[k]`` of this one.

        Pairs that fall outside either map (padding) are dropped; ``jump`` is the new map's.
        """
        keep = (out_index >= 0) & (out_index < n_out) & (in_index >= 0) & (in_index < len(self.first))
        first = np.full(n_out, np.iinfo(np.int64).max)
        last = np.full(n_out, -1)
        np.minimum.at(first, out_index[keep], self.first[in_index[keep]])
        np.maximum.at(last, out_index[keep], self.last[in_index[keep]])
        return Span(first, last, jump)

    def window(self, n_out: int, kernel_size: int, stride: int, padding: int, dilation: int) -> Span:
        """After a convolution or pooling: output pixel ``o`` reads ``o·stride − padding + a·dilation``."""
        out_index, tap = np.meshgrid(np.arange(n_out), np.arange(kernel_size), indexing="ij")
        in_index = out_index * stride - padding + tap * dilation
        return self.gather(n_out, out_index.ravel(), in_index.ravel(), self.jump * stride)

    def scatter(self, n_out: int, kernel_size: int, stride: int, padding: int, dilation: int) -> Span:
        """After a transposed convolution: input pixel ``i`` adds to ``i·stride − padding + a·dilation``."""
        in_index, tap = np.meshgrid(np.arange(len(self.first)), np.arange(kernel_size), indexing="ij")
        out_index = in_index * stride - padding + tap * dilation
        return self.gather(n_out, out_index.ravel(), in_index.ravel(), self.jump / stride)

    def union(self, other: Span) -> Span:
        """What either map sees (a sum or concatenation of two maps of the same size; size 1 broadcasts)."""
        n = max(len(self.first), len(other.first))
        a, b = (np.broadcast_to(x, n) for x in (self.first, other.first))
        c, d = (np.broadcast_to(x, n) for x in (self.last, other.last))
        return Span(np.minimum(a, b), np.maximum(c, d), max(self.jump, other.jump))


@dataclass(frozen=True)
class LayerField:
    """One row of :func:`receptive_field`: a layer and the receptive field of its output.

    Attributes:
        name: the module's qualified name, e.g. ``"encoder.1.1.0"``.
        type: the module's class name, e.g. ``"Conv2d"``.
        kernel_size, stride, dilation: the layer's settings (1 where they do not apply).
        size: the most input pixels across that one pixel of the output sees (``math.inf``: the whole image).
        jump: input pixels between neighbouring output pixels.
        microns_per_pixel: the input's pixel size in µm (1.0 ≈ 10×, 0.5 ≈ 20×, 0.25 ≈ 40×).
    """

    name: str
    type: str
    kernel_size: int
    stride: int
    dilation: int
    size: float
    jump: float
    microns_per_pixel: float = COURSE_MICRONS_PER_PIXEL

    @property
    def size_um(self) -> float:
        """The receptive field in µm of tissue: ``size · microns_per_pixel`` (``math.inf``: the whole image)."""
        return self.size * self.microns_per_pixel

    @property
    def jump_um(self) -> float:
        """µm of tissue between neighbouring output pixels."""
        return self.jump * self.microns_per_pixel


def _pair(value, default: int) -> tuple[int, int]:
    """A layer argument as ``(rows, cols)``: ``3 -> (3, 3)``; ``None`` or ``()`` -> ``(default, default)``."""
    if value is None or (isinstance(value, (tuple, list)) and len(value) == 0):
        return default, default
    if isinstance(value, (tuple, list)):
        return (int(value[0]), int(value[-1]))
    return int(value), int(value)


def _argument(args: tuple, kwargs: dict, position: int, name: str, default=None):
    """An argument of a traced call, given by position or by name."""
    return args[position] if len(args) > position else kwargs.get(name, default)


def _conv_padding(padding, kernel_size: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int]:
    """Padding before the first pixel, per axis (``"same"`` puts the smaller half first, as torch does)."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        return tuple(d * (k - 1) // 2 for k, d in zip(kernel_size, dilation))
    return _pair(padding, 0)


def _resample(n_in: int, n_out: int, mode: str, align_corners: bool | None) -> tuple[np.ndarray, np.ndarray]:
    """``(out_index, in_index)`` pairs of ``F.interpolate``: which input pixels each output pixel mixes."""
    out = np.arange(n_out)
    if mode == "nearest":
        return out, np.minimum(np.floor(out * n_in / n_out).astype(int), n_in - 1)
    if align_corners:
        source = out * (n_in - 1) / max(n_out - 1, 1)
    else:
        source = np.maximum((out + 0.5) * n_in / n_out - 0.5, 0.0)
    low = np.floor(source).astype(int)
    taps = (-1, 0, 1, 2) if mode == "bicubic" else (0, 1)
    pairs = [(out, np.clip(low + t, 0, n_in - 1)) for t in taps]
    return np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])


class _SpanTracer(TorchFunctionMode):
    """Follows a forward pass operation by operation, giving every 4-d tensor the spans of its rows and columns."""

    def __init__(self, images: torch.Tensor) -> None:
        super().__init__()
        height, width = images.shape[-2:]
        self.spans: dict[int, tuple[Span, Span]] = {id(images): (Span.of_image(height), Span.of_image(width))}
        self.alive: list[torch.Tensor] = [images]  # keep tensors alive so that their ids stay unique

    def spans_of(self, tensor: torch.Tensor) -> tuple[Span, Span] | None:
        """The (rows, cols) spans of a tensor computed from the image, ``None`` for any other (e.g. weights)."""
        return self.spans.get(id(tensor))

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        result = out[0] if isinstance(out, tuple) and out and isinstance(out[0], torch.Tensor) else out
        tensors = [t for t in itertools.chain(args, kwargs.values()) if isinstance(t, torch.Tensor)]
        tensors += [t for a in args if isinstance(a, (list, tuple)) for t in a if isinstance(t, torch.Tensor)]  # cat
        known = [self.spans_of(t) for t in tensors if self.spans_of(t) is not None]
        if not known or not isinstance(result, torch.Tensor) or result.dim() != 4:
            return out
        name = getattr(func, "__name__", repr(func))
        rows, cols = self._rule(name, args, kwargs, known, result)
        self.spans[id(result)] = (rows, cols)
        self.alive.append(result)
        return out

    @staticmethod
    def _rule(name: str, args: tuple, kwargs: dict, known: list, result: torch.Tensor) -> tuple[Span, Span]:
        spans, size_out = known[0], result.shape[-2:]
        if name == "conv2d":  # conv2d(input, weight, bias, stride, padding, dilation, groups)
            kernel_size = tuple(_argument(args, kwargs, 1, "weight").shape[-2:])
            stride = _pair(_argument(args, kwargs, 3, "stride", 1), 1)
            dilation = _pair(_argument(args, kwargs, 5, "dilation", 1), 1)
            padding = _conv_padding(_argument(args, kwargs, 4, "padding", 0), kernel_size, dilation)
            return tuple(s.window(*a) for s, a in zip(spans, zip(size_out, kernel_size, stride, padding, dilation)))
        if name in ("max_pool2d", "max_pool2d_with_indices", "avg_pool2d"):  # (input, kernel_size, stride, padding, …)
            kernel_size = _pair(_argument(args, kwargs, 1, "kernel_size"), 1)
            stride = _pair(_argument(args, kwargs, 2, "stride"), 0)
            stride = kernel_size if stride == (0, 0) else stride  # stride defaults to the window
            padding = _pair(_argument(args, kwargs, 3, "padding", 0), 0)
            dilation = _pair(_argument(args, kwargs, 4, "dilation", 1), 1) if name != "avg_pool2d" else (1, 1)
            return tuple(s.window(*a) for s, a in zip(spans, zip(size_out, kernel_size, stride, padding, dilation)))
        if name == "conv_transpose2d":  # (input, weight, bias, stride, padding, output_padding, groups, dilation)
            kernel_size = tuple(_argument(args, kwargs, 1, "weight").shape[-2:])
            stride = _pair(_argument(args, kwargs, 3, "stride", 1), 1)
            padding = _pair(_argument(args, kwargs, 4, "padding", 0), 0)
            dilation = _pair(_argument(args, kwargs, 7, "dilation", 1), 1)
            return tuple(s.scatter(*a) for s, a in zip(spans, zip(size_out, kernel_size, stride, padding, dilation)))
        source = args[0]
        if name in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):  # bin o covers ⌊o·n/m⌋ … ⌈(o+1)·n/m⌉ − 1
            pairs = []
            for n_in, n_out in zip(source.shape[-2:], size_out):
                bins = [(o, i) for o in range(n_out) for i in range(o * n_in // n_out, -(-(o + 1) * n_in // n_out))]
                pairs.append(np.array(bins).T)
            return tuple(s.gather(n, *p, s.jump * len(s.first) / n) for s, n, p in zip(spans, size_out, pairs))
        if name == "interpolate":
            mode = _argument(args, kwargs, 3, "mode", "nearest")
            align_corners = _argument(args, kwargs, 4, "align_corners", None)
            return tuple(
                s.gather(n_out, *_resample(n_in, n_out, mode, align_corners), s.jump * n_in / n_out)
                for s, n_in, n_out in zip(spans, source.shape[-2:], size_out)
            )
        if name == "pad":
            left, _right, top, _bottom = (list(_argument(args, kwargs, 1, "pad")) + [0, 0, 0, 0])[:4]
            return tuple(
                s.gather(n, np.arange(len(s.first)) + before, np.arange(len(s.first)), s.jump)
                for s, n, before in zip(spans, size_out, (top, left))
            )
        # running sums and picked rows or columns: DeepLab's window mean (a difference of two running sums, which
        # this follows as seeing from the map's edge to the window's end: an upper bound)
        if name in ("cumsum", "index_select"):
            dim = _argument(args, kwargs, 1, "dim") % source.dim()
            if dim in (2, 3):
                axis = dim - 2
                if name == "cumsum":  # position i sums positions 0 … i
                    span = spans[axis]
                    span = Span(np.minimum.accumulate(span.first), np.maximum.accumulate(span.last), span.jump)
                else:  # output position k is input position index[k]
                    index = _argument(args, kwargs, 2, "index").cpu().numpy()
                    span = spans[axis].gather(len(index), np.arange(len(index)), index, spans[axis].jump)
                return (span, spans[1]) if axis == 0 else (spans[0], span)
        if name == "__getitem__":  # crops like x[..., :h, :w]
            key = args[1] if isinstance(args[1], tuple) else (args[1],)
            if Ellipsis in key:
                at = key.index(Ellipsis)
                key = key[:at] + (slice(None),) * (source.dim() - len(key) + 1) + key[at + 1 :]
            key = key + (slice(None),) * (source.dim() - len(key))
            if all(isinstance(k, slice) for k in key[-2:]):
                return tuple(Span(s.first[k], s.last[k], s.jump) for s, k in zip(spans, key[-2:]))
        # element-wise operations, sums, concatenations, normalisations: what any input sees
        if any(len(s.first) not in (1, n) for pair in known for s, n in zip(pair, size_out)):
            raise ValueError(f"receptive_field cannot follow {name!r}: it changes the size of the feature map")
        rows, cols = known[0]
        for other_rows, other_cols in known[1:]:
            rows, cols = rows.union(other_rows), cols.union(other_cols)
        return tuple(
            Span(np.broadcast_to(s.first, n).copy(), np.broadcast_to(s.last, n).copy(), s.jump)
            for s, n in zip((rows, cols), size_out)
        )


def _trace(
    model: nn.Module, size: tuple[int, int], layers: list[str]
) -> tuple[dict[str, tuple[Span, Span]], tuple[Span, Span]]:
    """Run ``model`` on an empty ``(0, C, H, W)`` batch; the spans of ``layers``' outputs and of the model's output.

    With no images in the batch every layer still computes its output's shape, but no arithmetic: any size is free.
    """
    modules = dict(model.named_modules())
    unknown = sorted(set(layers) - set(modules))
    if unknown:
        raise ValueError(f"{type(model).__name__} has no modules named {unknown} (see model.named_modules())")
    parameter = next(model.parameters())
    images = torch.zeros(0, input_channels(model), *size, device=parameter.device, dtype=parameter.dtype)
    found: dict[str, tuple[Span, Span]] = {}
    with _SpanTracer(images) as tracer:
        def record(output: torch.Tensor, name: str) -> None:
            spans = tracer.spans_of(output)
            if spans is not None:
                found[name] = spans

        hooks = [modules[n].register_forward_hook(lambda m, i, o, n=n: record(o, n)) for n in layers]
        try:
            with evaluating(model), torch.no_grad():
                output = model(images)
        finally:
            for hook in hooks:
                hook.remove()
        return found, tracer.spans_of(output)


def receptive_field(
    model: nn.Module, *, layers: list[str] | None = None, microns_per_pixel: float = COURSE_MICRONS_PER_PIXEL
) -> list[LayerField]:
    """The receptive field after each convolution, pooling and upsampling layer, in forward order.

    Args:
        model: any network of 2-D layers, e.g. ``create_model("deeplabv3")``; it is not changed.
        layers: qualified names of the modules to report instead (any module, e.g. a whole encoder stage
            ``"encoder.2"``; see ``model.describe()``); default: every convolution, pooling and upsampling layer.
        microns_per_pixel: the pixel size of the images the model sees, for the fields in µm (``size_um``);
            default 1.0, the course's tissue (about 10×). 0.5 for 20×, 0.25 for 40×
            (:func:`segtutor.data.magnification_to_mpp`).

    Returns:
        One :class:`LayerField` per layer that the forward pass ran, in the order they ran. Sizes are measured
        along rows on a virtual 4096×4096 image; a field that covers all of it is reported as ``math.inf``.

    Raises:
        ValueError: on a layer name the model does not have.

    Example:
        >>> fields = receptive_field(create_model("unet"))
        >>> [(f.name, f.size, f.jump) for f in fields[:3]]
        [('encoder.0.0', 3, 1), ('encoder.0.3', 5, 1), ('encoder.1.0', 6, 2)]
        >>> receptive_field(create_model("unet"), microns_per_pixel=0.25)[-1].size_um  # at 40×: a quarter of the µm
        51.0
    """
    if not microns_per_pixel > 0:
        raise ValueError(f"microns_per_pixel must be a positive pixel size in µm (1.0 for 10×), got {microns_per_pixel}")
    modules = dict(model.named_modules())
    names = layers if layers is not None else [n for n, m in modules.items() if isinstance(m, LAYER_TYPES)]
    found, _ = _trace(model, (VIRTUAL_SIZE, VIRTUAL_SIZE), names)
    fields = []
    for name, (rows, _cols) in found.items():  # in the order the forward pass ran them
        widest = int(rows.extent.max())  # central pixels see all of their field; border pixels lose some to padding
        kernel_size, stride, dilation = _settings(modules[name])
        fields.append(
            LayerField(
                name, type(modules[name]).__name__, kernel_size, stride, dilation,
                size=GLOBAL if widest >= VIRTUAL_SIZE else widest,
                jump=_whole(rows.jump),
                microns_per_pixel=float(microns_per_pixel),
            )
        )  # fmt: skip
    return fields


def receptive_spans(
    model: nn.Module, input_size: int | tuple[int, int], *, layers: list[str] | None = None
) -> dict[str, tuple[Span, Span]]:
    """The (rows, cols) :class:`Span` of every pixel of ``layers``' outputs and of the output, for one image size.

    One forward pass of an empty batch (shapes only, no arithmetic); look up any pixel's box with :func:`box_at`.

    Returns:
        ``{layer name: (rows, cols)}``, the model's output under ``"output"``.
    """
    height, width = (input_size, input_size) if isinstance(input_size, int) else input_size
    found, output = _trace(model, (height, width), list(layers or []))
    return {**found, "output": output}


def box_at(spans: tuple[Span, Span], input_size: tuple[int, int], pixel: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)``, inclusive: the input box seen by the feature pixel under image ``pixel``.

    For a feature map of ``h × w`` that pixel is ``(row · h / H, col · w / W)`` rounded down.
    """
    (rows, cols), (height, width), (row, col) = spans, input_size, pixel
    r, c = row * len(rows.first) // height, col * len(cols.first) // width
    return int(rows.first[r]), int(rows.last[r]), int(cols.first[c]), int(cols.last[c])


def receptive_boxes(
    model: nn.Module, input_size: int | tuple[int, int], pixel: tuple[int, int], *, layers: list[str] | None = None
) -> dict[str, tuple[int, int, int, int]]:
    """Boxes of the input pixels seen by output pixel ``pixel = (row, col)`` and by the feature pixels under it.

    Args:
        model: the network.
        input_size: ``H`` or ``(H, W)`` of the image.
        pixel: ``(row, col)`` in the output (= input) image.
        layers: module names (e.g. stages from ``model.describe()``).

    Returns:
        ``{name: (top, bottom, left, right)}`` inclusive input pixel coordinates, clipped to the image; the
        model's own output is under ``"output"``.

    Raises:
        ValueError: on a pixel outside the image or an unknown layer name.
    """
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if not (0 <= pixel[0] < size[0] and 0 <= pixel[1] < size[1]):
        raise ValueError(f"pixel {pixel} lies outside the {size[0]}×{size[1]} image")
    spans = receptive_spans(model, size, layers=layers)
    return {name: box_at(pair, size, pixel) for name, pair in spans.items()}


def _whole(value: float) -> float:
    """``8.0 -> 8`` (reads better in a table); fractions and ``inf`` stay as they are."""
    return int(value) if math.isfinite(value) and float(value).is_integer() else value


def _settings(module: nn.Module) -> tuple[int, int, int]:
    """``(kernel_size, stride, dilation)`` of a layer, along rows; 1 where the module has no such setting."""
    kernel_size = _pair(getattr(module, "kernel_size", 1), 1)[0]
    stride = _pair(getattr(module, "stride", None), kernel_size)[0]
    return kernel_size, stride, _pair(getattr(module, "dilation", 1), 1)[0]
