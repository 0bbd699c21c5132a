"""Exercise checks of notebooks 05 (UNet), 06 (FCN-8s), 07 (DeepLabv3) and 11 (comparing architectures)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from segtutor.exercises.feedback import NOT_ANSWERED, Feedback, check_count, check_size, feedback
from segtutor.explain import output_size, receptive_field
from segtutor.models import count_parameters, create_model, layer_table, list_models


# ---- 05 UNet, 06 FCN-8s, 07 DeepLabv3 -----------------------------------------------------------------------


def check_conv_parameters(
    answer: Any, in_channels: int, out_channels: int, kernel_size: int, *, bias: bool = True
) -> Feedback:
    """The number of weights (and biases) of one ``Conv2d`` layer."""
    with torch.device("meta"):  # shapes only: no memory, even for the paper's 100-million-weight layers
        layer = nn.Conv2d(in_channels, out_channels, kernel_size, bias=bias)
    expected = count_parameters(layer)
    bias_text = f" + {out_channels} biases" if bias else ""
    return check_count(
        f"parameters of a {kernel_size}x{kernel_size} convolution, {in_channels} -> {out_channels} channels",
        answer,
        expected,
        unit="a number of weights",
        mistakes=[(expected - out_channels, "those are the weights alone; add one bias per output channel.")]
        if bias
        else [],
        right=f"{out_channels} kernels of {in_channels}x{kernel_size}x{kernel_size} weights{bias_text} = "
        f"{expected:,}.",
        hint="each output channel has its own kernel, which spans every input channel: "
        "out_channels·in_channels·kernel_size·kernel_size weights, plus one bias per output channel.",
    )


def check_feature_size(
    answer: Any, model: nn.Module, layer: str, input_size: tuple[int, int, int]
) -> Feedback:
    """The ``(C, H, W)`` a named layer of ``model`` outputs for one image of ``input_size = (C, H, W)``."""
    rows = {row.name: row for row in layer_table(model, input_size)}
    if layer not in rows:
        raise ValueError(f"the model has no layer {layer!r}; see layer_table(model) for the names")
    expected = tuple(rows[layer].output_shape[1:])  # drop the batch dimension
    stride = input_size[1] / expected[1]
    return check_size(
        f"output of {layer}",
        answer,
        expected,
        right=f"{layer} outputs {expected}: {expected[0]} feature maps at 1/{stride:g} of the input's size.",
        hint="give (channels, height, width); count the poolings and strided convolutions before that layer, "
        "each halves H and W.",
    )


def check_unet_concat_channels(answer: Any, model: nn.Module, level: int) -> Feedback:
    """The channels entering a UNet decoder level's convolutions, after the skip is concatenated."""
    block = model.decoder[len(model.decoder) - 1 - level]  # the decoder runs deepest level first
    expected = block.conv[0].in_channels
    return check_count(
        f"channels after the skip concatenation at level {level}",
        answer,
        expected,
        unit="a number of channels",
        right=f"{block.up.out_channels} upsampled channels + {model.channels[level]} skip channels from the "
        f"encoder = {expected}.",
        hint="the up-convolution halves the channels coming from below; torch.cat then stacks them with the "
        "encoder's feature maps of the same level.",
    )


def check_dilated_span(answer: Any, kernel_size: int, dilation: int) -> Feedback:
    """How many input pixels (along one direction) a dilated kernel spans."""
    outputs = output_size(64, kernel_size, dilation=dilation)  # a span of s pixels leaves 64 − s + 1 outputs
    expected = 64 - outputs + 1
    return check_count(
        f"span of a {kernel_size}x{kernel_size} kernel with dilation {dilation}",
        answer,
        expected,
        unit="a number of pixels",
        right=f"{kernel_size} taps, {dilation} pixels apart, span {dilation}·({kernel_size} − 1) + 1 = {expected} "
        f"pixels, with still only {kernel_size}x{kernel_size} weights.",
        hint="dilation d puts d − 1 holes between neighbouring taps; count the pixels from the first tap to the last.",
    )


def check_receptive_field(answer: Any, layers: nn.Module) -> Feedback:
    """How many input pixels across one output pixel of a stack of layers can see."""
    fields = receptive_field(layers)
    last = fields[-1]
    path = " → ".join(f"{field.size:g}" for field in fields)
    if not math.isfinite(last.size):
        raise ValueError("this stack sees the whole image (a global pooling): its receptive field is not a number")
    return check_count(
        "receptive field of a stack of layers",
        answer,
        int(last.size),
        unit="a number of pixels",
        right=f"layer by layer the field grows {path} pixels: each layer adds dilation·(kernel_size − 1) "
        "times the jump (the product of the strides before it).",
        hint="start at 1 pixel; each layer adds dilation·(kernel_size − 1)·jump, where jump is the product of the "
        "strides of the layers before it (a 2x2 pooling with stride 2 doubles it).",
    )


# ---- 11 Comparing the architectures -------------------------------------------------------------------------


def model_key(name: str) -> str:
    """A model name as the prose spells it, as the registry key: ``"FCN-8s" -> "fcn8s"``, ``"U-Net" -> "unet"``.

    Case, hyphens, underscores and spaces do not matter; ``"+"`` reads as ``"plus"`` (``"DeepLabv3+"``).
    """
    key = name.strip().lower().replace("+", "plus")
    return "".join(character for character in key if character not in "-_ ")


def check_most_parameters(answer: Any, size: str = "small", num_classes: int = 2) -> Feedback:
    """Which of ``list_models()`` has the most parameters at ``size``.

    The name may be written as in the prose (``"FCN-8s"``, ``"U-Net"``, ``"DeepLabv3"``) or as the registry key.
    """
    exercise = f"the model with the most parameters at size {size!r}"
    if answer is None:
        return feedback(exercise, "unanswered", NOT_ANSWERED)
    with torch.device("meta"):
        models = {name: create_model(name, num_classes=num_classes, size=size) for name in list_models()}
    counts = {name: count_parameters(model) for name, model in models.items()}
    key = model_key(answer) if isinstance(answer, str) else None
    if key not in counts:
        return feedback(exercise, "wrong", f"answer with the name of a model, one of {list(counts)}, got {answer!r}.")
    expected = max(counts, key=counts.get)
    table = ", ".join(f"{name} {count:,}" for name, count in counts.items())
    if key == expected:
        return feedback(exercise, "correct", f"{table}.")
    return feedback(
        exercise, "wrong", f"{key} has {counts[key]:,} parameters; another has more. "
        "Hint: count them with count_parameters(create_model(name, size=size)) for each name in list_models()."
    )
