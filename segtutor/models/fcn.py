"""FCN-8s: a classification network (VGG16) made fully convolutional, with class scores fused across three scales.

Long, Shelhamer, Darrell (2015), "Fully Convolutional Networks for Semantic Segmentation",
https://arxiv.org/abs/1411.4038
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from segtutor.models.contract import Stage, TrainingDefaults, check_channels, check_images

VGG16_CONVS = (2, 2, 3, 3, 3)  # 3x3 convolutions in each of VGG16's five blocks


def bilinear_tent(size: int) -> torch.Tensor:
    """The ``(size, size)`` bilinear-interpolation kernel FCN initialises its upsampling layers with.

    The tent ``1 - |t - centre| / factor`` with ``factor = ceil(size / 2)``, along rows times along columns (Long,
    Shelhamer & Darrell, 2015). With ``size = 2 * stride`` a transposed convolution of this kernel interpolates
    bilinearly; other sizes are what the upsampling explorer lets a learner try.

    Example:
        >>> bilinear_tent(4)[0]
        tensor([0.0625, 0.1875, 0.1875, 0.0625])
    """
    factor = (size + 1) // 2
    centre = factor - 1 if size % 2 == 1 else factor - 0.5  # odd: the middle tap; even: between the two middle ones
    taps = 1 - (torch.arange(size) - centre).abs() / factor  # (size,) the 1-D tent
    return taps[:, None] * taps[None, :]  # (size, size) bilinear = tent x tent


def bilinear_kernel(channels: int, factor: int) -> torch.Tensor:
    """Weights that make ``ConvTranspose2d(channels, channels, 2 * factor, factor, factor // 2)`` bilinear upsampling.

    Each channel is upsampled on its own (the weight is zero between different channels) with
    :func:`bilinear_tent`. In the interior this equals
    ``F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)``; at the border the transposed
    convolution sees zeros where ``interpolate`` repeats the edge pixel.

    Args:
        channels: input and output channels of the transposed convolution.
        factor: upsampling factor (even: 2, 4, 8, ...).

    Returns:
        ``(channels, channels, 2 * factor, 2 * factor)`` weight tensor.
    """
    kernel_size = 2 * factor
    weight = torch.zeros(channels, channels, kernel_size, kernel_size)
    weight[range(channels), range(channels)] = bilinear_tent(kernel_size)
    return weight


def bilinear_upsampling(channels: int, factor: int, trainable: bool) -> nn.ConvTranspose2d:
    """A bias-free ``ConvTranspose2d`` that starts as ``factor``-times bilinear upsampling.

    ``(N, channels, h, w) -> (N, channels, factor * h, factor * w)``.
    """
    up = nn.ConvTranspose2d(
        channels, channels, kernel_size=2 * factor, stride=factor, padding=factor // 2, bias=False
    )
    with torch.no_grad():
        up.weight.copy_(bilinear_kernel(channels, factor))
    up.weight.requires_grad_(trainable)  # the 2015 paper learns the x2 layers and fixes the final x8 one
    return up


class VGGBlock(nn.Sequential):
    """``num_convs`` 3x3 convolutions + ReLU (batch norm optional), then a 2x2 max-pool: one block of VGG16.

    ``(N, in_channels, H, W) -> (N, out_channels, ceil(H/2), ceil(W/2))``; layers are named as in the paper's
    Caffe model (``conv3_1``, ``relu3_1``, ..., ``pool3``).
    """

    def __init__(self, block: int, in_channels: int, out_channels: int, num_convs: int, batch_norm: bool) -> None:
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        for index in range(1, num_convs + 1):
            conv_in = in_channels if index == 1 else out_channels
            layers[f"conv{block}_{index}"] = nn.Conv2d(conv_in, out_channels, 3, padding=1, bias=not batch_norm)
            if batch_norm:
                layers[f"bn{block}_{index}"] = nn.BatchNorm2d(out_channels)
            layers[f"relu{block}_{index}"] = nn.ReLU(inplace=True)
        # ceil_mode, as in Caffe: a last odd row or column is pooled on its own instead of dropped
        layers[f"pool{block}"] = nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True)
        super().__init__(layers)


class FullyConvolutional(nn.Sequential):
    """VGG16's fully connected fc6 and fc7, rewritten as convolutions so they slide over an image of any size.

    fc6 looked at a 7x7x512 map and fc7 at fc6's 4096 outputs: as convolutions they are a 7x7 and a 1x1 kernel.
    ``(N, in_channels, h, w) -> (N, channels, h, w)``.
    """

    def __init__(self, in_channels: int, channels: int, fc6_kernel_size: int, dropout: float) -> None:
        super().__init__(
            OrderedDict(
                fc6=nn.Conv2d(in_channels, channels, fc6_kernel_size, padding=fc6_kernel_size // 2),
                relu6=nn.ReLU(inplace=True),
                drop6=nn.Dropout(dropout),
                fc7=nn.Conv2d(channels, channels, kernel_size=1),
                relu7=nn.ReLU(inplace=True),
                drop7=nn.Dropout(dropout),
            )
        )


class FCN8s(nn.Module):
    """FCN-8s (Long et al. 2015, https://arxiv.org/abs/1411.4038), a *Fully Convolutional* Network.

    A VGG16 encoder (five blocks of 2, 2, 3, 3, 3 convolutions, each ending in a 2x2 max-pool) with its fully
    connected fc6/fc7 rewritten as convolutions. Class scores are read at three depths and fused coarse to fine:
    the fc7 scores (stride 32) are upsampled x2 and added to scores from pool4 (stride 16), upsampled x2 again
    and added to scores from pool3 (stride 8), then upsampled x8 to the input size. The upsamplings are
    transposed convolutions initialised to bilinear interpolation (4x4 stride 2, and 16x16 stride 8); the two x2
    ones keep learning, the x8 one stays fixed, as in the CVPR 2015 paper (Sec. 4.3). The authors' reference
    implementation and journal version (https://arxiv.org/abs/1605.06211) keep all three fixed, and report no
    significant difference in accuracy.

    The paper padded the first convolution by 100 pixels and cropped the fused maps with fixed offsets; here
    the convolutions are padded to keep their size (fc6 too), pooling rounds up, and every upsampled map is
    cropped to the size of the map it is added to. The parameter count is identical. With the default arguments
    this is the paper's network.

    Args:
        in_channels: channels of the input images (3 for RGB).
        num_classes: classes to score per pixel.
        channels: channels of VGG16's five blocks (paper: 64, 128, 256, 512, 512).
        fc_channels: width of fc6 and fc7 (paper: 4096).
        fc6_kernel_size: fc6's kernel (paper: 7; an odd number).
        dropout: dropout probability after fc6 and fc7 (paper: 0.5).
        batch_norm: add batch norm after every 3x3 convolution (not in the paper; makes small models train faster).

    Shapes:
        ``images (N, in_channels, H, W)`` with H, W >= 32 ``-> logits (N, num_classes, H, W)``.

    Example:
        >>> model = FCN8s(num_classes=2, channels=[16, 32, 64, 128, 128], fc_channels=256, fc6_kernel_size=3)
        >>> model(torch.rand(1, 3, 64, 64)).shape
        torch.Size([1, 2, 64, 64])
    """

    # Recommended training settings (TrainConfig fields left at None), measured on the small size with Adam and the
    # cosine schedule on 256 generated tiles, scored on tiles of another seed (2 CPU threads, torch 2.13):
    # - lr 1e-3: at 3e-3 the scores wobbled (tumor IoU 0.19 after 800 images), at 1e-3 they rose steadily.
    # - batch 4: per image seen it beat batch 8 (0.88 vs 0.86 after 640-800 images) at about the same images/s.
    # - channels_last on the CPU: a train step +26 % (batch 4) and +18 % (batch 8) faster than NCHW.
    training_defaults = TrainingDefaults(lr=1e-3, batch_size=4, channels_last_on_cpu=True)

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 2,
        channels: list[int] | tuple[int, ...] = (64, 128, 256, 512, 512),
        fc_channels: int = 4096,
        fc6_kernel_size: int = 7,
        dropout: float = 0.5,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        check_channels(in_channels, num_classes)
        if len(channels) != 5:
            raise ValueError(f"FCN8s has five VGG blocks, so channels needs five numbers, got {list(channels)}")
        if fc6_kernel_size < 1 or fc6_kernel_size % 2 == 0:
            raise ValueError(f"fc6_kernel_size must be odd (paper: 7), got {fc6_kernel_size}")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.channels = list(channels)

        # Encoder: VGG16's five blocks; block b ends in pool b at 1/2**b of the input size.
        block_in = [in_channels, *channels[:-1]]  # [3, 64, 128, 256, 512]
        self.block1, self.block2, self.block3, self.block4, self.block5 = (
            VGGBlock(block, c_in, c_out, num_convs, batch_norm)
            for block, c_in, c_out, num_convs in zip(range(1, 6), block_in, channels, VGG16_CONVS)
        )
        self.fc = FullyConvolutional(channels[4], fc_channels, fc6_kernel_size, dropout)

        # Scores: a 1x1 convolution turns features into one score per class at strides 32, 16 and 8.
        self.score_fr = nn.Conv2d(fc_channels, num_classes, kernel_size=1)
        self.score_pool4 = nn.Conv2d(channels[3], num_classes, kernel_size=1)
        self.score_pool3 = nn.Conv2d(channels[2], num_classes, kernel_size=1)

        # Upsampling: bilinear at the start; the two x2 steps learn, the final x8 step stays fixed.
        self.upscore2 = bilinear_upsampling(num_classes, factor=2, trainable=True)
        self.upscore_pool4 = bilinear_upsampling(num_classes, factor=2, trainable=True)
        self.upscore8 = bilinear_upsampling(num_classes, factor=8, trainable=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images (N, in_channels, H, W) -> logits (N, num_classes, H, W)``; K = num_classes below."""
        check_images(images, self.in_channels)
        # 1) encoder (sizes round up: H/8 means ceil(H/8))
        pool1 = self.block1(images)  # (N, 64, H/2, W/2)   with the paper's channels
        pool2 = self.block2(pool1)  # (N, 128, H/4, W/4)
        pool3 = self.block3(pool2)  # (N, 256, H/8, W/8)
        pool4 = self.block4(pool3)  # (N, 512, H/16, W/16)
        pool5 = self.block5(pool4)  # (N, 512, H/32, W/32)
        fc7 = self.fc(pool5)  # (N, 4096, H/32, W/32)

        # 2) scores at stride 32, fused with pool4's scores at stride 16
        score_fr = self.score_fr(fc7)  # (N, K, H/32, W/32)
        height, width = pool4.shape[-2:]
        upscore2 = self.upscore2(score_fr)[..., :height, :width]  # (N, K, H/16, W/16) cropped to pool4's size
        fuse_pool4 = upscore2 + self.score_pool4(pool4)  # (N, K, H/16, W/16)

        # 3) fused with pool3's scores at stride 8
        height, width = pool3.shape[-2:]
        upscore_pool4 = self.upscore_pool4(fuse_pool4)[..., :height, :width]  # (N, K, H/8, W/8)
        fuse_pool3 = upscore_pool4 + self.score_pool3(pool3)  # (N, K, H/8, W/8)

        # 4) back to the input size
        height, width = images.shape[-2:]
        return self.upscore8(fuse_pool3)[..., :height, :width]  # (N, K, H, W)

    def describe(self) -> list[Stage]:
        """The named stages of this FCN-8s, in forward order, for architecture diagrams."""
        k = self.num_classes
        stages = [
            Stage(f"pool{b}", f"block{b}", "encoder", c, 2**b, (f"pool{b - 1}" if b > 1 else "images",),
                  f"{n} 3x3 convolutions, 2x2 max-pool")
            for b, c, n in zip(range(1, 6), self.channels, VGG16_CONVS)
        ]  # fmt: skip
        fc6 = self.fc.fc6
        return stages + [
            Stage("fc7", "fc", "encoder", fc6.out_channels, 32, ("pool5",),
                  f"fc6 as a {fc6.kernel_size[0]}x{fc6.kernel_size[0]} convolution, fc7 as a 1x1 convolution"),
            Stage("score_fr", "score_fr", "score", k, 32, ("fc7",), "1x1 convolution: class scores at stride 32"),
            Stage("upscore2", "upscore2", "upsample", k, 16, ("score_fr",), "x2 transposed convolution (learned)"),
            Stage("score_pool4", "score_pool4", "score", k, 16, ("pool4",), "1x1 convolution: scores at stride 16"),
            Stage("fuse_pool4", "", "fuse", k, 16, ("upscore2", "score_pool4"), "sum"),
            Stage("upscore_pool4", "upscore_pool4", "upsample", k, 8, ("fuse_pool4",),
                  "x2 transposed convolution (learned)"),
            Stage("score_pool3", "score_pool3", "score", k, 8, ("pool3",), "1x1 convolution: scores at stride 8"),
            Stage("fuse_pool3", "", "fuse", k, 8, ("upscore_pool4", "score_pool3"), "sum"),
            Stage("upscore8", "upscore8", "upsample", k, 1, ("fuse_pool3",),
                  "x8 transposed convolution (fixed bilinear)"),
        ]  # fmt: skip
