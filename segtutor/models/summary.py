"""Looking inside a model: parameters, FLOPs, every layer's output shape, the named stages, and feature maps.

Example:
    >>> model = create_model("unet")
    >>> count_parameters(model), count_flops(model, (3, 128, 128))
    >>> layer_table(model, (3, 128, 128), max_depth=2)     # shows as a table in a notebook
    >>> describe_architecture(model).stages[1]            # enc0: its output shape, stride and parameters
"""

from __future__ import annotations

import contextlib
import html
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from segtutor.models.contract import Stage

PAPER_SIZED_PARAMETERS = 5_000_000  # above this, one training step takes seconds or more on a laptop CPU


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

    def compact_html(self, max_depth: int = 3) -> str:
        """A smaller table of the rows nested at most ``max_depth`` deep, for a panel in a widget."""
        head = "<tr><th>layer</th><th>type</th><th>output shape (N, C, H, W)</th><th>parameters</th></tr>"
        rows = "".join(
            f"<tr><td style='text-align:left;padding-left:{0.3 + 1.2 * (row.depth - 1):.1f}em'>"
            f"{html.escape(row.name)}</td><td style='text-align:left'>{row.type}</td>"
            f"<td style='text-align:left'>{tuple(row.output_shape)}</td><td style='text-align:right'>{row.num_params:,}</td></tr>"
            for row in self
            if row.depth <= max_depth
        )
        return f"<table style='font-size:12px;border-collapse:collapse'>{head}{rows}</table>"


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of numbers the model learns: ``sum(p.numel() for p in model.parameters())``.

    Args:
        model: any module.
        trainable_only: count only parameters with ``requires_grad`` (FCN-8s keeps its x8 upsampling fixed).
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def format_count(value: float) -> str:
    """``1234567`` → ``"1.23 M"``; ``2.5e9`` → ``"2.5 G"``: a count a learner can read at a glance."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.3g}"


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode inside the ``with`` block (batch norm uses its running statistics, dropout is off),
    and back in the mode it had afterwards.

    Example:
        >>> with evaluating(model), torch.no_grad():
        ...     logits = model(images)
    """
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def input_channels(model: nn.Module) -> int:
    """The channels a model's input must have: ``model.in_channels`` (every segtutor model has it), else those of
    its first ``Conv2d``."""
    if hasattr(model, "in_channels"):
        return int(model.in_channels)
    return first_convolution(model)[1].in_channels


def first_convolution(model: nn.Module) -> tuple[str, nn.Conv2d]:
    """Name and module of the first ``Conv2d`` the model defines (the one that sees the pixels)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    raise ValueError(f"{type(model).__name__} has no nn.Conv2d layer")


def _example_input(model: nn.Module, input_size: tuple[int, int, int]) -> torch.Tensor:
    """One random image ``(1, C, H, W)`` on the model's device and in its dtype."""
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None and parameter.is_floating_point() else torch.float32
    return torch.rand(1, *input_size, device=device, dtype=dtype)


def _forward_once(model: nn.Module, input_size: tuple[int, int, int]) -> None:
    """One forward pass of a random image, without gradients, in eval mode (batch norm accepts a batch of one)."""
    with evaluating(model), torch.no_grad():
        model(_example_input(model, input_size))


def count_flops(model: nn.Module, input_size: tuple[int, int, int] = (3, 128, 128)) -> int:
    """Floating-point operations of one forward pass on one image of ``input_size = (C, H, W)``.

    A multiply-add counts as 2 FLOPs, and only convolutions and matrix products are counted (batch norm, ReLU,
    pooling and additions are comparatively free): :func:`layer_flops` summed over every layer, in one forward
    pass. ``torch.utils.flop_counter.FlopCounterMode`` counts the same number (the tests check it), but its first
    use imports ``torch._dynamo``: seconds a dashboard in a fresh kernel should not wait. A training step costs
    about 3x this: the backward pass computes two gradients per convolution.
    """
    flops: list[int] = []
    handles = register_flop_hooks(model, flops)
    try:
        _forward_once(model, input_size)
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
    """FLOPs of one convolution or linear layer's forward pass.

    A multiply-add is 2 FLOPs, the bias is not counted: a convolution costs
    ``2 × N × (output pixels) × (weights per output channel) × (output channels)``; a transposed convolution
    slides over the *input* pixels instead.
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
        _forward_once(model, input_size)
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


# ---- the named stages ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StageShape:
    """A stage of the architecture with the shape of its output for one image."""

    stage: Stage
    shape: tuple[int, ...]  # (1, C, H, W)
    num_params: int  # parameters inside the stage's module (0 for a plain sum or resize)


@dataclass(frozen=True)
class ArchitectureSummary:
    """Everything an architecture view shows about one model."""

    name: str  # class name, e.g. "UNet"
    input_size: tuple[int, int, int]  # (C, H, W) of the image pushed through
    stages: list[StageShape]  # in forward order; the input image comes first as stage "images"
    num_params: int  # all parameters
    flops: int  # FLOPs of one forward pass on one image of input_size
    layers: LayerTable  # every module with its output shape


def describe_architecture(model: nn.Module, input_size: tuple[int, int, int] = (3, 128, 128)) -> ArchitectureSummary:
    """Push one random image of ``input_size`` through ``model`` and record every stage's output shape.

    Args:
        model: a segtutor model (it has ``describe()``).
        input_size: ``(C, H, W)`` of the image.

    Returns:
        The summary: stages with shapes, parameter count, FLOPs and the layer table (one forward pass for all).
    """
    if not hasattr(model, "describe"):
        raise TypeError(f"{type(model).__name__} has no describe(): build the model with segtutor.models.create_model")
    flops: list[int] = []
    handles = register_flop_hooks(model, flops)  # counted during layer_table's forward pass
    try:
        layers = layer_table(model, input_size)  # every module, in forward order, with its output shape
    finally:
        for handle in handles:
            handle.remove()
    shapes = {row.name: row.output_shape for row in layers}
    modules = dict(model.named_modules())
    channels, height, width = input_size
    stages = [StageShape(Stage("images", "", "input", channels, 1, (), "the input image"), (1, *input_size), 0)]
    known = {"images": (1, *input_size)}
    for stage in model.describe():
        if stage.module:
            shape = tuple(shapes[stage.module])
        elif stage.kind == "fuse":  # a sum keeps the shape of what it adds
            shape = known[stage.inputs[0]]
        else:  # a resize to the stage's stride
            shape = (1, stage.out_channels, math.ceil(height / stage.stride), math.ceil(width / stage.stride))
        known[stage.name] = shape
        num_params = count_parameters(modules[stage.module]) if stage.module else 0
        stages.append(StageShape(stage, shape, num_params))
    return ArchitectureSummary(
        name=type(model).__name__,
        input_size=tuple(input_size),
        stages=stages,
        num_params=count_parameters(model),
        flops=sum(flops),
        layers=layers,
    )


# ---- what a layer sees -----------------------------------------------------------------------------------------
@torch.no_grad()
def feature_maps(model: nn.Module, image: torch.Tensor, module_name: str) -> torch.Tensor:
    """The output of ``model``'s module ``module_name`` when ``image`` passes through (in eval mode).

    Args:
        model: the network.
        image: ``(C, H, W)`` float in [0, 1].
        module_name: a name from ``model.named_modules()``, e.g. ``"encoder.2"``.

    Returns:
        ``(channels, h, w)`` float32 on the CPU.
    """
    modules = dict(model.named_modules())
    if module_name not in modules:
        raise ValueError(f"the model has no module {module_name!r}; e.g. {', '.join(list(modules)[1:6])}, …")
    captured: list[torch.Tensor] = []
    handle = modules[module_name].register_forward_hook(lambda _m, _i, output: captured.append(output))
    try:
        with evaluating(model):
            device = next(model.parameters()).device
            model(image.unsqueeze(0).to(device))  # (1, C, H, W)
    finally:
        handle.remove()
    output = captured[0]
    output = output[0] if isinstance(output, (tuple, list)) else output
    return output[0].float().cpu()  # (channels, h, w)


def layer_choices(model: nn.Module) -> list[tuple[str, str]]:
    """``(label, module name)`` of the layers worth looking at: the model's named stages, else every Conv2d."""
    if hasattr(model, "describe"):
        return [(f"{stage.name} ({stage.kind}, stride {stage.stride})", stage.module)
                for stage in model.describe() if stage.module]  # fmt: skip
    return [(name, name) for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]
