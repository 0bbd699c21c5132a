"""The course's segmentation networks, UNet, FCN-8s, DeepLabv3 and DeepLabv3+, behind one factory.

The contract every model keeps::

    logits = model(images)
    # images: (N, in_channels, H, W) float, any H and W >= 32 (odd sizes included)
    # logits: (N, num_classes, H, W) float, one unnormalised score per class and pixel, at the input size
    # a plain tensor (no dict); softmax over dim 1 gives probabilities, argmax over dim 1 the predicted classes
    model.in_channels, model.num_classes   # what it was built for
    model.describe()                       # its named stages (segtutor.models.contract.Stage), for diagrams

:func:`~segtutor.models.contract.logits_to_probs` reads logits as probabilities (a one-channel model is binary).

Each architecture comes in sizes: ``"small"`` (the default) trains in seconds on a laptop CPU, ``"paper"`` has the
published network's layers and weight count (without the papers' dropout in UNet, and with ordinary
convolutions in DeepLabv3+'s ResNet-50, see each class), ``"tiny"`` and ``"medium"`` sit on either side of small.

Example:
    >>> model = create_model("unet", in_channels=3, num_classes=2)
    >>> model(torch.rand(4, 3, 96, 96)).shape
    torch.Size([4, 2, 96, 96])
"""

from __future__ import annotations

import torch
from torch import nn

from segtutor.models.contract import (
    GENERIC_DEFAULTS,
    MIN_SIZE,
    Stage,
    TrainingDefaults,
    logits_to_preds,
    logits_to_probs,
    training_defaults,
)
from segtutor.models.deeplabv3 import ASPP, COURSE_ASPP_RATES, DeepLabV3, aspp_rates_for_tile, paper_aspp_rates
from segtutor.models.deeplabv3plus import DeepLabV3Plus
from segtutor.models.fcn import FCN8s
from segtutor.models.transfer import (
    Pretraining,
    check_input_statistics,
    freeze_encoder,
    list_pretrained,
    load_pretrained_encoder,
)
from segtutor.models.summary import (
    PAPER_SIZED_PARAMETERS,
    ArchitectureSummary,
    LayerTable,
    StageShape,
    count_flops,
    count_parameters,
    describe_architecture,
    evaluating,
    feature_maps,
    first_convolution,
    format_count,
    format_table,
    input_channels,
    layer_choices,
    layer_table,
)
from segtutor.models.unet import UNet

MODELS: dict[str, type[nn.Module]] = {
    "unet": UNet,
    "fcn8s": FCN8s,
    "deeplabv3": DeepLabV3,
    "deeplabv3plus": DeepLabV3Plus,
}
LABELS: dict[str, str] = {  # as the papers write them
    "unet": "UNet",
    "fcn8s": "FCN-8s",
    "deeplabv3": "DeepLabv3",
    "deeplabv3plus": "DeepLabv3+",
}

# The constructor arguments behind each size, with the parameter count of each (3 input channels, 2 classes).
# Batch norm is not in the UNet and FCN papers; it speeds up training.
SIZES: dict[str, dict[str, dict]] = {
    "unet": {
        "tiny": dict(channels=[4, 8, 16, 32, 64], batch_norm=True),  # 122 k parameters
        "small": dict(channels=[8, 16, 32, 64, 128], batch_norm=True),  # 487 k parameters
        "medium": dict(channels=[16, 32, 64, 128, 256], batch_norm=True),  # 1.94 M parameters
        "paper": dict(channels=[64, 128, 256, 512, 1024], batch_norm=False),  # 31.0 M parameters
    },
    "fcn8s": {
        "tiny": dict(channels=[8, 16, 32, 64, 64], fc_channels=128, fc6_kernel_size=3, dropout=0.1, batch_norm=True),  # 323 k parameters
        "small": dict(channels=[16, 32, 64, 128, 128], fc_channels=256, fc6_kernel_size=3, dropout=0.1, batch_norm=True),  # 1.28 M parameters
        "medium": dict(channels=[32, 64, 128, 256, 256], fc_channels=512, fc6_kernel_size=3, dropout=0.1, batch_norm=True),  # 5.13 M parameters
        "paper": dict(channels=[64, 128, 256, 512, 512], fc_channels=4096, fc6_kernel_size=7, dropout=0.5, batch_norm=False),  # 134 M parameters
    },
    # DeepLab: "basic" blocks with layers [2, 2, 2, 2] make a ResNet-18, "bottleneck" with [3, 4, 6, 3] a ResNet-50;
    # the course's sizes take ASPP rates for its small tiles (COURSE_ASPP_RATES), the paper size the paper's
    "deeplabv3": {
        "tiny": dict(block="basic", layers=[1, 1, 1, 1], width=8, output_stride=8, aspp_channels=32, pooling_batch_norm=False, aspp_rates=COURSE_ASPP_RATES),  # 143 k parameters
        "small": dict(block="basic", layers=[2, 2, 2, 2], width=16, output_stride=8, aspp_channels=64, pooling_batch_norm=False, aspp_rates=COURSE_ASPP_RATES),  # 961 k parameters
        "medium": dict(block="basic", layers=[2, 2, 2, 2], width=32, output_stride=8, aspp_channels=128, pooling_batch_norm=False, aspp_rates=COURSE_ASPP_RATES),  # 3.83 M parameters
        "paper": dict(block="bottleneck", layers=[3, 4, 6, 3], width=64, output_stride=16, aspp_channels=256, pooling_batch_norm=True),  # 39.0 M parameters
    },
    "deeplabv3plus": {  # DeepLabv3's backbone and ASPP at each size, plus the decoder (paper: 48 low-level channels, 256)
        "tiny": dict(block="basic", layers=[1, 1, 1, 1], width=8, output_stride=8, aspp_channels=32, low_level_channels=6, decoder_channels=32, pooling_batch_norm=False, aspp_rates=COURSE_ASPP_RATES),  # 164 k parameters
        "small": dict(block="basic", layers=[2, 2, 2, 2], width=16, output_stride=8, aspp_channels=64, low_level_channels=12, decoder_channels=64, pooling_batch_norm=False, aspp_rates=COURSE_ASPP_RATES),  # 1.04 M parameters
        "medium": dict(block="basic", layers=[2, 2, 2, 2], width=32, output_stride=8, aspp_channels=128, low_level_channels=24, decoder_channels=128, pooling_batch_norm=False, aspp_rates=COURSE_ASPP_RATES),  # 4.16 M parameters
        "paper": dict(block="bottleneck", layers=[3, 4, 6, 3], width=64, output_stride=16, aspp_channels=256, low_level_channels=48, decoder_channels=256, pooling_batch_norm=True),  # 40.3 M parameters
    },
}  # fmt: skip


def list_models() -> list[str]:
    """Names ``create_model`` accepts: ``["unet", "fcn8s", "deeplabv3", "deeplabv3plus"]``."""
    return list(MODELS)


def list_sizes() -> list[str]:
    """Sizes every model comes in, smallest first: ``["tiny", "small", "medium", "paper"]``."""
    return list(SIZES["unet"])


def create_model(
    name: str,
    *,
    in_channels: int = 3,
    num_classes: int = 2,
    size: str = "small",
    seed: int | None = None,
    pretrained: bool = False,
    aspp_rates: list[int] | tuple[int, ...] | None = None,
) -> nn.Module:
    """Build one of the course's segmentation networks with fresh (untrained) weights, or a pretrained encoder.

    Args:
        name: one of ``list_models()``: ``"unet"``, ``"fcn8s"``, ``"deeplabv3"``, ``"deeplabv3plus"``.
        in_channels: channels of the input images (3 for RGB, 1 for grey).
        num_classes: classes to score per pixel (2 for tumor vs stroma).
        size: one of ``list_sizes()``; ``"small"`` trains in seconds on a CPU, ``"paper"`` is the published network.
        seed: draw the initial weights from this seed (the same seed, the same weights; torch's global generator
            is left as it was); None draws them from torch's global generator, as ``nn.Module`` does.
        pretrained: start the encoder from the weights that ship with segtutor (small RGB models; see
            :mod:`segtutor.models.transfer`); the decoder and classifier start fresh, drawn from ``seed``.
        aspp_rates: DeepLabv3 and DeepLabv3+ only: the three atrous rates of ASPP instead of the size's (the
            course's sizes: ``COURSE_ASPP_RATES``, 1, 2, 3, for its small tiles; ``"paper"``: the paper's,
            ``paper_aspp_rates(16)``); notebook 07 explains both.

    Returns:
        A model mapping ``images (N, in_channels, H, W)`` to ``logits (N, num_classes, H, W)``, H, W >= 32.

    Example:
        >>> model = create_model("deeplabv3", num_classes=3, size="small").to(default_device())
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; available options are: {', '.join(MODELS)}")
    if size not in SIZES[name]:
        raise ValueError(f"unknown size {size!r} for {name!r}; available options are: {', '.join(SIZES[name])}")
    if pretrained and in_channels != 3:
        raise ValueError(f"the pretrained encoders take RGB images (in_channels=3), got in_channels={in_channels}")
    options = dict(SIZES[name][size])
    if aspp_rates is not None:
        if name not in ("deeplabv3", "deeplabv3plus"):
            raise ValueError(f"aspp_rates are the atrous rates of DeepLabv3's ASPP; {name!r} has none. Leave them out")
        options["aspp_rates"] = list(aspp_rates)
    if seed is None:
        model = MODELS[name](in_channels=in_channels, num_classes=num_classes, **options)
    else:
        with torch.random.fork_rng(devices=[]):  # a private copy of the generator: the caller's stays untouched
            torch.manual_seed(seed)
            model = MODELS[name](in_channels=in_channels, num_classes=num_classes, **options)
    return load_pretrained_encoder(model, size) if pretrained else model


__all__ = [
    "ASPP",
    "COURSE_ASPP_RATES",
    "GENERIC_DEFAULTS",
    "LABELS",
    "MIN_SIZE",
    "MODELS",
    "PAPER_SIZED_PARAMETERS",
    "Pretraining",
    "SIZES",
    "ArchitectureSummary",
    "DeepLabV3",
    "DeepLabV3Plus",
    "FCN8s",
    "LayerTable",
    "Stage",
    "StageShape",
    "TrainingDefaults",
    "UNet",
    "aspp_rates_for_tile",
    "check_input_statistics",
    "count_flops",
    "count_parameters",
    "create_model",
    "describe_architecture",
    "evaluating",
    "feature_maps",
    "first_convolution",
    "format_count",
    "format_table",
    "freeze_encoder",
    "input_channels",
    "layer_choices",
    "layer_table",
    "list_models",
    "list_pretrained",
    "list_sizes",
    "load_pretrained_encoder",
    "logits_to_preds",
    "logits_to_probs",
    "paper_aspp_rates",
    "training_defaults",
]
