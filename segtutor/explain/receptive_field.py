"""Receptive fields: which input pixels can change one output pixel of a network?

A 3×3 convolution sees 3 pixels across; a second one on top sees 5; after a stride-2 pooling every further
layer's step counts double. Layer by layer (Araujo et al., "Computing Receptive Fields of Convolutional Neural
Networks", Distill 2019, https://distill.pub/2019/computing-receptive-fields/)::

    size_out = size_in + (dilation·(kernel_size − 1)) · jump_in      # how many input pixels across
    jump_out = jump_in · stride                                      # input pixels between neighbouring outputs

Two tools:

* :func:`receptive_field` applies these rules to every operation of a real forward pass (branches, skips and
  concatenations included: a merge keeps the largest field), and reports them per layer.
* :func:`receptive_region` *measures* the region of one output pixel with autograd, exactly, on a copy of the
  model whose weights are all positive (so nothing cancels) and whose max pooling is average pooling (so the
  gradient reaches the whole window, not just the winner). It should agree with the rules; the tests check it.

:func:`input_gradient` is the *effective* receptive field (Luo et al. 2016, https://arxiv.org/abs/1701.04128): how
strongly each pixel actually influences the output in the real model; usually a blob much smaller than the
theoretical region.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

GLOBAL = math.inf  # the size of a field that covers the whole image (global average pooling)
LAYER_TYPES = (nn.Conv2d, nn.ConvTranspose2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Upsample)


@dataclass(frozen=True)
class Field:
    """The receptive field of a feature map, along one axis (the course's models are the same along both).

    Attributes:
        size: input pixels across that can influence one pixel of this map (``math.inf``: the whole image).
        jump: input pixels between two neighbouring pixels of this map (the product of strides so far).
    """

    size: float
    jump: float

    def grow(self, kernel_size: int, stride: float = 1, dilation: int = 1) -> Field:
        """The field after a convolution or pooling with this kernel, stride and dilation."""
        return Field(self.size + dilation * (kernel_size - 1) * self.jump, self.jump * stride)


@dataclass(frozen=True)
class LayerField:
    """One row of :func:`receptive_field`: a layer and the receptive field of its output.

    Attributes:
        name: the module's qualified name, e.g. ``"encoder.1.1.0"``.
        type: the module's class name, e.g. ``"Conv2d"``.
        kernel_size, stride, dilation: the layer's settings (1 where they do not apply).
        size: receptive field size in input pixels (``math.inf``: the whole image).
        jump: input pixels between neighbouring output pixels.
    """

    name: str
    type: str
    kernel_size: int
    stride: int
    dilation: int
    size: float
    jump: float


def _first(value: int | tuple | list | None, default: int) -> int:
    """Height component of an int-or-pair argument (the course's kernels are square)."""
    if value is None or (isinstance(value, (tuple, list)) and len(value) == 0):
        return default
    return int(value[0]) if isinstance(value, (tuple, list)) else int(value)


def _argument(args: tuple, kwargs: dict, position: int, name: str, default=None):
    return args[position] if len(args) > position else kwargs.get(name, default)


class _FieldTracer(TorchFunctionMode):
    """Follows a forward pass operation by operation, giving every 4-d tensor the field of its pixels."""

    def __init__(self, images: torch.Tensor) -> None:
        super().__init__()
        self.fields: dict[int, Field] = {id(images): Field(1, 1)}
        self.alive: list[torch.Tensor] = [images]  # keep tensors alive so their ids stay unique

    def field_of(self, tensor: torch.Tensor) -> Field | None:
        return self.fields.get(id(tensor))

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        result = out[0] if isinstance(out, tuple) and out and isinstance(out[0], torch.Tensor) else out
        tensors = [t for t in (*args, *kwargs.values()) if isinstance(t, torch.Tensor)]
        tensors += [t for a in args if isinstance(a, (list, tuple)) for t in a if isinstance(t, torch.Tensor)]  # cat
        fields = [f for f in map(self.field_of, tensors) if f is not None]
        if not fields or not isinstance(result, torch.Tensor) or result.dim() != 4:
            return out
        field = self._rule(getattr(func, "__name__", ""), args, kwargs, fields, result)
        self.fields[id(result)] = field
        self.alive.append(result)
        return out

    @staticmethod
    def _rule(name: str, args: tuple, kwargs: dict, fields: list[Field], result: torch.Tensor) -> Field:
        field = fields[0]
        if name == "conv2d":
            weight = _argument(args, kwargs, 1, "weight")
            stride, dilation = _argument(args, kwargs, 3, "stride", 1), _argument(args, kwargs, 5, "dilation", 1)
            return field.grow(weight.shape[-2], _first(stride, 1), _first(dilation, 1))
        if name in ("max_pool2d", "avg_pool2d", "max_pool2d_with_indices"):
            kernel_size = _first(_argument(args, kwargs, 1, "kernel_size"), 1)
            stride = _first(_argument(args, kwargs, 2, "stride"), kernel_size)  # stride defaults to the kernel size
            dilation = _first(_argument(args, kwargs, 4, "dilation", 1), 1) if name != "avg_pool2d" else 1
            return field.grow(kernel_size, stride, dilation)
        if name == "conv_transpose2d":
            # one output pixel gathers from ceil(span / stride) neighbouring input pixels
            weight = _argument(args, kwargs, 1, "weight")
            stride, dilation = _first(_argument(args, kwargs, 3, "stride", 1), 1), _first(_argument(args, kwargs, 7, "dilation", 1), 1)
            taps = math.ceil((dilation * (weight.shape[-2] - 1) + 1) / stride)
            return Field(field.size + (taps - 1) * field.jump, field.jump / stride)
        source = args[0] if args and isinstance(args[0], torch.Tensor) else None
        if name in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
            if result.shape[-2] == 1:
                return Field(GLOBAL, field.jump * source.shape[-2])
            kernel_size = math.ceil(source.shape[-2] / result.shape[-2])
            return field.grow(kernel_size, source.shape[-2] / result.shape[-2])
        if name == "interpolate":
            scale = source.shape[-2] / result.shape[-2]  # < 1 when upsampling
            mode = _argument(args, kwargs, 3, "mode", "nearest")
            taps = 1 if mode == "nearest" else max(2, math.ceil(2 * scale))  # linear: 2 neighbours
            return Field(field.size + (taps - 1) * field.jump, field.jump * scale)
        # element-wise operations, concatenation, sums, crops: the union of what the inputs see
        return Field(max(f.size for f in fields), max(f.jump for f in fields))


def receptive_field(
    model: nn.Module, input_size: int | tuple[int, int] = 64, *, layers: list[str] | None = None
) -> list[LayerField]:
    """The receptive field after each convolution, pooling and upsampling layer, in forward order.

    Args:
        model: any network of 2-D layers, e.g. ``create_model("deeplabv3")``; it is not changed.
        input_size: ``H`` or ``(H, W)`` of the image sent through (any size the model accepts; the fields do
            not depend on it, except that global pooling always covers the image).
        layers: qualified names of the modules to report instead (any module, e.g. a whole encoder stage
            ``"encoder.2"``; see ``model.describe()``); default: every convolution, pooling and upsampling layer.

    Returns:
        One :class:`LayerField` per layer; the last row that is not a side branch is the network's receptive
        field. Print ``[(f.name, f.size, f.jump) for f in fields]`` for a table.

    Example:
        >>> fields = receptive_field(create_model("unet"), 64)
        >>> fields[0].size, fields[1].size  # two 3x3 convolutions
        (3, 5)
    """
    height, width = (input_size, input_size) if isinstance(input_size, int) else input_size
    in_channels = _in_channels(model)
    images = torch.zeros(1, in_channels, height, width, device=_device(model))
    rows: list[LayerField] = []
    with _FieldTracer(images) as tracer:
        def record(module: nn.Module, _inputs, output, name: str) -> None:
            field = tracer.field_of(output)
            if field is not None:
                kernel_size, stride, dilation = _settings(module)
                size, jump = (_whole(value) for value in (field.size, field.jump))
                rows.append(LayerField(name, type(module).__name__, kernel_size, stride, dilation, size, jump))

        modules = dict(model.named_modules())
        unknown = sorted(set(layers or []) - set(modules))
        if unknown:
            raise ValueError(f"{type(model).__name__} has no modules named {unknown} (see model.named_modules())")
        chosen = layers if layers is not None else [n for n, m in modules.items() if isinstance(m, LAYER_TYPES)]
        hooks = [modules[name].register_forward_hook(lambda m, i, o, name=name: record(m, i, o, name)) for name in chosen]
        training = model.training
        try:
            model.eval()
            with torch.no_grad():
                model(images)
        finally:
            model.train(training)
            for hook in hooks:
                hook.remove()
    return rows


def _whole(value: float) -> float:
    """``8.0 -> 8`` (reads better in a table); fractions and ``inf`` stay as they are."""
    return int(value) if math.isfinite(value) and float(value).is_integer() else value


def _settings(module: nn.Module) -> tuple[int, int, int]:
    kernel_size = _first(getattr(module, "kernel_size", 1), 1)
    stride = _first(getattr(module, "stride", None), kernel_size)
    return kernel_size, stride, _first(getattr(module, "dilation", 1), 1)


def _in_channels(model: nn.Module) -> int:
    if hasattr(model, "in_channels"):
        return int(model.in_channels)
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if first is None:
        raise ValueError(f"{type(model).__name__} has no nn.Conv2d: cannot tell how many input channels it takes")
    return first.in_channels


def _device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def structural_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in which every possible influence is a positive one.

    Convolution weights become ``1 / fan_in`` (each output is an average), biases 0, batch norm the identity,
    max pooling average pooling (same window, stride, padding). The copy is in eval mode, float64.
    """
    clone = copy.deepcopy(model).double().eval()
    for parent in clone.modules():
        for child_name, child in parent.named_children():
            if isinstance(child, nn.MaxPool2d):
                setattr(parent, child_name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding, child.ceil_mode))
    with torch.no_grad():
        for module in clone.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                module.weight.fill_(1.0 / module.weight[0].numel())
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.reset_parameters()  # running mean 0, variance 1, weight 1, bias 0: the identity (up to eps)
    return clone


def _output_pixel_gradient(model: nn.Module, images: torch.Tensor, pixel: tuple[int, int]) -> torch.Tensor:
    """``d logits[0, :, row, col].sum() / d images[0]``: ``(C, H, W)`` (the model's own gradients are untouched)."""
    images = images.detach().clone().requires_grad_(True)
    logits = model(images)  # (1, K, H, W)
    row, col = pixel
    (gradient,) = torch.autograd.grad(logits[0, :, row, col].sum(), images)
    return gradient[0]  # (C, H, W)


def receptive_region(model: nn.Module, input_size: int | tuple[int, int], pixel: tuple[int, int]) -> np.ndarray:
    """Exactly which input pixels can influence output pixel ``pixel = (row, col)``: a bool ``(H, W)`` mask.

    Measured with autograd on :func:`structural_copy` (all influences positive, so no gradient cancels).

    Raises:
        ValueError: if ``pixel`` lies outside the image.
    """
    height, width = (input_size, input_size) if isinstance(input_size, int) else input_size
    row, col = pixel
    if not (0 <= row < height and 0 <= col < width):
        raise ValueError(f"pixel {pixel} lies outside the {height}×{width} image")
    clone = structural_copy(model)
    images = torch.ones(1, _in_channels(model), height, width, dtype=torch.float64, device=_device(clone))
    gradient = _output_pixel_gradient(clone, images, pixel)  # (C, H, W), every entry >= 0
    return (gradient.sum(dim=0) > 0).cpu().numpy()


def input_gradient(model: nn.Module, images: torch.Tensor, pixel: tuple[int, int]) -> np.ndarray:
    """The effective receptive field: ``|d logits[0, :, row, col].sum() / d images|``, summed over channels: ``(H, W)``.

    Args:
        model: the real model (trained or not); evaluated in eval mode, left as it was.
        images: ``(1, C, H, W)``.
        pixel: ``(row, col)`` of the output pixel.
    """
    training = model.training
    model.eval()
    try:
        images = images.to(_device(model), dtype=next(model.parameters()).dtype)
        gradient = _output_pixel_gradient(model, images, pixel)  # (C, H, W)
    finally:
        model.train(training)
    return gradient.abs().sum(dim=0).cpu().numpy()
