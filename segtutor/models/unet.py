"""UNet: an encoder that halves the image four times, a decoder that climbs back, and skips that carry detail across.

Ronneberger, Fischer, Brox (2015), "U-Net: Convolutional Networks for Biomedical Image Segmentation",
https://arxiv.org/abs/1505.04597
"""

from __future__ import annotations

import torch
from torch import nn

from segtutor.models.contract import Stage, TrainingDefaults, check_channels, check_images


class DoubleConv(nn.Sequential):
    """Two 3x3 convolutions, each followed by a ReLU (and batch norm before it, if asked): one UNet level.

    ``(N, in_channels, H, W) -> (N, out_channels, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int, batch_norm: bool) -> None:
        layers: list[nn.Module] = []
        for conv_in in (in_channels, out_channels):
            # padding=1 keeps H and W; batch norm brings its own shift, so the convolution drops its bias
            layers.append(nn.Conv2d(conv_in, out_channels, kernel_size=3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class Down(nn.Sequential):
    """2x2 max-pool (halves H and W), then a :class:`DoubleConv`: one step down the contracting path.

    ``(N, in_channels, H, W) -> (N, out_channels, ceil(H/2), ceil(W/2))``.
    """

    def __init__(self, in_channels: int, out_channels: int, batch_norm: bool) -> None:
        # ceil_mode: an odd row or column at the border is pooled on its own instead of dropped
        super().__init__(
            nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True),
            DoubleConv(in_channels, out_channels, batch_norm),
        )


UPSAMPLINGS = ("transposed", "resize")  # how a decoder step doubles the size


def up_step(in_channels: int, out_channels: int, upsampling: str) -> nn.Module:
    """Double H and W and change the channels: ``(N, in_channels, h, w) -> (N, out_channels, 2h, 2w)``.

    ``"transposed"``: the paper's 2x2 up-convolution (a transposed convolution with stride 2, learned).
    ``"resize"``: resize-convolution, nearest-neighbour x2 then a 3x3 convolution (Odena et al. 2016,
    https://distill.pub/2016/deconv-checkerboard/): every output pixel gets its value the same way, so no
    stride-periodic checkerboard can be painted in.
    """
    if upsampling == "transposed":
        return nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
    )


class Up(nn.Module):
    """Upsampling, concatenation with the skip, then a :class:`DoubleConv`: one step up the expanding path.

    ``x (N, in_channels, h, w)`` and ``skip (N, skip_channels, H, W)`` with ``H <= 2h, W <= 2w``
    ``-> (N, out_channels, H, W)``. With ``skip=False`` the skip's maps are not concatenated (only its size is
    used): the decoder then has nothing but the coarse maps from below, for the ablation in notebook 05.
    """

    def __init__(
        self,
        in_channels: int,
        skip_channels: int,
        out_channels: int,
        batch_norm: bool,
        skip: bool = True,
        upsampling: str = "transposed",
    ) -> None:
        super().__init__()
        self.skip = skip
        # the paper's up-convolution halves the channels: in_channels -> skip_channels
        self.up = up_step(in_channels, skip_channels, upsampling)
        self.conv = DoubleConv(2 * skip_channels if skip else skip_channels, out_channels, batch_norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        height, width = skip.shape[-2:]
        x = self.up(x)  # (N, skip_channels, 2h, 2w)
        x = x[..., :height, :width]  # (N, skip_channels, H, W): the skip's size (an odd H drops the extra row)
        if self.skip:
            x = torch.cat([skip, x], dim=1)  # (N, 2 * skip_channels, H, W)
        return self.conv(x)  # (N, out_channels, H, W)


class UNet(nn.Module):
    """UNet (Ronneberger et al. 2015, https://arxiv.org/abs/1505.04597).

    Five levels of :class:`DoubleConv` with ``channels[l]`` feature maps at ``1/2**l`` of the input size. The
    decoder upsamples with 2x2 up-convolutions and concatenates the encoder's feature map of the same level (the
    skip connection), then a 1x1 convolution gives one score per class and pixel.

    The paper used unpadded convolutions and cropped the skips, so its output was smaller than its input; here
    every 3x3 convolution has padding=1 and the output has the input's size. The parameter count is identical.
    Pooling rounds odd sizes up and each upsampled map is cropped to its skip's size, so any H, W >= 32 works.
    With ``channels=[64, 128, 256, 512, 1024]`` and ``batch_norm=False`` this is the paper's layout and weight
    count (the paper also applies dropout at the end of the contracting path, which holds no weights and is left
    out here). Batch norm adds one number per channel of each 3x3 convolution: its scale and shift replace the
    convolution's bias.

    Two switches serve ablation experiments; their defaults are the paper's: ``skips=False`` drops the skip
    connections (the decoder sees only what comes up from below), ``upsampling="resize"`` replaces the 2x2
    up-convolutions by nearest-neighbour resizing and a 3x3 convolution.

    Args:
        in_channels: channels of the input images (3 for RGB).
        num_classes: classes to score per pixel.
        channels: feature maps per level, top (full resolution) to bottom; each level usually doubles.
        batch_norm: add batch norm after every 3x3 convolution (not in the paper; makes small models train faster).
        skips: concatenate the encoder's map of the same level in every decoder step (the paper: True).
        upsampling: ``"transposed"`` (the paper's 2x2 up-convolution) or ``"resize"`` (resize-convolution).

    Shapes:
        ``images (N, in_channels, H, W)`` with H, W >= 32 ``-> logits (N, num_classes, H, W)``.

    Example:
        >>> model = UNet(in_channels=3, num_classes=2, channels=[8, 16, 32, 64, 128], batch_norm=True)
        >>> model(torch.rand(1, 3, 64, 64)).shape
        torch.Size([1, 2, 64, 64])
    """

    # Recommended training settings (TrainConfig fields left at None), measured on the small size with Adam and the
    # cosine schedule on 256 generated tiles, scored on tiles of another seed (2 CPU threads, torch 2.13):
    # - lr 3e-3: tumor IoU after 600 images seen 0.888 (2e-3 0.882, 5e-3 0.888, 1e-2 0.844; 1e-3 0.878 after 880);
    #   0.900 after 800 images. On the real skin slide (4 classes, 128-px crops) 60 s (1549 steps) reached mean IoU
    #   0.89, every class >= 0.83. Glass is found late (IoU 0.00 after 400 steps, 0.94 after 600), which is why the
    #   old defaults (lr 1e-3, batch 8, NCHW: about 330 steps in 60 s) never found it.
    # - batch 4: per image seen it beat batch 8 (0.909 vs 0.888 after 720 images) and batch 2 (0.886 at 3e-3 after
    #   600) at about the same images per second.
    # - channels_last on the CPU: a train step +55 % (batch 4) and +34 % (batch 8) faster than NCHW.
    # A Dice term (loss="cross_entropy+dice") was neutral on the tiles (0.884 after 600 images) but found the
    # skin slide's glass far sooner (IoU 0.74 after 200 steps; mean IoU 0.84 after 300). A run whose data has a rare
    # class gets it without asking, with class weights (segtutor.train.losses.choose_loss): on a machine that takes
    # only ~420 steps in 60 s, cross-entropy alone left the corneum at 0.00 (seed 0); the chosen loss gave mean IoU
    # 0.84 / 0.81 / 0.88 on seeds 0-2, every class >= 0.61.
    training_defaults = TrainingDefaults(lr=3e-3, batch_size=4, channels_last_on_cpu=True)

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 2,
        channels: list[int] | tuple[int, ...] = (64, 128, 256, 512, 1024),
        batch_norm: bool = False,
        skips: bool = True,
        upsampling: str = "transposed",
    ) -> None:
        super().__init__()
        check_channels(in_channels, num_classes)
        if len(channels) != 5:
            raise ValueError(f"UNet has five levels, so channels needs five numbers, got {list(channels)}")
        if upsampling not in UPSAMPLINGS:
            raise ValueError(f"unknown upsampling {upsampling!r}; available options are: {', '.join(UPSAMPLINGS)}")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.channels = list(channels)
        self.skips = skips
        self.upsampling = upsampling

        # Encoder (contracting path): level 0 at full resolution, then max-pool + two convolutions 4 times.
        self.encoder = nn.ModuleList([DoubleConv(in_channels, channels[0], batch_norm)])
        for level_in, level_out in zip(channels[:-1], channels[1:]):
            self.encoder.append(Down(level_in, level_out, batch_norm))

        # Decoder (expanding path), deepest block first. With the paper's channels:
        in_chs = self.channels[1:][::-1]  # [1024, 512, 256, 128]  coming up from the level below
        skip_chs = self.channels[:-1][::-1]  # [512, 256, 128, 64]  the encoder's map at the same level
        out_chs = skip_chs  # [512, 256, 128, 64]  after the block's two convolutions
        self.decoder = nn.ModuleList(
            Up(in_ch, skip_ch, out_ch, batch_norm, skips, upsampling)
            for in_ch, skip_ch, out_ch in zip(in_chs, skip_chs, out_chs)
        )

        self.classifier = nn.Conv2d(channels[0], num_classes, kernel_size=1)  # one score per class and pixel

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images (N, in_channels, H, W) -> logits (N, num_classes, H, W)``."""
        check_images(images, self.in_channels)
        features = []
        x = images
        for block in self.encoder:
            x = block(x)  # level l: (N, channels[l], H/2**l, W/2**l)
            features.append(x)
        x = features.pop()  # bottom of the U: (N, channels[4], H/16, W/16)
        for block, skip in zip(self.decoder, reversed(features)):
            x = block(x, skip)  # up one level: (N, channels[l], H/2**l, W/2**l), l = 3, 2, 1, 0
        return self.classifier(x)  # (N, num_classes, H, W)

    def describe(self) -> list[Stage]:
        """The named stages of this UNet, in forward order, for architecture diagrams."""
        stages = []
        for level, out_ch in enumerate(self.channels):
            stages.append(
                Stage(
                    name=f"enc{level}",
                    module=f"encoder.{level}",
                    kind="bottleneck" if level == 4 else "encoder",
                    out_channels=out_ch,
                    stride=2**level,
                    inputs=(f"enc{level - 1}",) if level else ("images",),
                    note="two 3x3 convolutions" if level == 0 else "2x2 max-pool, two 3x3 convolutions",
                )
            )
        below = "enc4"
        up = "2x2 up-convolution" if self.upsampling == "transposed" else "nearest x2 and a 3x3 convolution"
        for index, level in enumerate(range(3, -1, -1)):
            skip = f", concatenate skip from enc{level}" if self.skips else ""
            stages.append(
                Stage(
                    name=f"dec{level}",
                    module=f"decoder.{index}",
                    kind="decoder",
                    out_channels=self.channels[level],
                    stride=2**level,
                    inputs=(below, f"enc{level}") if self.skips else (below,),
                    note=f"{up}{skip}, two 3x3 convolutions",
                )
            )
            below = f"dec{level}"
        stages.append(
            Stage("classifier", "classifier", "classifier", self.num_classes, 1, ("dec0",), "1x1 convolution")
        )
        return stages
