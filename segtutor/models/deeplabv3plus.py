"""DeepLabv3+: DeepLabv3's atrous encoder with ASPP, plus a small decoder that brings back the borders.

Chen, Zhu, Papandreou, Schroff, Adam (2018), "Encoder-Decoder with Atrous Separable Convolution for Semantic
Image Segmentation", https://arxiv.org/abs/1802.02611

DeepLabv3 is a *spatial-pyramid* network: it probes one coarse map at several rates and ends with a single
bilinear upsampling. UNet and FCN-8s are *encoder-decoders*: they recover the spatial detail step by step. In
the paper's words, the former "encode multi-scale contextual information", the latter "capture sharper object
boundaries by gradually recovering the spatial information". DeepLabv3+ combines the two: the DeepLabv3 encoder,
and a decoder that fuses the ASPP output with low-level features from the backbone's stride-4 stage.
"""

from __future__ import annotations


import torch
from torch import nn
from torch.nn import functional as F

from segtutor.models.contract import check_channels, check_images
from segtutor.models.deeplabv3 import ASPP, BLOCKS, DeepLabV3, ResNet, aspp_rates_for
from segtutor.models.summary import Stage


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int) -> list[nn.Module]:
    """A bias-free convolution that keeps H and W, batch norm (it brings its own shift) and ReLU."""
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


class DeepLabV3PlusHead(nn.Module):
    """ASPP on the backbone's last map, then the DeepLabv3+ decoder (paper, Sec. 3.1 and Fig. 2).

    1. ASPP on the coarse features, as in DeepLabv3 (``aspp_channels`` maps at the output stride);
    2. the low-level features of the backbone's stride-4 stage, reduced by a 1x1 convolution to
       ``low_level_channels`` (paper: 48), so they do not outweigh the rich encoder features;
    3. the ASPP output upsampled bilinearly to the low-level map's size (x4 at output stride 16), concatenated;
    4. two 3x3 convolutions of ``channels`` maps (paper: 256) refine the fused features;
    5. a 1x1 convolution to class scores, at stride 4.

    ``features (N, in_channels, h, w)`` and ``low_level (N, low_level_in, H/4, W/4)``
    ``-> scores (N, num_classes, H/4, W/4)``.
    """

    def __init__(
        self,
        in_channels: int,
        low_level_in: int,
        num_classes: int,
        rates: list[int],
        aspp_channels: int,
        low_level_channels: int,
        channels: int,
        pooling_batch_norm: bool,
    ) -> None:
        super().__init__()
        self.aspp = ASPP(in_channels, rates, aspp_channels, pooling_batch_norm)
        self.reduce = nn.Sequential(*conv_bn_relu(low_level_in, low_level_channels, kernel_size=1))
        self.refine = nn.Sequential(
            *conv_bn_relu(aspp_channels + low_level_channels, channels, kernel_size=3),
            *conv_bn_relu(channels, channels, kernel_size=3),
        )
        self.classifier = nn.Conv2d(channels, num_classes, kernel_size=1)

    def forward(self, features: torch.Tensor, low_level: torch.Tensor) -> torch.Tensor:
        x = self.aspp(features)  # 1) (N, aspp_channels, H/OS, W/OS)
        low = self.reduce(low_level)  # 2) (N, low_level_channels, H/4, W/4)
        x = F.interpolate(x, size=low.shape[-2:], mode="bilinear", align_corners=False)  # 3) (N, aspp_channels, H/4, W/4)
        x = self.refine(torch.cat([x, low], dim=1))  # 4) (N, channels, H/4, W/4)
        return self.classifier(x)  # 5) (N, num_classes, H/4, W/4)


class DeepLabV3Plus(nn.Module):
    """DeepLabv3+ (Chen et al. 2018, https://arxiv.org/abs/1802.02611): DeepLabv3 with a decoder.

    The backbone and the ASPP are those of :class:`~segtutor.models.DeepLabV3` (a ResNet that stops
    downsampling at ``output_stride`` and dilates instead; ASPP with rates 6, 12, 18 at output stride 16, doubled
    at 8). :class:`DeepLabV3PlusHead` then fuses the ASPP output with the backbone's stride-4 features and
    scores the pixels at stride 4; a bilinear x4 upsampling gives the input size.

    With the default arguments the backbone is ResNet-50 at output stride 16, as segtutor's ``"paper"``
    DeepLabv3. The paper's best DeepLabv3+ uses a modified Xception backbone with depthwise separable
    convolutions (and also reports ResNet-101); here the convolutions are ordinary ones, and the decoder is the
    paper's: 48 low-level channels, two 3x3 convolutions of 256.

    Args:
        in_channels: channels of the input images (3 for RGB).
        num_classes: classes to score per pixel.
        block: residual block, ``"bottleneck"`` (ResNet-50) or ``"basic"`` (ResNet-18).
        layers: blocks per stage (ResNet-50: 3, 4, 6, 3; ResNet-18: 2, 2, 2, 2).
        width: channels of the stem and first stage (ResNet: 64).
        output_stride: 16 or 8, input pixels per feature pixel at the end of the backbone.
        aspp_channels: channels of every ASPP branch and of its projection (paper: 256).
        low_level_channels: channels the stride-4 features are reduced to (paper: 48).
        decoder_channels: channels of the decoder's two 3x3 convolutions (paper: 256).
        pooling_batch_norm: batch norm in ASPP's image-pooling branch (then training needs batch_size >= 2).
        aspp_rates: the three atrous rates; None: the paper's for ``output_stride`` (see
            :func:`~segtutor.models.deeplabv3.aspp_rates_for_tile` for small tiles).

    Shapes:
        ``images (N, in_channels, H, W)`` with H, W >= 32 ``-> logits (N, num_classes, H, W)``.

    Example:
        >>> model = DeepLabV3Plus(num_classes=2, block="basic", layers=[2, 2, 2, 2], width=16, output_stride=8,
        ...                       aspp_channels=64, low_level_channels=12, decoder_channels=64)
        >>> model(torch.rand(2, 3, 64, 64)).shape
        torch.Size([2, 2, 64, 64])
    """

    # Recommended training settings (TrainConfig fields left at None): DeepLabv3's, whose backbone and ASPP it
    # shares (not measured for the decoder on its own).
    training_defaults = DeepLabV3.training_defaults

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 2,
        block: str = "bottleneck",
        layers: list[int] | tuple[int, ...] = (3, 4, 6, 3),
        width: int = 64,
        output_stride: int = 16,
        aspp_channels: int = 256,
        low_level_channels: int = 48,
        decoder_channels: int = 256,
        pooling_batch_norm: bool = True,
        aspp_rates: list[int] | tuple[int, ...] | None = None,
    ) -> None:
        super().__init__()
        check_channels(in_channels, num_classes)
        rates = aspp_rates_for(block, layers, output_stride, aspp_rates)  # checks the backbone settings too
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.output_stride = output_stride

        self.backbone = ResNet(BLOCKS[block], layers, in_channels, width, output_stride)
        low_level_in = width * BLOCKS[block].expansion  # layer1's output channels (256 for ResNet-50)
        self.head = DeepLabV3PlusHead(
            self.backbone.out_channels, low_level_in, num_classes, rates, aspp_channels, low_level_channels,
            decoder_channels, pooling_batch_norm,
        )  # fmt: skip

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images (N, in_channels, H, W) -> logits (N, num_classes, H, W)``; OS = output_stride below."""
        check_images(images, self.in_channels)
        backbone = self.backbone
        low_level = backbone.layer1(backbone.stem(images))  # (N, 256, H/4, W/4) for ResNet-50: kept for the decoder
        features = backbone.layer4(backbone.layer3(backbone.layer2(low_level)))  # (N, 2048, H/OS, W/OS)
        scores = self.head(features, low_level)  # (N, num_classes, H/4, W/4)
        return F.interpolate(scores, size=images.shape[-2:], mode="bilinear", align_corners=False)  # (N, K, H, W)

    @property
    def aspp_rates(self) -> list[int]:
        """The dilation rates of the ASPP's three atrous branches, e.g. ``[12, 24, 36]`` at output stride 8."""
        return list(self.head.aspp.rates)

    def describe(self) -> list[Stage]:
        """The named stages of this DeepLabv3+, in forward order, for architecture diagrams."""
        backbone, head = self.backbone, self.head
        width = backbone.stem.conv1.out_channels
        stages = [Stage("stem", "backbone.stem", "encoder", width, 4, ("images",),
                        "7x7 convolution (stride 2), 3x3 max-pool (stride 2)")]  # fmt: skip
        previous = "stem"
        for index, (stride, dilation) in enumerate(zip(backbone.strides, backbone.dilations)):
            stage = getattr(backbone, f"layer{index + 1}")
            out_channels = width * 2**index * type(stage[0]).expansion
            note = f"{len(stage)} residual blocks" + (f", dilation {dilation}" if dilation > 1 else "")
            stages.append(Stage(f"layer{index + 1}", f"backbone.layer{index + 1}", "encoder", out_channels, stride,
                                (previous,), note))  # fmt: skip
            previous = f"layer{index + 1}"
        os_, aspp_channels = self.output_stride, head.aspp.project[0].out_channels
        branches = ["aspp_1x1"] + [f"aspp_rate{rate}" for rate in head.aspp.rates] + ["aspp_pooling"]
        notes = ["1x1 convolution"] + [f"3x3 convolution, dilation {rate}" for rate in head.aspp.rates]
        notes += ["global average pool, 1x1 convolution, spread back"]
        for index, (name, note) in enumerate(zip(branches, notes)):
            stages.append(Stage(name, f"head.aspp.convs.{index}", "aspp", aspp_channels, os_, (previous,), note))
        low_level, channels = head.reduce[0].out_channels, head.refine[0].out_channels
        return stages + [
            Stage("aspp_project", "head.aspp.project", "aspp", aspp_channels, os_, tuple(branches),
                  "concatenate, 1x1 convolution"),
            Stage("upsample_aspp", "", "upsample", aspp_channels, 4, ("aspp_project",),
                  f"bilinear x{os_ // 4} to the low-level features' size"),
            Stage("low_level", "head.reduce", "decoder", low_level, 4, ("layer1",),
                  "1x1 convolution: layer1's features reduced"),
            Stage("decoder", "head.refine", "decoder", channels, 4, ("upsample_aspp", "low_level"),
                  "concatenate, two 3x3 convolutions"),
            Stage("classifier", "head.classifier", "classifier", self.num_classes, 4, ("decoder",),
                  "1x1 convolution"),
            Stage("upsample", "", "upsample", self.num_classes, 1, ("classifier",), "bilinear x4 to the input size"),
        ]  # fmt: skip
