"""The model contract, for every registered model: shapes, odd sizes, gradients, errors, and the papers' sizes."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import cpu_and_cuda
from torch import nn
from torch.nn import functional as F

from segtutor.models import MODELS, DeepLabV3, FCN8s, UNet, count_parameters, create_model, list_models, list_sizes
from segtutor.models.fcn import bilinear_kernel, bilinear_upsampling


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The first convolution the images meet."""
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d))


# --------------------------------------------------------------------------------------------------------------
# The contract: (N, in_channels, H, W) -> (N, num_classes, H, W), any H, W >= 32
# --------------------------------------------------------------------------------------------------------------


def test_registry():
    assert list_models() == ["unet", "fcn8s", "deeplabv3"]
    assert {"small", "paper"} <= set(list_sizes())
    for name, cls in [("unet", UNet), ("fcn8s", FCN8s), ("deeplabv3", DeepLabV3)]:
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


def test_bad_architecture_arguments():
    with pytest.raises(ValueError, match="output_stride must be 16 or 8, got 32"):
        DeepLabV3(output_stride=32)
    with pytest.raises(ValueError, match="five numbers"):
        UNet(channels=[8, 16, 32])
    with pytest.raises(ValueError, match="fc6_kernel_size must be odd"):
        FCN8s(fc6_kernel_size=4)
    with pytest.raises(ValueError, match="unknown block 'dense'"):
        DeepLabV3(block="dense")


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


def test_deeplabv3_paper_parameter_count():
    # Chen et al. Sec. 3-4: ResNet-50 (He et al. 2016, Table 1) without its classifier, every convolution
    # bias-free and followed by batch norm (2 learned numbers per channel: scale and shift).
    def conv_bn(cin, cout, k):
        return k * k * cin * cout + 2 * cout

    def bottleneck(cin, width, projection):  # 1x1 -> 3x3 -> 1x1 (x4 channels), plus the shortcut
        shortcut = conv_bn(cin, 4 * width, 1) if projection else 0
        return conv_bn(cin, width, 1) + conv_bn(width, width, 3) + conv_bn(width, 4 * width, 1) + shortcut

    stem = conv_bn(3, 64, 7)
    layer1 = bottleneck(64, 64, True) + 2 * bottleneck(256, 64, False)  # 3 blocks, 256 out
    layer2 = bottleneck(256, 128, True) + 3 * bottleneck(512, 128, False)  # 4 blocks, 512 out
    layer3 = bottleneck(512, 256, True) + 5 * bottleneck(1024, 256, False)  # 6 blocks, 1024 out
    layer4 = bottleneck(1024, 512, True) + 2 * bottleneck(2048, 512, False)  # 3 blocks, 2048 out
    # ASPP (Sec. 3.3): one 1x1 and three 3x3 convolutions with 256 filters and batch norm, image pooling with a
    # 1x1 convolution of 256 filters and batch norm, a 1x1 projection of the 5 x 256 concatenated maps with batch
    # norm, then the final 1x1 convolution (with bias) to the 21 PASCAL classes.
    aspp = conv_bn(2048, 256, 1) + 3 * conv_bn(2048, 256, 3) + conv_bn(2048, 256, 1) + conv_bn(5 * 256, 256, 1)
    classifier = 256 * 21 + 21
    model = create_model("deeplabv3", in_channels=3, num_classes=21, size="paper")
    assert count_parameters(model) == stem + layer1 + layer2 + layer3 + layer4 + aspp + classifier


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
