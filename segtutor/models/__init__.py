"""The course's segmentation networks, UNet, FCN-8s, DeepLabv3 and DeepLabv3+, behind one factory.

The contract every model keeps::

    logits = model(images)
    # images: (N, in_channels, H, W) float, any H and W >= 32 (odd sizes included)
    # logits: (N, num_classes, H, W) float, one unnormalised score per class and pixel, at the input size
    # a plain tensor (no dict); softmax over dim 1 gives probabilities, argmax over dim 1 the predicted classes

Each architecture comes in sizes: ``"small"`` (the default) trains in seconds on a laptop CPU, ``"paper"`` has the
published network's layers and weight count (without the papers' dropout in UNet, and with ordinary
convolutions in DeepLabv3+'s ResNet-50, see each class), ``"tiny"`` and ``"medium"`` sit on either side of small.

Example:
    >>> model = create_model("unet", in_channels=3, num_classes=2)
    >>> model(torch.rand(4, 3, 96, 96)).shape
    torch.Size([4, 2, 96, 96])
"""

from __future__ import annotations

from torch import nn

from segtutor.models.contract import MIN_SIZE
from segtutor.models.deeplabv3 import ASPP, DeepLabV3
from segtutor.models.deeplabv3plus import DeepLabV3Plus
from segtutor.models.fcn import FCN8s
from segtutor.models.summary import Stage, count_flops, count_parameters, format_table, forward_flops, layer_table
from segtutor.models.unet import UNet

MODELS: dict[str, type[nn.Module]] = {
    "unet": UNet,
    "fcn8s": FCN8s,
    "deeplabv3": DeepLabV3,
    "deeplabv3plus": DeepLabV3Plus,
}

# The constructor arguments behind each size (batch norm is not in the UNet and FCN papers; it speeds up training).
SIZES: dict[str, dict[str, dict]] = {
    "unet": {
        "tiny": dict(channels=[4, 8, 16, 32, 64], batch_norm=True),
        "small": dict(channels=[8, 16, 32, 64, 128], batch_norm=True),
        "medium": dict(channels=[16, 32, 64, 128, 256], batch_norm=True),
        "paper": dict(channels=[64, 128, 256, 512, 1024], batch_norm=False),
    },
    "fcn8s": {
        "tiny": dict(channels=[8, 16, 32, 64, 64], fc_channels=128, fc6_kernel_size=3, dropout=0.1, batch_norm=True),
        "small": dict(channels=[16, 32, 64, 128, 128], fc_channels=256, fc6_kernel_size=3, dropout=0.1, batch_norm=True),
        "medium": dict(channels=[32, 64, 128, 256, 256], fc_channels=512, fc6_kernel_size=3, dropout=0.1, batch_norm=True),
        "paper": dict(channels=[64, 128, 256, 512, 512], fc_channels=4096, fc6_kernel_size=7, dropout=0.5, batch_norm=False),
    },
    "deeplabv3": {  # "basic" blocks with layers [2, 2, 2, 2] make a ResNet-18; "bottleneck" with [3, 4, 6, 3] a ResNet-50
        "tiny": dict(block="basic", layers=[1, 1, 1, 1], width=8, output_stride=8, aspp_channels=32, pooling_batch_norm=False),
        "small": dict(block="basic", layers=[2, 2, 2, 2], width=16, output_stride=8, aspp_channels=64, pooling_batch_norm=False),
        "medium": dict(block="basic", layers=[2, 2, 2, 2], width=32, output_stride=8, aspp_channels=128, pooling_batch_norm=False),
        "paper": dict(block="bottleneck", layers=[3, 4, 6, 3], width=64, output_stride=16, aspp_channels=256, pooling_batch_norm=True),
    },
    "deeplabv3plus": {  # DeepLabv3's backbone and ASPP at each size, plus the decoder (paper: 48 low-level channels, 256)
        "tiny": dict(block="basic", layers=[1, 1, 1, 1], width=8, output_stride=8, aspp_channels=32, low_level_channels=6, decoder_channels=32, pooling_batch_norm=False),
        "small": dict(block="basic", layers=[2, 2, 2, 2], width=16, output_stride=8, aspp_channels=64, low_level_channels=12, decoder_channels=64, pooling_batch_norm=False),
        "medium": dict(block="basic", layers=[2, 2, 2, 2], width=32, output_stride=8, aspp_channels=128, low_level_channels=24, decoder_channels=128, pooling_batch_norm=False),
        "paper": dict(block="bottleneck", layers=[3, 4, 6, 3], width=64, output_stride=16, aspp_channels=256, low_level_channels=48, decoder_channels=256, pooling_batch_norm=True),
    },
}  # fmt: skip


def list_models() -> list[str]:
    """Names ``create_model`` accepts: ``["unet", "fcn8s", "deeplabv3", "deeplabv3plus"]``."""
    return list(MODELS)


def list_sizes() -> list[str]:
    """Sizes every model comes in, smallest first: ``["tiny", "small", "medium", "paper"]``."""
    return list(SIZES["unet"])


def create_model(name: str, *, in_channels: int = 3, num_classes: int = 2, size: str = "small") -> nn.Module:
    """Build one of the course's segmentation networks with fresh (untrained) weights.

    Args:
        name: one of ``list_models()``: ``"unet"``, ``"fcn8s"``, ``"deeplabv3"``, ``"deeplabv3plus"``.
        in_channels: channels of the input images (3 for RGB, 1 for grey).
        num_classes: classes to score per pixel (2 for tumor vs stroma).
        size: one of ``list_sizes()``; ``"small"`` trains in seconds on a CPU, ``"paper"`` is the published network.

    Returns:
        A model mapping ``images (N, in_channels, H, W)`` to ``logits (N, num_classes, H, W)``, H, W >= 32.

    Example:
        >>> model = create_model("deeplabv3", num_classes=3, size="small").to(default_device())
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; available options are: {', '.join(MODELS)}")
    if size not in SIZES[name]:
        raise ValueError(f"unknown size {size!r} for {name!r}; available options are: {', '.join(SIZES[name])}")
    return MODELS[name](in_channels=in_channels, num_classes=num_classes, **SIZES[name][size])


__all__ = [
    "ASPP",
    "DeepLabV3",
    "DeepLabV3Plus",
    "FCN8s",
    "MIN_SIZE",
    "MODELS",
    "SIZES",
    "Stage",
    "UNet",
    "count_flops",
    "count_parameters",
    "create_model",
    "format_table",
    "forward_flops",
    "layer_table",
    "list_models",
    "list_sizes",
]
