"""The model contract, for every registered model: shapes, odd sizes, gradients, errors, and the papers' sizes."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import cpu_and_cuda
from torch import nn
from torch.nn import functional as F

from segtutor.models import (
    COURSE_ASPP_RATES,
    MODELS,
    DeepLabV3,
    DeepLabV3Plus,
    FCN8s,
    UNet,
    aspp_rates_for_tile,
    count_parameters,
    create_model,
    list_models,
    list_sizes,
    paper_aspp_rates,
)
from segtutor.models.deeplabv3 import window_mean
from segtutor.models.fcn import bilinear_kernel, bilinear_upsampling


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The first convolution the images meet."""
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))


# --------------------------------------------------------------------------------------------------------------
# The contract: (N, in_channels, H, W) -> (N, num_classes, H, W), any H, W >= 32
# --------------------------------------------------------------------------------------------------------------


def test_registry():
    assert list_models() == ["unet", "fcn8s", "deeplabv3", "deeplabv3plus"]
    assert {"small", "paper"} <= set(list_sizes())
    for name, cls in [("unet", UNet), ("fcn8s", FCN8s), ("deeplabv3", DeepLabV3), ("deeplabv3plus", DeepLabV3Plus)]:
        assert MODELS[name] is cls
        assert type(create_model(name)) is cls


@pytest.mark.parametrize("device", cpu_and_cuda())
@pytest.mark.parametrize("size", [(32, 32), (33, 47), (64, 65)])
@pytest.mark.parametrize("name", list_models())
def test_forward_backward(name, size, device):
    model = create_model(name, in_channels=3, num_classes=3).to(device)
    images = torch.rand(2, 3, *size, device=device)
    logits = model(images)
    assert type(logits) is torch.Tensor
    assert logits.shape == (2, 3, *size)
    assert logits.dtype == torch.float32 and logits.device.type == device
    assert torch.isfinite(logits).all()

    masks = torch.randint(0, 3, (2, *size), device=device)
    F.cross_entropy(logits, masks).backward()
    for param_name, param in model.named_parameters():
        if param.requires_grad:
            assert param.grad is not None, f"{param_name} got no gradient"
            assert torch.isfinite(param.grad).all(), param_name
    # the gradient travels all the way back to the first layer
    assert first_conv(model).weight.grad.abs().sum() > 0


@pytest.mark.parametrize("num_classes", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("name", list_models())
def test_in_channels_and_num_classes(name, in_channels, num_classes):
    model = create_model(name, in_channels=in_channels, num_classes=num_classes, size="tiny")
    assert first_conv(model).in_channels == in_channels
    logits = model(torch.rand(2, in_channels, 32, 40))
    assert logits.shape == (2, num_classes, 32, 40)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("size", ["tiny", "medium"])  # "small" is the default, tested above
@pytest.mark.parametrize("name", list_models())
def test_other_trainable_sizes_run(name, size):
    model = create_model(name, size=size)
    logits = model(torch.rand(2, 3, 37, 32))
    assert logits.shape == (2, 2, 37, 32)
    logits.sum().backward()
    assert first_conv(model).weight.grad.abs().sum() > 0


@pytest.mark.parametrize("device", cpu_and_cuda())
@pytest.mark.parametrize("name", list_models())
def test_eval_mode_batch_of_one_and_channels_last(name, device):
    model = create_model(name).to(device).eval()
    images = torch.rand(1, 3, 48, 41, device=device)
    with torch.no_grad():
        logits = model(images)
        logits_channels_last = model.to(memory_format=torch.channels_last)(
            images.to(memory_format=torch.channels_last)
        )
    assert logits.shape == (1, 2, 48, 41)
    torch.testing.assert_close(logits_channels_last, logits, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", list_models())
def test_small_models_train_on_a_batch_of_one(name):
    # a last incomplete batch may hold a single image: the default sizes must cope in training mode
    model = create_model(name).train()
    assert model(torch.rand(1, 3, 32, 32)).shape == (1, 2, 32, 32)


def test_same_input_same_output_in_eval_mode():
    model = create_model("fcn8s").eval()  # eval: dropout off
    images = torch.rand(2, 3, 40, 40)
    with torch.no_grad():
        torch.testing.assert_close(model(images), model(images))


# --------------------------------------------------------------------------------------------------------------
# Clear errors
# --------------------------------------------------------------------------------------------------------------


def test_unknown_model_lists_the_valid_names():
    with pytest.raises(ValueError, match="unknown model 'segnet'") as error:
        create_model("segnet")
    for name in list_models():
        assert name in str(error.value)


def test_unknown_size_lists_the_valid_sizes():
    with pytest.raises(ValueError, match="unknown size 'huge'") as error:
        create_model("unet", size="huge")
    for size in list_sizes():
        assert size in str(error.value)


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize(
    "argument, value", [("in_channels", 0), ("num_classes", 0), ("num_classes", -2), ("in_channels", 2.0)]
)
def test_bad_channel_arguments(name, argument, value):
    with pytest.raises(ValueError, match=f"{argument} must be an integer >= 1, got {value!r}"):
        create_model(name, **{argument: value})


@pytest.mark.parametrize("name", list_models())
def test_bad_images(name):
    model = create_model(name)
    with pytest.raises(ValueError, match=r"need H and W >= 32"):
        model(torch.rand(2, 3, 31, 64))
    with pytest.raises(ValueError, match=r"need H and W >= 32"):
        model(torch.rand(2, 3, 64, 16))
    with pytest.raises(ValueError, match=r"in_channels=3, got images with 1 channels"):
        model(torch.rand(2, 1, 64, 64))
    with pytest.raises(ValueError, match=r"unsqueeze\(0\)"):
        model(torch.rand(3, 64, 64))
    with pytest.raises(TypeError, match="floating point"):
        model(torch.zeros(2, 3, 64, 64, dtype=torch.uint8))
    with pytest.raises(TypeError, match="torch.Tensor"):
        model([[0.0]])


def test_deeplab_pooling_batch_norm_needs_two_images_in_training():
    model = DeepLabV3(block="basic", layers=[1, 1, 1, 1], width=8, aspp_channels=8, pooling_batch_norm=True)
    with pytest.raises(ValueError, match=r"batch_size >= 2 \(got 1\)"):
        model.train()(torch.rand(1, 3, 32, 32))
    assert model.eval()(torch.rand(1, 3, 32, 32)).shape == (1, 2, 32, 32)


def brute_window_mean(x: torch.Tensor, dim: int, window: int) -> torch.Tensor:
    """The window around each position, shifted inside the map, averaged one position at a time."""
    n = x.shape[dim]
    size = n if window == 0 else min(window, n)
    means = [x.narrow(dim, min(max(i - size // 2, 0), n - size), size).mean(dim, keepdim=True) for i in range(n)]
    return torch.cat(means, dim)


@pytest.mark.parametrize("window", [0, 1, 4, 5, 7, 30])
def test_window_mean_matches_a_brute_force_mean(window):
    x = torch.randn(2, 3, 20, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for dim in (2, 3):
        torch.testing.assert_close(window_mean(x, dim, torch.tensor(window)), brute_window_mean(x, dim, window))


def test_deeplab_image_pooling_averages_the_training_window_when_predicting_a_larger_image():
    torch.manual_seed(0)
    model = DeepLabV3(block="basic", layers=[1, 1, 1, 1], width=8, aspp_channels=8, output_stride=8)
    pooling = model.head.aspp.convs[-1]
    assert pooling.window.tolist() == [0, 0]  # untrained: the whole map
    model.train()(torch.rand(2, 3, 64, 48))
    assert pooling.window.tolist() == [8, 6]  # the training map at stride 8, saved with the weights
    assert "head.aspp.convs.4.window" in model.state_dict()
    pooling.eval()
    features = torch.randn(1, pooling[1].in_channels, 30, 20)
    conv, norm = pooling[1], pooling[2]
    local = brute_window_mean(brute_window_mean(features, 2, 8), 3, 6)
    torch.testing.assert_close(pooling(features), F.relu(norm(conv(local))))
    # a map no larger than the training maps is averaged whole, exactly as in training
    small = features[..., :8, :6]
    whole = F.relu(norm(conv(small.mean(dim=(2, 3), keepdim=True)))).expand(-1, -1, 8, 6)
    torch.testing.assert_close(pooling(small), whole)


def test_deeplab_weights_saved_before_the_pooling_window_still_load():
    model = DeepLabV3(block="basic", layers=[1, 1, 1, 1], width=8, aspp_channels=8)
    state = {key: value for key, value in model.state_dict().items() if not key.endswith("window")}
    model.load_state_dict(state)  # strict: the missing window is "none yet", the whole map
    assert model.head.aspp.convs[-1].window.tolist() == [0, 0]


def test_bad_architecture_arguments():
    with pytest.raises(ValueError, match="output_stride must be 16 or 8, got 32"):
        DeepLabV3(output_stride=32)
    with pytest.raises(ValueError, match="five numbers"):
        UNet(channels=[8, 16, 32])
    with pytest.raises(ValueError, match="fc6_kernel_size must be odd"):
        FCN8s(fc6_kernel_size=4)
    with pytest.raises(ValueError, match="unknown block 'dense'"):
        DeepLabV3(block="dense")
    with pytest.raises(ValueError, match="output_stride must be 16 or 8, got 4"):
        DeepLabV3Plus(output_stride=4)
    with pytest.raises(ValueError, match="four numbers"):
        DeepLabV3Plus(layers=[2, 2])


# --------------------------------------------------------------------------------------------------------------
# The architectures are the papers': parameter counts derived from the papers' layer descriptions
# --------------------------------------------------------------------------------------------------------------


def test_unet_paper_parameter_count():
    # Ronneberger et al., Fig. 1 and Sec. 2: a 1-channel image, two 3x3 convolutions per level (with bias),
    # 64 -> 1024 channels; up-convolutions are 2x2 and halve the channels; the concatenated skip doubles them
    # back; a final 1x1 convolution to 2 classes. A k x k convolution cin -> cout has k*k*cin*cout + cout numbers.
    encoder = (
        (3 * 3 * 1 * 64 + 64) + (3 * 3 * 64 * 64 + 64)  # level 0
        + (3 * 3 * 64 * 128 + 128) + (3 * 3 * 128 * 128 + 128)  # level 1
        + (3 * 3 * 128 * 256 + 256) + (3 * 3 * 256 * 256 + 256)  # level 2
        + (3 * 3 * 256 * 512 + 512) + (3 * 3 * 512 * 512 + 512)  # level 3
        + (3 * 3 * 512 * 1024 + 1024) + (3 * 3 * 1024 * 1024 + 1024)  # level 4, the bottom
    )  # fmt: skip
    decoder = (
        (2 * 2 * 1024 * 512 + 512) + (3 * 3 * 1024 * 512 + 512) + (3 * 3 * 512 * 512 + 512)  # up to level 3
        + (2 * 2 * 512 * 256 + 256) + (3 * 3 * 512 * 256 + 256) + (3 * 3 * 256 * 256 + 256)  # up to level 2
        + (2 * 2 * 256 * 128 + 128) + (3 * 3 * 256 * 128 + 128) + (3 * 3 * 128 * 128 + 128)  # up to level 1
        + (2 * 2 * 128 * 64 + 64) + (3 * 3 * 128 * 64 + 64) + (3 * 3 * 64 * 64 + 64)  # up to level 0
    )  # fmt: skip
    classifier = 1 * 1 * 64 * 2 + 2
    model = create_model("unet", in_channels=1, num_classes=2, size="paper")
    assert count_parameters(model) == encoder + decoder + classifier
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # the paper had no batch norm


def test_unet_paper_runs_at_the_minimum_size():
    model = create_model("unet", in_channels=1, num_classes=2, size="paper")
    logits = model(torch.rand(1, 1, 32, 32))
    assert logits.shape == (1, 2, 32, 32)
    assert torch.isfinite(logits).all()


def test_fcn8s_paper_parameter_count():
    # Long et al. Sec. 3-4 and their Caffe model, on PASCAL VOC (21 classes): VGG16 configuration D
    # (Simonyan & Zisserman 2015, Table 1) with 3x3 convolutions (bias) in blocks of 2, 2, 3, 3, 3;
    # fc6 becomes a 7x7 convolution 512 -> 4096, fc7 a 1x1 convolution 4096 -> 4096; 1x1 score layers on fc7,
    # pool4 and pool3 (with bias); three bias-free transposed convolutions K -> K: 4x4 (x2), 4x4 (x2), 16x16 (x8).
    k = 21
    vgg16 = (
        (3 * 3 * 3 * 64 + 64) + (3 * 3 * 64 * 64 + 64)  # block 1
        + (3 * 3 * 64 * 128 + 128) + (3 * 3 * 128 * 128 + 128)  # block 2
        + (3 * 3 * 128 * 256 + 256) + 2 * (3 * 3 * 256 * 256 + 256)  # block 3
        + (3 * 3 * 256 * 512 + 512) + 2 * (3 * 3 * 512 * 512 + 512)  # block 4
        + 3 * (3 * 3 * 512 * 512 + 512)  # block 5
    )  # fmt: skip
    fc6_fc7 = (7 * 7 * 512 * 4096 + 4096) + (1 * 1 * 4096 * 4096 + 4096)
    scores = (4096 * k + k) + (512 * k + k) + (256 * k + k)  # score_fr, score_pool4, score_pool3
    learned_upsampling = 2 * (4 * 4 * k * k)  # upscore2, upscore_pool4
    fixed_upsampling = 16 * 16 * k * k  # upscore8, fixed to bilinear interpolation
    model = create_model("fcn8s", in_channels=3, num_classes=k, size="paper")
    assert count_parameters(model) == vgg16 + fc6_fc7 + scores + learned_upsampling + fixed_upsampling
    assert count_parameters(model, trainable_only=True) == vgg16 + fc6_fc7 + scores + learned_upsampling
    assert model.fc.drop6.p == model.fc.drop7.p == 0.5


# Chen et al. 2017, Sec. 3-4: ResNet-50 (He et al. 2016, Table 1) without its classifier, every convolution
# bias-free and followed by batch norm (2 learned numbers per channel: scale and shift).
def conv_bn(cin: int, cout: int, k: int) -> int:
    return k * k * cin * cout + 2 * cout


def bottleneck(cin: int, width: int, projection: bool) -> int:  # 1x1 -> 3x3 -> 1x1 (x4 channels), plus the shortcut
    shortcut = conv_bn(cin, 4 * width, 1) if projection else 0
    return conv_bn(cin, width, 1) + conv_bn(width, width, 3) + conv_bn(width, 4 * width, 1) + shortcut


RESNET50 = (
    conv_bn(3, 64, 7)  # stem
    + bottleneck(64, 64, True) + 2 * bottleneck(256, 64, False)  # layer1: 3 blocks, 256 out
    + bottleneck(256, 128, True) + 3 * bottleneck(512, 128, False)  # layer2: 4 blocks, 512 out
    + bottleneck(512, 256, True) + 5 * bottleneck(1024, 256, False)  # layer3: 6 blocks, 1024 out
    + bottleneck(1024, 512, True) + 2 * bottleneck(2048, 512, False)  # layer4: 3 blocks, 2048 out
)  # fmt: skip
# ASPP (Sec. 3.3): one 1x1 and three 3x3 convolutions with 256 filters and batch norm, image pooling with a 1x1
# convolution of 256 filters and batch norm, a 1x1 projection of the 5 x 256 concatenated maps with batch norm.
ASPP_PAPER = conv_bn(2048, 256, 1) + 3 * conv_bn(2048, 256, 3) + conv_bn(2048, 256, 1) + conv_bn(5 * 256, 256, 1)


def test_resnet50_count_agrees_with_torchvision():
    # An independent published number: torchvision documents resnet50 with num_params 25,557,032, which includes
    # the ImageNet classifier (2048 -> 1000, with bias) that a segmentation backbone drops.
    assert RESNET50 == 25_557_032 - (2048 * 1000 + 1000)
    assert count_parameters(create_model("deeplabv3", size="paper").backbone) == RESNET50


def test_deeplabv3_paper_parameter_count():
    classifier = 256 * 21 + 21  # the final 1x1 convolution (with bias) to the 21 PASCAL classes
    model = create_model("deeplabv3", in_channels=3, num_classes=21, size="paper")
    assert count_parameters(model) == RESNET50 + ASPP_PAPER + classifier


def test_deeplabv3plus_paper_parameter_count():
    # Chen et al. 2018, Sec. 3.1 and Table 1-2: the DeepLabv3 encoder (here its ResNet-50 at output stride 16),
    # then the decoder: the stride-4 features (layer1, 256 channels) reduced by a 1x1 convolution to 48, the
    # concatenation with the 256 upsampled ASPP maps refined by two 3x3 convolutions of 256, each with batch
    # norm, and a 1x1 classifier with bias. The paper's Xception backbone and separable convolutions are not
    # reproduced (see DeepLabV3Plus).
    decoder = conv_bn(256, 48, 1) + conv_bn(256 + 48, 256, 3) + conv_bn(256, 256, 3)
    classifier = 256 * 21 + 21
    model = create_model("deeplabv3plus", in_channels=3, num_classes=21, size="paper")
    assert count_parameters(model) == RESNET50 + ASPP_PAPER + decoder + classifier
    assert model.output_stride == 16 and model.head.aspp.rates == [6, 12, 18]


@pytest.mark.parametrize("size", list_sizes())
def test_deeplabv3plus_is_deeplabv3_plus_a_decoder(size):
    # the same backbone and ASPP at every size: the ablation "with and without the decoder" compares like with like
    with torch.device("meta"):
        plain, plus = create_model("deeplabv3", size=size), create_model("deeplabv3plus", size=size)
    assert count_parameters(plus.backbone) == count_parameters(plain.backbone)
    assert count_parameters(plus.head.aspp) == count_parameters(plain.head.aspp)
    assert plus.output_stride == plain.output_stride and plus.head.aspp.rates == plain.head.aspp.rates


def test_deeplabv3plus_decoder_fuses_stride_4_features():
    model = create_model("deeplabv3plus", size="tiny").eval()
    images = torch.rand(2, 3, 64, 48)
    seen = {}
    model.head.reduce.register_forward_hook(lambda m, i, o: seen.__setitem__("low", (i[0].shape, o.shape)))
    model.head.refine.register_forward_hook(lambda m, i, o: seen.__setitem__("refine", (i[0].shape, o.shape)))
    model.head.classifier.register_forward_hook(lambda m, i, o: seen.__setitem__("scores", o.shape))
    with torch.no_grad():
        logits = model(images)
    low_in, low_out = seen["low"]
    assert low_in == (2, 8, 16, 12) and low_out == (2, 6, 16, 12)  # layer1 at stride 4, reduced to 6 channels
    assert seen["refine"][0] == (2, 32 + 6, 16, 12)  # upsampled ASPP maps + low-level maps, concatenated
    assert seen["scores"] == (2, 2, 16, 12)  # class scores at stride 4
    # the last step is a plain bilinear x4 upsampling of those scores
    with torch.no_grad():
        scores = model.head(*backbone_features(model, images))
    torch.testing.assert_close(logits, F.interpolate(scores, size=(64, 48), mode="bilinear", align_corners=False))


def backbone_features(model: DeepLabV3Plus, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The backbone's last map and its stride-4 map (layer1), computed stage by stage."""
    backbone = model.backbone
    low_level = backbone.layer1(backbone.stem(images))
    return backbone.layer4(backbone.layer3(backbone.layer2(low_level))), low_level


# --------------------------------------------------------------------------------------------------------------
# UNet ablations: without skip connections, with resize-convolution
# --------------------------------------------------------------------------------------------------------------


def test_unet_without_skips_ignores_the_encoder_maps():
    model = UNet(channels=[4, 8, 16, 32, 64], batch_norm=True, skips=False).eval()
    assert [block.conv[0].in_channels for block in model.decoder] == [32, 16, 8, 4]  # no concatenation
    assert model(torch.rand(1, 3, 48, 40)).shape == (1, 2, 48, 40)
    with_skips = UNet(channels=[4, 8, 16, 32, 64], batch_norm=True).eval()
    x, skip = torch.rand(1, 8, 24, 20), torch.rand(1, 4, 47, 40)  # an odd skip: the upsampled map is cropped to it
    with torch.no_grad():
        # without skips a decoder step uses only the skip's size, not its content
        torch.testing.assert_close(model.decoder[3](x, skip), model.decoder[3](x, torch.zeros_like(skip)))
        assert model.decoder[3](x, skip).shape == (1, 4, 47, 40)
        assert not torch.allclose(with_skips.decoder[3](x, skip), with_skips.decoder[3](x, torch.zeros_like(skip)))
    assert "concatenate" not in " ".join(stage.note for stage in model.describe())
    assert all(len(stage.inputs) == 1 for stage in model.describe() if stage.kind == "decoder")


def test_unet_without_skips_has_fewer_weights_by_the_concatenated_channels():
    with_skips, without = UNet(channels=[4, 8, 16, 32, 64]), UNet(channels=[4, 8, 16, 32, 64], skips=False)
    # only the first 3x3 convolution of each decoder level changes: it sees skip_channels fewer inputs
    assert count_parameters(with_skips) - count_parameters(without) == sum(3 * 3 * c * c for c in [32, 16, 8, 4])


def test_unet_resize_convolution_upsamples_by_nearest_then_convolves():
    model = UNet(channels=[4, 8, 16, 32, 64], upsampling="resize").eval()
    up = model.decoder[0].up
    x = torch.rand(1, 64, 5, 6)
    with torch.no_grad():
        expected = up[1](x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3))  # nearest x2 = repeat pixels
        torch.testing.assert_close(up(x), expected)
    assert model(torch.rand(2, 3, 33, 47)).shape == (2, 2, 33, 47)
    # 3x3 convolutions in place of 2x2 up-convolutions: 9 instead of 4 weights per channel pair
    default = UNet(channels=[4, 8, 16, 32, 64])
    extra = sum((9 - 4) * c_in * c_out for c_in, c_out in [(64, 32), (32, 16), (16, 8), (8, 4)])
    assert count_parameters(model) - count_parameters(default) == extra
    with pytest.raises(ValueError, match="unknown upsampling 'bilinear'"):
        UNet(upsampling="bilinear")


def test_resize_convolution_covers_every_pixel_evenly_a_transposed_kernel_can_paint_a_checkerboard():
    # Odena et al. 2016: a constant input through a stride-2 transposed convolution with a 2x2 kernel whose
    # four weights differ gives a period-2 pattern; nearest resizing then a 3x3 convolution cannot.
    transposed = nn.ConvTranspose2d(1, 1, kernel_size=2, stride=2, bias=False)
    resize = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(1, 1, 3, padding=1, bias=False))
    with torch.no_grad():
        transposed.weight.copy_(torch.tensor([[[[1.0, 0.2], [0.5, 0.9]]]]))
        resize[1].weight.copy_(torch.rand(1, 1, 3, 3))
        ones = torch.ones(1, 1, 6, 6)
        painted, smooth = transposed(ones)[0, 0], resize(ones)[0, 0, 1:-1, 1:-1]  # inside the zero padding
    assert painted.unique().numel() == 4  # the kernel's four weights, repeated every 2 pixels
    assert smooth.unique().numel() == 1


def test_unet_channel_bookkeeping_follows_the_paper():
    model = create_model("unet", size="paper")
    ups = [(block.up.in_channels, block.up.out_channels) for block in model.decoder]
    assert ups == [(1024, 512), (512, 256), (256, 128), (128, 64)]  # each up-convolution halves the channels
    concat = [block.conv[0].in_channels for block in model.decoder]
    assert concat == [1024, 512, 256, 128]  # upsampled + skip, concatenated
    assert all(isinstance(block.up, nn.ConvTranspose2d) and block.up.kernel_size == (2, 2) for block in model.decoder)


@pytest.mark.parametrize(
    "output_stride, rates, strides, dilations",
    [(16, [6, 12, 18], [4, 8, 16, 16], [1, 1, 1, 2]), (8, [12, 24, 36], [4, 8, 8, 8], [1, 1, 2, 4])],
)
def test_deeplabv3_output_stride_and_atrous_rates(output_stride, rates, strides, dilations):
    model = DeepLabV3(block="basic", layers=[2, 2, 2, 2], width=8, output_stride=output_stride, aspp_channels=8)
    assert model.head.aspp.rates == rates
    assert [branch[0].dilation for branch in model.head.aspp.convs[1:4]] == [(r, r) for r in rates]
    assert model.backbone.strides == strides
    for stage, dilation in zip([model.backbone.layer1, model.backbone.layer2, model.backbone.layer3,
                                model.backbone.layer4], dilations):  # fmt: skip
        convs = [m for m in stage.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
        assert [conv.dilation for conv in convs] == [(dilation, dilation)] * 4  # 2 blocks x 2 convolutions
    with torch.no_grad():
        features = model.backbone(torch.rand(2, 3, 96, 80))
    assert features.shape == (2, 64, 96 // output_stride, 80 // output_stride)


def off_centre_taps_inside(rate: int, map_size: int) -> int:
    """How many of the two off-centre taps of every pixel of a row land inside a map of ``map_size`` (brute force)."""
    return sum(0 <= i + side * rate < map_size for i in range(map_size) for side in (-1, 1))


@pytest.mark.parametrize("tile_size", [96, 128, 192])
def test_rates_scaled_to_the_tile_reach_inside_the_map_as_the_papers_do(tile_size):
    paper_map, map_size = 513 // 8 + 1, tile_size // 8  # the paper's 65 x 65 map at output stride 8, and ours
    rates = aspp_rates_for_tile(tile_size)
    assert rates == sorted(set(rates)) and rates[0] >= 1
    for paper_rate, rate in zip([12, 24, 36], rates):
        paper_share = off_centre_taps_inside(paper_rate, paper_map) / (2 * paper_map)
        ours = off_centre_taps_inside(rate, map_size) / (2 * map_size)
        assert ours == pytest.approx(paper_share, abs=0.12), (rate, paper_rate)
        assert off_centre_taps_inside(paper_rate, map_size) < off_centre_taps_inside(rate, map_size)
    assert off_centre_taps_inside(36, 96 // 8) == 0  # the paper's rates on a 96-pixel tile: padding only


@pytest.mark.parametrize("name", ["deeplabv3", "deeplabv3plus"])
def test_the_course_sizes_keep_their_atrous_taps_on_a_training_tile_and_the_paper_size_takes_the_papers(name):
    map_size = 128 // 8  # the course's largest training tile at output stride 8
    for size in ("tiny", "small", "medium"):
        with torch.device("meta"):
            rates = create_model(name, size=size).aspp_rates
        assert rates == list(COURSE_ASPP_RATES) == sorted(set(rates))
        for rate in rates:  # more than half of a row's pixels see tissue with both far taps
            both = sum(0 <= i - rate and i + rate < map_size for i in range(map_size))  # brute force
            assert both > map_size / 2, rate
    largest = aspp_rates_for_tile(128)[-1]  # the paper's rates scaled to the tile keep its reach, and its padding:
    assert not any(0 <= i - largest and i + largest < map_size for i in range(map_size))  # no pixel sees both
    with torch.device("meta"):
        assert create_model(name, size="paper").aspp_rates == paper_aspp_rates(16) == [6, 12, 18]


@pytest.mark.parametrize("name", ["deeplabv3", "deeplabv3plus"])
def test_create_model_takes_aspp_rates_which_change_no_weight(name):
    plain = create_model(name, size="tiny", seed=0)
    scaled = create_model(name, size="tiny", seed=0, aspp_rates=[2, 4, 7])
    assert plain.aspp_rates == list(COURSE_ASPP_RATES) and scaled.aspp_rates == [2, 4, 7]
    assert [branch[0].dilation for branch in scaled.head.aspp.convs[1:4]] == [(2, 2), (4, 4), (7, 7)]
    assert [branch[0].padding for branch in scaled.head.aspp.convs[1:4]] == [(2, 2), (4, 4), (7, 7)]  # size kept
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), scaled.state_dict().values()))
    images = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        assert scaled(images).shape == (2, 2, 96, 96) and not torch.allclose(plain(images), scaled(images))


@pytest.mark.parametrize("rates, words", [([2, 4], "three"), ([0, 2, 4], ">= 1"), ([2.5, 4, 7], "whole")])
def test_bad_aspp_rates_say_what_is_expected(rates, words):
    with pytest.raises(ValueError, match=words):
        create_model("deeplabv3", size="tiny", aspp_rates=rates)
    with pytest.raises(ValueError, match="has none"):
        create_model("unet", size="tiny", aspp_rates=[2, 4, 7])


def test_fcn8s_fuses_pool3_pool4_and_fc7_scores():
    # with zeroed pool4 and pool3 score layers the network reduces to upsampling the fc7 scores (FCN-32s-like)
    model = create_model("fcn8s", size="tiny").eval()
    images = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        for layer in (model.score_pool4, model.score_pool3):
            layer.weight.zero_()
            layer.bias.zero_()
        logits = model(images)
        pool5 = model.block5(model.block4(model.block3(model.block2(model.block1(images)))))
        score_fr = model.score_fr(model.fc(pool5))  # (1, K, 2, 2)
        expected = model.upscore8(model.upscore_pool4(model.upscore2(score_fr)))
    torch.testing.assert_close(logits, expected)


# --------------------------------------------------------------------------------------------------------------
# FCN-8s upsampling starts as bilinear interpolation
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("factor", [2, 8])
def test_transposed_convolution_is_bilinear_interpolation(factor):
    # Output pixel o of the transposed convolution (kernel 2f, stride f, padding f/2) sits at input coordinate
    # x = (o + 0.5) / f - 0.5, exactly where interpolate(align_corners=False) samples, and its weights are
    # 1 - |x - i| for the two nearest inputs i. They agree wherever 0 <= x <= n - 1, i.e. for
    # f/2 <= o <= n*f - f/2 - 1. Outside, interpolate repeats the edge pixel and the convolution sees zeros.
    n_h, n_w = 5, 7
    x = torch.randn(2, 3, n_h, n_w)
    up = bilinear_upsampling(3, factor, trainable=True)
    with torch.no_grad():
        conv_out = up(x)
    interp = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
    assert conv_out.shape == interp.shape == (2, 3, n_h * factor, n_w * factor)

    lo = factor // 2
    interior = (..., slice(lo, n_h * factor - lo), slice(lo, n_w * factor - lo))
    torch.testing.assert_close(conv_out[interior], interp[interior])
    assert not torch.allclose(conv_out[..., 0, :], interp[..., 0, :])  # the border differs

    # everywhere: the same as interpolating the input padded with one ring of zeros, shifted by one input pixel
    padded = F.interpolate(F.pad(x, (1, 1, 1, 1)), scale_factor=factor, mode="bilinear", align_corners=False)
    torch.testing.assert_close(conv_out, padded[..., factor:-factor, factor:-factor])


def test_bilinear_kernel_is_separable_tent_per_channel():
    weight = bilinear_kernel(channels=2, factor=2)
    tent = torch.tensor([0.25, 0.75, 0.75, 0.25])
    torch.testing.assert_close(weight[0, 0], torch.outer(tent, tent))
    torch.testing.assert_close(weight[1, 1], torch.outer(tent, tent))
    assert weight[0, 1].abs().sum() == 0 and weight[1, 0].abs().sum() == 0  # channels do not mix


def test_fcn8s_upsampling_layers_start_bilinear():
    k = 3
    model = create_model("fcn8s", num_classes=k)
    layers = [(model.upscore2, 2, True), (model.upscore_pool4, 2, True), (model.upscore8, 8, False)]
    for layer, factor, trainable in layers:
        assert layer.bias is None and layer.stride == (factor, factor)
        assert layer.weight.requires_grad is trainable  # the paper learns the x2 steps and fixes the x8 one
        x = torch.randn(1, k, 4, 6)
        with torch.no_grad():
            out = layer(x)
        lo = factor // 2
        interp = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
        torch.testing.assert_close(out[..., lo:-lo, lo:-lo], interp[..., lo:-lo, lo:-lo])


# --------------------------------------------------------------------------------------------------------------
# Named stages for the architecture diagrams
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list_models())
def test_describe_stages_match_the_real_outputs(name):
    model = create_model(name).eval()
    stages = model.describe()
    modules = dict(model.named_modules())
    seen = {"images"}
    outputs = {}
    handles = []
    for stage in stages:
        assert set(stage.inputs) <= seen, f"{stage.name} is fed by a stage that comes later"
        seen.add(stage.name)
        if stage.module:
            handles.append(modules[stage.module].register_forward_hook(
                lambda m, i, o, key=stage.name: outputs.__setitem__(key, o.shape)))  # fmt: skip
    size = 64
    with torch.no_grad():
        model(torch.rand(2, 3, size, size))
    for handle in handles:
        handle.remove()
    for stage in stages:
        if stage.module:
            n, channels, height, width = outputs[stage.name]
            assert channels == stage.out_channels, stage.name
            assert height == width == math.ceil(size / stage.stride), stage.name
    assert stages[-1].out_channels == model.num_classes


@pytest.mark.parametrize("skips, upsampling", [(False, "transposed"), (True, "resize"), (False, "resize")])
def test_unet_variants_keep_the_contract(skips, upsampling):
    model = UNet(channels=[4, 8, 16, 32, 64], batch_norm=True, skips=skips, upsampling=upsampling)
    logits = model(torch.rand(2, 3, 33, 47))
    assert logits.shape == (2, 2, 33, 47)
    logits.sum().backward()
    assert first_conv(model).weight.grad.abs().sum() > 0  # the gradient reaches the first layer, skips or not
