"""DeepLabv3: a ResNet that stops downsampling early and widens its view with atrous convolutions (ASPP).

Chen, Papandreou, Schroff, Adam (2017), "Rethinking Atrous Convolution for Semantic Image Segmentation",
https://arxiv.org/abs/1706.05587
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F

from segtutor.models.contract import Stage, TrainingDefaults, check_channels, check_images

# ---------------------------------------------------------------------------------------------------------------
# Backbone: ResNet (He et al. 2016, https://arxiv.org/abs/1512.03385) without its classifier
# ---------------------------------------------------------------------------------------------------------------


class BasicBlock(nn.Module):
    """ResNet-18/34 residual block: two 3x3 convolutions, plus the input (the shortcut).

    ``(N, in_channels, H, W) -> (N, channels, H/stride, W/stride)``.
    """

    expansion = 1  # output channels = channels * expansion

    def __init__(self, in_channels: int, channels: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = shortcut(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))  # (N, channels, H/stride, W/stride)
        out = self.bn2(self.conv2(out))  # (N, channels, H/stride, W/stride)
        return self.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """ResNet-50/101 residual block: 1x1 (narrow), 3x3, 1x1 (widen by 4), plus the input (the shortcut).

    ``(N, in_channels, H, W) -> (N, 4 * channels, H/stride, W/stride)``; the stride sits on the 3x3 convolution.
    """

    expansion = 4  # output channels = channels * expansion

    def __init__(self, in_channels: int, channels: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = shortcut(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))  # (N, channels, H, W)
        out = self.relu(self.bn2(self.conv2(out)))  # (N, channels, H/stride, W/stride)
        out = self.bn3(self.conv3(out))  # (N, 4 * channels, H/stride, W/stride)
        return self.relu(out + self.shortcut(x))


def shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """The identity where shapes match, else a strided 1x1 convolution + batch norm (ResNet's projection)."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))


class ResNet(nn.Module):
    """ResNet backbone whose last stages trade their stride for dilation, to reach ``output_stride`` 16 or 8.

    A stem (7x7 convolution with stride 2, 3x3 max-pool with stride 2) and four stages of residual blocks with
    ``width``, 2, 4 and 8 times ``width`` channels (times 4 for bottleneck blocks). Each stage after the first
    halves the size, until the output stride is reached: from there a stage keeps the size and dilates its 3x3
    convolutions instead (atrous convolution), so the receptive field still grows.

    Shapes:
        ``(N, in_channels, H, W) -> (N, out_channels, H/output_stride, W/output_stride)`` (sizes round up).
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: list[int] | tuple[int, ...],
        in_channels: int = 3,
        width: int = 64,
        output_stride: int = 16,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False),
                bn1=nn.BatchNorm2d(width),
                relu=nn.ReLU(inplace=True),
                maxpool=nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
            )
        )
        stage_in = width
        stride_so_far, dilation = 4, 1  # after the stem
        self.strides: list[int] = []  # output stride after each stage
        self.dilations: list[int] = []  # dilation of each stage's 3x3 convolutions
        for index, num_blocks in enumerate(layers):
            channels = width * 2**index
            stride = 1 if index == 0 else 2
            if stride == 2 and stride_so_far == output_stride:
                stride, dilation = 1, dilation * 2  # keep the size, dilate instead
            stride_so_far *= stride
            blocks = [block(stage_in, channels, stride, dilation)]  # the first block changes the channels
            stage_in = channels * block.expansion
            blocks += [block(stage_in, channels, 1, dilation) for _ in range(num_blocks - 1)]
            self.add_module(f"layer{index + 1}", nn.Sequential(*blocks))
            self.strides.append(stride_so_far)
            self.dilations.append(dilation)
        self.out_channels = stage_in

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.stem(images)  # (N, width, H/4, W/4)
        x = self.layer1(x)  # (N, width, H/4, W/4)       x4 for bottleneck blocks
        x = self.layer2(x)  # (N, 2 * width, H/8, W/8)
        x = self.layer3(x)  # (N, 4 * width, H/8 or H/16, ...)  dilated at output stride 8
        return self.layer4(x)  # (N, 8 * width, H/output_stride, W/output_stride)  dilated


# ---------------------------------------------------------------------------------------------------------------
# Head: Atrous Spatial Pyramid Pooling, then a 1x1 classifier
# ---------------------------------------------------------------------------------------------------------------


class ASPPConv(nn.Sequential):
    """One atrous branch: 3x3 convolution with dilation ``rate``, batch norm, ReLU. Keeps H and W."""

    def __init__(self, in_channels: int, out_channels: int, rate: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=rate, dilation=rate, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class ASPPPooling(nn.Sequential):
    """Image-level branch: average the map, 1x1 convolution (+ batch norm), ReLU, spread back over H x W.

    In training, the average is over the whole map: the training crop. To predict a larger image in one pass
    (a slide region, not a crop), the average is taken over a window as large as the training maps, placed
    around each pixel inside the map, as DeepLab's own code does for images larger than its training crops
    (``image_pooling_crop_size``). Averaging a whole 960 x 320 region instead feeds the branch a mix of
    classes it never saw in training: on the skin slide, one trained model scored 0.32 mean IoU with the
    region's average and 0.91 with the window (``benchmarks/skin.py``). A map no larger than the training maps
    is averaged whole, as in training.

    With batch norm (as in the paper), PyTorch needs a training batch of at least 2: the statistics of a single
    1x1 map are undefined. The paper asks for much larger batches to train batch norm well (16 images), and
    freezes batch norm for its fine-tuning at output stride 8.
    """

    window: torch.Tensor

    def __init__(self, in_channels: int, out_channels: int, batch_norm: bool) -> None:
        layers: list[nn.Module] = [
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=not batch_norm),
        ]
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)
        self.batch_norm = batch_norm
        # (h, w) of the largest feature map seen in training, saved with the weights; 0: none yet (average all)
        self.register_buffer("window", torch.zeros(2, dtype=torch.long))
        self._seen = (0, 0)  # the largest training map of this session, kept in Python: no device read per step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            if self.batch_norm and x.shape[0] < 2:
                raise ValueError(
                    "DeepLabV3's image-pooling branch applies batch norm to one value per image, so training "
                    f"needs batch_size >= 2 (got {x.shape[0]}); use a larger batch, drop the last incomplete batch "
                    "(DataLoader(..., drop_last=True)), or call model.eval() to predict"
                )
            if x.shape[-2] > self._seen[0] or x.shape[-1] > self._seen[1]:  # only then a copy to the device
                self._seen = (max(self._seen[0], x.shape[-2]), max(self._seen[1], x.shape[-1]))
                self.window.copy_(torch.maximum(self.window, torch.tensor(self._seen, device=self.window.device)))
            pooled = super().forward(x)  # (N, out_channels, 1, 1): the whole map averaged
        else:
            pooled = window_mean(window_mean(x, 2, self.window[0]), 3, self.window[1])  # (N, in_channels, h, w)
            for layer in list(self)[1:]:  # the 1x1 convolution, batch norm, ReLU
                pooled = layer(pooled)  # (N, out_channels, h, w)
        return pooled.expand(-1, -1, *x.shape[-2:])  # (N, out_channels, h, w)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:  # noqa: ANN001, ANN002, ANN003
        state_dict.setdefault(prefix + "window", torch.zeros(2, dtype=torch.long))  # weights saved before it
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def window_mean(x: torch.Tensor, dim: int, window: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` along ``dim`` over ``window`` neighbours of each position: the window holding the position
    in its middle, shifted to lie inside ``x``. A window of 0, or one as long as ``x``, averages all of ``x``.

    Tensor operations only (no Python branch on sizes), so a traced or exported model keeps any input size.
    ``x (N, C, h, w)``, ``window`` a long scalar tensor -> the same shape as ``x``.
    """
    positions = torch.arange(x.shape[dim], device=x.device)  # (n,)
    length = positions[-1:] + 1  # (1,) the length n, as a tensor
    size = torch.where(window > 0, torch.minimum(window, length), length)  # (1,)
    starts = torch.minimum((positions - size // 2).clamp(min=0), length - size)  # (n,) first neighbour of each
    exact = x.to(torch.promote_types(x.dtype, torch.float32))  # long sums of bfloat16 would lose digits
    sums = F.pad(exact.cumsum(dim), (0, 0, 1, 0) if dim == 2 else (1, 0))  # running sums, a 0 in front
    return ((sums.index_select(dim, starts + size) - sums.index_select(dim, starts)) / size).to(x.dtype)


class ASPP(nn.Module):
    """Atrous Spatial Pyramid Pooling: five parallel views of the same map, concatenated and projected.

    A 1x1 branch, three 3x3 atrous branches (``rates``) and an image-level pooling branch, each with
    ``out_channels`` maps, then a 1x1 projection + batch norm + ReLU.
    ``(N, in_channels, h, w) -> (N, out_channels, h, w)``.
    """

    def __init__(
        self,
        in_channels: int,
        rates: list[int] | tuple[int, ...],
        out_channels: int = 256,
        pooling_batch_norm: bool = True,
    ) -> None:
        super().__init__()
        self.rates = list(rates)
        one_by_one = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)
        )
        self.convs = nn.ModuleList(
            [one_by_one]
            + [ASPPConv(in_channels, out_channels, rate) for rate in self.rates]
            + [ASPPPooling(in_channels, out_channels, pooling_batch_norm)]
        )
        self.project = nn.Sequential(
            nn.Conv2d(len(self.convs) * out_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [conv(x) for conv in self.convs]  # 5 x (N, out_channels, h, w)
        return self.project(torch.cat(branches, dim=1))  # (N, 5 * out_channels, h, w) -> (N, out_channels, h, w)


class DeepLabHead(nn.Sequential):
    """ASPP, then a 1x1 convolution to class scores: ``(N, in_channels, h, w) -> (N, num_classes, h, w)``."""

    def __init__(
        self, in_channels: int, num_classes: int, rates: list[int], channels: int, pooling_batch_norm: bool
    ) -> None:
        super().__init__(
            OrderedDict(
                aspp=ASPP(in_channels, rates, channels, pooling_batch_norm),
                classifier=nn.Conv2d(channels, num_classes, kernel_size=1),
            )
        )


# ---------------------------------------------------------------------------------------------------------------
# DeepLabv3
# ---------------------------------------------------------------------------------------------------------------

BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}  # residual block types by name

PAPER_CROP = 513  # the crop size DeepLabv3 trains on (Sec. 4.1): its rates are chosen for maps of 513 / OS pixels


# The rates of the course's sizes (tiny, small, medium). The course trains on 96- to 128-pixel tiles, 12 x 12 to
# 16 x 16 feature pixels at output stride 8, and predicts whole slide regions in one pass. The paper's 12, 24, 36,
# and even 3, 6, 9 (scaled to a 128-pixel tile), reach past such a map: their far taps read padding in training but
# tissue in a larger image. Rates 1, 2, 3 keep both far taps on the map for most of a tile's pixels, so a branch
# means the same in training and in a one-pass prediction. On the skin slide (benchmarks/skin.py, DeepLabv3 small,
# 60 s of fit defaults on 128-pixel crops, 960 x 320 pixels in one pass), mean IoU 0.66 with the paper's rates,
# 0.67-0.88 with 3, 6, 9 and 0.82-0.90 with 1, 2, 3 (three seeds each).
COURSE_ASPP_RATES = (1, 2, 3)


def paper_aspp_rates(output_stride: int) -> list[int]:
    """The paper's ASPP rates: ``[6, 12, 18]`` at output stride 16, doubled to ``[12, 24, 36]`` at 8."""
    if output_stride not in (8, 16):
        raise ValueError(f"output_stride must be 16 or 8, got {output_stride}")
    return [rate * 16 // output_stride for rate in (6, 12, 18)]


def aspp_rates_for_tile(tile_size: int, output_stride: int = 8) -> list[int]:
    """The paper's ASPP rates scaled from its 513-pixel crops to ``tile_size``-pixel tiles.

    The paper's rates reach a fixed share of its feature map (rate 18 at output stride 16 spans more than half of
    a 33-pixel map). On a small tile the same rates reach past the map's edge, so every off-centre tap reads
    padding and each atrous branch is a 1x1 convolution. Scaling each rate by ``tile_size / 513`` keeps the
    paper's reach in shares of the map; rates stay whole, at least 1 and increasing.

    Example:
        >>> aspp_rates_for_tile(96)  # a 12 x 12 map at output stride 8, instead of [12, 24, 36]
        [2, 4, 7]
    """
    if not tile_size >= 32:
        raise ValueError(f"tile_size must be at least 32 pixels, got {tile_size!r}")
    rates: list[int] = []
    for rate in paper_aspp_rates(output_stride):
        scaled = max(1, round(rate * tile_size / PAPER_CROP))
        rates.append(max(scaled, rates[-1] + 1) if rates else scaled)
    return rates


def check_aspp_rates(aspp_rates: list[int] | tuple[int, ...]) -> list[int]:
    """``aspp_rates`` as a list of three whole rates >= 1 (the ASPP's atrous branches), else a ValueError."""
    rates = list(aspp_rates)
    if len(rates) != 3 or not all(isinstance(rate, int) and not isinstance(rate, bool) and rate >= 1 for rate in rates):
        raise ValueError(f"aspp_rates must be three whole numbers >= 1, e.g. [2, 4, 7], got {aspp_rates!r}")
    return rates


def aspp_rates_for(
    block: str,
    layers: list[int] | tuple[int, ...],
    output_stride: int,
    aspp_rates: list[int] | tuple[int, ...] | None = None,
) -> list[int]:
    """The ASPP rates a DeepLab builds with: ``aspp_rates`` if given (checked), else the paper's for
    ``output_stride`` (6, 12, 18 at 16; doubled at 8), after checking that ``block``, ``layers`` and
    ``output_stride`` describe a backbone DeepLab can build."""
    if block not in BLOCKS:
        raise ValueError(f"unknown block {block!r}; available options are: {', '.join(BLOCKS)}")
    if len(layers) != 4:
        raise ValueError(f"the ResNet backbone has four stages, so layers needs four numbers, got {list(layers)}")
    rates = paper_aspp_rates(output_stride)
    return rates if aspp_rates is None else check_aspp_rates(aspp_rates)  # given: scaled to a tile, for instance


class DeepLabV3(nn.Module):
    """DeepLabv3 (Chen et al. 2017, https://arxiv.org/abs/1706.05587).

    A ResNet backbone that stops downsampling at ``output_stride`` 16 or 8 and dilates its last stages instead,
    an :class:`ASPP` head with atrous rates 6, 12, 18 at output stride 16 (doubled at 8) plus image-level
    pooling, a 1x1 classifier, and bilinear upsampling of the scores to the input size. With the default
    arguments this is the paper's DeepLabv3-ResNet-50 (without the paper's optional multi-grid rates in the
    last stage, which change no parameter).

    Args:
        in_channels: channels of the input images (3 for RGB).
        num_classes: classes to score per pixel.
        block: residual block, ``"bottleneck"`` (ResNet-50, paper) or ``"basic"`` (ResNet-18).
        layers: blocks per stage (ResNet-50: 3, 4, 6, 3; ResNet-18: 2, 2, 2, 2).
        width: channels of the stem and first stage (paper: 64).
        output_stride: 16 or 8, input pixels per feature pixel at the end of the backbone.
        aspp_channels: channels of every ASPP branch and of the projection (paper: 256).
        pooling_batch_norm: batch norm in the image-pooling branch (paper: True; then training needs batch_size >= 2).
        aspp_rates: the three atrous rates; None: the paper's for ``output_stride``. For tiles much smaller than
            the paper's 513-pixel crops, :func:`aspp_rates_for_tile` scales them to the map.

    Shapes:
        ``images (N, in_channels, H, W)`` with H, W >= 32 ``-> logits (N, num_classes, H, W)``.

    Example:
        >>> model = DeepLabV3(num_classes=2, block="basic", layers=[2, 2, 2, 2], width=16, output_stride=8)
        >>> model(torch.rand(2, 3, 64, 64)).shape
        torch.Size([2, 2, 64, 64])
    """

    # Recommended training settings (TrainConfig fields left at None), measured on the small size with Adam and the
    # cosine schedule on 256 generated tiles, scored on tiles of another seed (2 CPU threads, torch 2.13):
    # - lr 3e-3: tumor IoU 0.891 after 2000 images seen (0.861 at 1e-3).
    # - batch 4: as good per image seen as batch 8 (0.871 after 960 images vs 0.872 after 1200).
    # - channels_last on the CPU: a train step +19 % (batch 4) and +9 % (batch 8) faster than NCHW.
    training_defaults = TrainingDefaults(lr=3e-3, batch_size=4, channels_last_on_cpu=True)

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 2,
        block: str = "bottleneck",
        layers: list[int] | tuple[int, ...] = (3, 4, 6, 3),
        width: int = 64,
        output_stride: int = 16,
        aspp_channels: int = 256,
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
        self.head = DeepLabHead(self.backbone.out_channels, num_classes, rates, aspp_channels, pooling_batch_norm)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images (N, in_channels, H, W) -> logits (N, num_classes, H, W)``; OS = output_stride below."""
        check_images(images, self.in_channels)
        features = self.backbone(images)  # (N, 2048, H/OS, W/OS) for ResNet-50
        scores = self.head(features)  # (N, num_classes, H/OS, W/OS)
        return F.interpolate(scores, size=images.shape[-2:], mode="bilinear", align_corners=False)  # (N, K, H, W)

    @property
    def aspp_rates(self) -> list[int]:
        """The dilation rates of the ASPP's three atrous branches, e.g. ``[12, 24, 36]`` at output stride 8."""
        return list(self.head.aspp.rates)

    def describe(self) -> list[Stage]:
        """The named stages of this DeepLabv3, in forward order, for architecture diagrams."""
        backbone, aspp = self.backbone, self.head.aspp
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
        os_, channels = self.output_stride, aspp.project[0].out_channels
        branches = ["aspp_1x1"] + [f"aspp_rate{rate}" for rate in aspp.rates] + ["aspp_pooling"]
        notes = ["1x1 convolution"] + [f"3x3 convolution, dilation {rate}" for rate in aspp.rates]
        notes += ["global average pool, 1x1 convolution, spread back"]
        for index, (name, note) in enumerate(zip(branches, notes)):
            stages.append(Stage(name, f"head.aspp.convs.{index}", "aspp", channels, os_, (previous,), note))
        return stages + [
            Stage("aspp_project", "head.aspp.project", "aspp", channels, os_, tuple(branches),
                  "concatenate, 1x1 convolution"),
            Stage("classifier", "head.classifier", "classifier", self.num_classes, os_, ("aspp_project",),
                  "1x1 convolution"),
            Stage("upsample", "", "upsample", self.num_classes, 1, ("classifier",), "bilinear to the input size"),
        ]  # fmt: skip
