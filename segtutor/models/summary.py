"""Looking inside a model: parameter count, FLOPs, a per-layer table of output shapes, and named stages.

Example:
    >>> model = create_model("unet")
    >>> count_parameters(model), count_flops(model, (3, 128, 128))
    >>> layer_table(model, (3, 128, 128), max_depth=2)     # shows as a table in a notebook
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class Stage:
    """One named stage of an architecture, as an architecture diagram draws it (see each model's ``describe()``)."""

    name: str  # label on the diagram, e.g. "enc2", "pool4", "aspp_rate12"
    module: str  # qualified name in model.named_modules() to hook its output; "" for a plain sum or resize
    kind: str  # "encoder", "bottleneck", "decoder", "score", "upsample", "fuse", "aspp", "classifier"
    out_channels: int  # channels of this stage's output
    stride: int  # output stride: input pixels per feature pixel along each axis
    inputs: tuple[str, ...] = ()  # names of the stages that feed this one, skip connections included
    note: str = ""  # one line for a tooltip


@dataclass(frozen=True)
class LayerInfo:
    """One row of :func:`layer_table`: a module and the shape of what it returned."""

    name: str  # qualified name, e.g. "encoder.1.1.0"
    type: str  # class name, e.g. "Conv2d"
    output_shape: tuple[int, ...]  # (N, C, H, W) of the module's output
    num_params: int  # parameters in this module and everything inside it
    depth: int  # nesting depth: 1 for the model's direct children


class LayerTable(list):
    """A ``list[LayerInfo]`` that prints as a table (``repr`` in a terminal, HTML in a notebook)."""

    def __repr__(self) -> str:
        return format_table(self)

    def _repr_html_(self) -> str:
        head = "<tr><th>layer</th><th>type</th><th>output shape</th><th>parameters</th></tr>"
        rows = "".join(
            f"<tr><td style='text-align:left;padding-left:{row.depth - 1}em'>{html.escape(row.name)}</td>"
            f"<td style='text-align:left'>{row.type}</td><td>{tuple(row.output_shape)}</td>"
            f"<td>{row.num_params:,}</td></tr>"
            for row in self
        )
        return f"<table>{head}{rows}</table>"


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of numbers the model learns: ``sum(p.numel() for p in model.parameters())``.

    Args:
        model: any module.
        trainable_only: count only parameters with ``requires_grad`` (FCN-8s keeps its x8 upsampling fixed).
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _example_input(model: nn.Module, input_size: tuple[int, int, int]) -> torch.Tensor:
    """One random image ``(1, C, H, W)`` on the model's device and in its dtype."""
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None and parameter.is_floating_point() else torch.float32
    return torch.rand(1, *input_size, device=device, dtype=dtype)


def _run_in_eval(model: nn.Module, images: torch.Tensor) -> None:
    """One forward pass without gradients in eval mode (batch norm then accepts a batch of one), mode restored."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(images)
    finally:
        model.train(was_training)


def count_flops(model: nn.Module, input_size: tuple[int, int, int] = (3, 128, 128)) -> int:
    """Floating-point operations of one forward pass on one image of ``input_size = (C, H, W)``.

    Counted by ``torch.utils.flop_counter.FlopCounterMode``: a multiply-add counts as 2 FLOPs, and only
    convolutions and matrix products are counted (batch norm, ReLU, pooling and additions are comparatively
    free). A training step costs about 3x this: the backward pass computes two gradients per convolution.
    """
    counter = FlopCounterMode(display=False)
    with counter:
        _run_in_eval(model, _example_input(model, input_size))
    return counter.get_total_flops()


def forward_flops(model: nn.Module, input_size: tuple[int, int, int] = (3, 128, 128)) -> int:
    """FLOPs of one forward pass on one image, as :func:`count_flops` counts them, but fast (hooks).

    Sums :func:`layer_flops` over every convolution and linear layer in one forward pass in eval mode.
    """
    flops: list[int] = []
    handles = register_flop_hooks(model, flops)
    try:
        _run_in_eval(model, _example_input(model, input_size))
    finally:
        for handle in handles:
            handle.remove()
    return sum(flops)


def register_flop_hooks(model: nn.Module, flops: list[int]) -> list:
    """Forward hooks that append each convolution's and linear layer's FLOPs to ``flops``; remove them after."""
    counted = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
    hook = lambda module, inputs, output: flops.append(layer_flops(module, inputs[0], output))  # noqa: E731
    return [module.register_forward_hook(hook) for module in model.modules() if isinstance(module, counted)]


def layer_flops(module: nn.Module, inputs: torch.Tensor, output: torch.Tensor) -> int:
    """FLOPs of one convolution or linear layer's forward pass, counted as :func:`count_flops` does.

    A multiply-add is 2 FLOPs, the bias is not counted: a convolution costs
    ``2 × N × (output pixels) × (weights per output channel) × (output channels)``; a transposed convolution
    slides over the *input* pixels instead. ``count_flops`` gets the same number from ``FlopCounterMode``, whose
    first use imports ``torch._dynamo``: seconds that a dashboard in a fresh kernel should not wait.
    """
    if isinstance(module, nn.Linear):
        return 2 * inputs.numel() * module.out_features
    pixels = inputs.shape[2:] if isinstance(module, nn.ConvTranspose2d) else output.shape[2:]
    return 2 * inputs.shape[0] * math.prod(pixels) * module.weight.numel()


def layer_table(
    model: nn.Module, input_size: tuple[int, int, int] = (3, 128, 128), max_depth: int | None = None
) -> LayerTable:
    """Every module the forward pass runs, in order, with the shape of its output and its parameter count.

    Args:
        model: the model to look inside.
        input_size: ``(C, H, W)`` of the one random image pushed through it.
        max_depth: keep modules nested at most this deep (1: the model's direct children); None keeps all.

    Returns:
        A ``list[LayerInfo]`` that prints as a table.
    """
    rows = LayerTable()
    open_rows: list[int] = []  # rows of the modules still running, innermost last

    def reserve(module: nn.Module, inputs: tuple) -> None:
        # a block's row goes before the rows of the layers inside it, so its place is taken when it starts
        rows.append(None)
        open_rows.append(len(rows) - 1)

    def fill(name: str, depth: int):
        def hook(module: nn.Module, inputs: tuple, output) -> None:
            tensor = output[0] if isinstance(output, (tuple, list)) else output
            num_params = sum(p.numel() for p in module.parameters())
            rows[open_rows.pop()] = LayerInfo(name, type(module).__name__, tuple(tensor.shape), num_params, depth)

        return hook

    handles = []
    for name, module in model.named_modules():
        depth = name.count(".") + 1
        if name and (max_depth is None or depth <= max_depth):
            handles.append(module.register_forward_pre_hook(reserve))
            handles.append(module.register_forward_hook(fill(name, depth)))
    try:
        _run_in_eval(model, _example_input(model, input_size))
    finally:
        for handle in handles:
            handle.remove()
    return rows


def format_table(rows: list[LayerInfo]) -> str:
    """Rows of :func:`layer_table` as aligned text, nested layers indented."""
    lines = [(("  " * (row.depth - 1)) + row.name, row.type, str(tuple(row.output_shape)), f"{row.num_params:,}")
             for row in rows]  # fmt: skip
    header = ("layer", "type", "output shape", "parameters")
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(4)]
    text = []
    for cells in [header, *lines]:
        aligned = [cell.ljust(width) for cell, width in zip(cells[:3], widths)] + [cells[3].rjust(widths[3])]
        text.append("  ".join(aligned))
    text.insert(1, "-" * len(text[0]))
    return "\n".join(text)
