"""Receptive fields: the spans followed through a forward pass against regions measured exactly with autograd."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from segtutor.explain import EffectiveField, receptive_boxes, receptive_field, receptive_region, structural_copy
from segtutor.models import DeepLabV3, FCN8s, UNet, create_model, list_models

from conftest import cpu_and_cuda


def measured_extents(model: nn.Module, layer: str | None, input_size: int, pixels: list[tuple[int, int]]) -> np.ndarray:
    """Brute force: rows × cols extent of the input region behind each ``pixel`` of ``layer``'s output.

    One image per pixel in a batch (eval mode: the images do not interact), all weights positive.
    Returns ``(len(pixels), 2)``; an extent that touches the image border is returned as -1 (clipped), an empty
    region as 0.
    """
    clone = structural_copy(model)
    outputs = {}
    if layer is not None:
        dict(clone.named_modules())[layer].register_forward_hook(lambda m, i, o: outputs.__setitem__("x", o))
    images = torch.ones(len(pixels), clone_in_channels(clone), input_size, input_size, dtype=torch.float64)
    images.requires_grad_(True)
    result = clone(images)
    features = outputs.get("x", result)
    total = sum(features[k, :, r, c].sum() for k, (r, c) in enumerate(pixels))
    (gradient,) = torch.autograd.grad(total, images)
    extents = []
    for mask in (gradient.sum(dim=1) > 0).numpy():
        if not mask.any():  # e.g. a strided, dilated transposed convolution skips some output pixels
            extents.append((0, 0))
            continue
        rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        touches = rows[0] == 0 or cols[0] == 0 or rows[-1] == input_size - 1 or cols[-1] == input_size - 1
        extents.append((-1, -1) if touches else (rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1))
    return np.array(extents)


def clone_in_channels(model: nn.Module) -> int:
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d)).in_channels


def test_hand_counted_fields():
    model = nn.Sequential(
        nn.Conv2d(1, 1, 3),  # 3
        nn.Conv2d(1, 1, 3),  # 3 + 2 = 5
        nn.MaxPool2d(2),  # 5 + 1 = 6, jump 2
        nn.Conv2d(1, 1, 3, dilation=2),  # 6 + 2·2·2 = 14
        nn.Conv2d(1, 1, 3, stride=2),  # 14 + 2·2 = 18, jump 4
    )
    fields = receptive_field(model)
    assert [f.size for f in fields] == [3, 5, 6, 14, 18]
    assert [f.jump for f in fields] == [1, 1, 2, 2, 4]
    assert [f.name for f in fields] == ["0", "1", "2", "3", "4"]
    assert fields[3].dilation == 2 and fields[4].stride == 2
    assert [f.size_um for f in fields] == [3.0, 5.0, 6.0, 14.0, 18.0]  # the course's tissue: 1 µm per pixel
    at_40x = receptive_field(model, microns_per_pixel=0.25)  # a 40× scan: 0.25 µm per pixel
    assert [f.size_um for f in at_40x] == [0.75, 1.25, 1.5, 3.5, 4.5] and at_40x[-1].jump_um == 1.0
    assert [f.size for f in at_40x] == [f.size for f in fields]  # the pixels do not change, the tissue does


@pytest.mark.parametrize("seed", range(12))
def test_random_chains_match_the_measured_region(seed):
    rng = np.random.default_rng(seed)
    layers: list[nn.Module] = []
    for _ in range(int(rng.integers(2, 6))):
        k, s, d = int(rng.integers(1, 6)), int(rng.integers(1, 3)), int(rng.integers(1, 4))
        if rng.random() < 0.3:
            layers.append(nn.MaxPool2d(int(rng.integers(2, 4)), stride=s))
        else:
            layers.append(nn.Conv2d(1, 1, k, stride=s, dilation=d, padding=d * (k - 1) // 2))
    model = nn.Sequential(*layers)
    size = receptive_field(model)[-1].size
    with torch.no_grad():
        out_size = model(torch.zeros(1, 1, 96, 96)).shape[-1]
    centre = out_size // 2
    extent = measured_extents(model, None, 96, [(centre, centre)])[0]
    if extent[0] > 0:  # not clipped by the border
        assert tuple(extent) == (size, size)


@pytest.mark.parametrize("dilation", [1, 2, 3])
def test_transposed_convolution_field(dilation):
    model = nn.Sequential(
        nn.Conv2d(1, 1, 3, stride=2, padding=1), nn.ConvTranspose2d(1, 1, 3, stride=2, dilation=dilation)
    )
    fields = receptive_field(model)
    taps = math.ceil((dilation * 2 + 1) / 2)  # input pixels one output pixel can gather from
    assert fields[-1].jump == 1 and fields[-1].size == 3 + (taps - 1) * 2
    extents = measured_extents(model, None, 32, [(10 + k, 10 + k) for k in range(4)])
    assert extents.max() == fields[-1].size  # the widest pixel reaches the bound


UNET_STAGES = ["encoder.0", "encoder.1", "encoder.2", "encoder.3", "encoder.4", "decoder.0", "decoder.1", "decoder.2",
               "decoder.3", "classifier"]  # fmt: skip


def test_unet_fields_equal_the_measured_regions():
    model = UNet(in_channels=1, num_classes=1, channels=[1, 1, 1, 1, 1])  # the fields depend on the layout only
    fields = {f.name: f for f in receptive_field(model, layers=UNET_STAGES)}
    assert [fields[n].jump for n in UNET_STAGES] == [1, 2, 4, 8, 16, 8, 4, 2, 1, 1]
    assert fields["encoder.1"].size == 5 + 1 + 2 * 2 * 2  # two convs, pool, two convs at jump 2
    # in the decoder the widest field belongs to some pixels only (2x2 up-convolutions): sweep every phase
    pixels = [(120 + k, 120 + k) for k in range(16)]
    extents = measured_extents(model, None, 256, pixels)
    assert (extents > 0).all()  # no region clipped by the border
    assert extents.max() == fields["classifier"].size
    # the chain formula alone says 200: neighbouring decoder pixels see differently placed regions, and the union
    # of three of them reaches further than any one of them plus (3 − 1)·jump
    assert fields["classifier"].size > 200
    for stage in ["encoder.2", "encoder.4"]:
        side = {"encoder.2": 64, "encoder.4": 16}[stage]
        extent = measured_extents(model, stage, 256, [(side // 2, side // 2)])[0]
        assert tuple(extent) == (fields[stage].size,) * 2


def test_fcn8s_encoder_fields_equal_the_measured_regions():
    model = FCN8s(in_channels=1, num_classes=1, channels=[1, 1, 1, 1, 1], fc_channels=1, fc6_kernel_size=3)
    fields = {f.name: f for f in receptive_field(model, layers=["block1", "block3", "block4"])}
    assert [fields[n].size for n in ("block1", "block3", "block4")] == [6, 44, 100]  # VGG16
    for name, side in [("block3", 32), ("block4", 16)]:
        extent = measured_extents(model, name, 256, [(side // 2, side // 2)])[0]
        assert tuple(extent) == (fields[name].size,) * 2


def test_deeplabv3_atrous_rates_and_image_pooling():
    model = create_model("deeplabv3", size="tiny")
    names = ["backbone.layer4", "head.aspp.convs.1", "head.aspp.convs.2", "head.aspp.convs.4", "head.classifier"]
    fields = {f.name: f for f in receptive_field(model, layers=names)}
    rates = model.head.aspp.rates
    jump = fields["backbone.layer4"].jump
    assert jump == model.output_stride
    for name, rate in zip(names[1:3], rates):  # a 3x3 atrous convolution adds 2·rate feature pixels
        assert fields[name].size == fields["backbone.layer4"].size + 2 * rate * jump
    assert fields["head.aspp.convs.4"].size == math.inf and fields["head.classifier"].size == math.inf
    assert receptive_field(model, layers=names, microns_per_pixel=0.5)[-1].size_um == math.inf
    # image pooling: every output pixel depends on every input pixel
    assert receptive_region(model, 64, (5, 60)).all()


@pytest.mark.parametrize("name", list_models())
def test_real_gradient_stays_inside_the_receptive_region(name):
    model = create_model(name, size="tiny")
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    region = receptive_region(model, 64, (10, 20))
    gradient = EffectiveField(model, images).at((10, 20))
    assert gradient.shape == region.shape == (64, 64)
    assert gradient.dtype == np.float32 and region.dtype == bool
    assert gradient[~region].max(initial=0) == 0  # nothing outside the region can influence the pixel
    assert gradient.sum() > 0
    assert all(p.grad is None for p in model.parameters())  # the model's own gradients are untouched


def test_effective_field_answers_every_pixel_from_one_forward_pass():
    """Each .at(pixel) equals a fresh autograd computation for that pixel alone (the kept graph is reused right)."""
    model = create_model("unet", size="tiny").train()
    images = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(2))
    field = EffectiveField(model, images)
    assert model.training  # evaluated in eval mode, mode restored
    model.eval()
    for pixel in [(0, 0), (24, 30), (47, 5)]:
        fresh = images.clone().requires_grad_(True)
        (gradient,) = torch.autograd.grad(model(fresh)[0, :, pixel[0], pixel[1]].sum(), fresh)
        np.testing.assert_allclose(field.at(pixel), gradient[0].abs().sum(0).numpy(), rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="outside the 48×48 image"):
        field.at((48, 0))


def test_receptive_field_errors_and_model_state():
    model = create_model("unet", size="tiny").train()
    with pytest.raises(ValueError, match="no modules named"):
        receptive_field(model, layers=["encoder.9"])
    with pytest.raises(ValueError, match="microns_per_pixel must be a positive pixel size"):
        receptive_field(model, microns_per_pixel=0)
    assert model.training  # restored
    with pytest.raises(ValueError, match="outside the 64×64 image"):
        receptive_region(model, 64, (64, 0))
    with pytest.raises(ValueError, match="outside the 64×64 image"):
        receptive_boxes(model, 64, (0, -1))


@pytest.mark.parametrize("name", list_models())
def test_receptive_boxes_are_the_bounding_boxes_of_the_measured_regions(name):
    model = create_model(name, size="tiny")
    pixels = [(0, 0), (5, 40), (33, 33), (47, 2), (63, 63), (20, 61)]
    clone = structural_copy(model)
    images = torch.ones(len(pixels), 3, 64, 48, dtype=torch.float64, requires_grad=True)
    logits = clone(images)
    total = sum(logits[k, :, r, c % 48].sum() for k, (r, c) in enumerate(pixels))
    (gradient,) = torch.autograd.grad(total, images)
    for (row, col), mask in zip(pixels, (gradient.sum(dim=1) > 0).numpy()):
        rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        box = receptive_boxes(model, (64, 48), (row, col % 48))["output"]
        assert box == (rows[0], rows[-1], cols[0], cols[-1]), (row, col)


@pytest.mark.parametrize("device", cpu_and_cuda())
def test_receptive_field_tools_run_where_the_model_lives(device):
    model = create_model("fcn8s", size="tiny")
    expected_boxes = receptive_boxes(model, 64, (30, 12), layers=["block3"])
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    expected_gradient = EffectiveField(model, images).at((30, 12))
    model.to(device)
    assert receptive_boxes(model, 64, (30, 12), layers=["block3"]) == expected_boxes
    np.testing.assert_allclose(EffectiveField(model, images).at((30, 12)), expected_gradient, rtol=1e-3, atol=1e-6)
    assert receptive_region(model, 64, (30, 12)).shape == (64, 64)


def test_a_trained_deeplabs_local_image_pooling_is_followed_as_an_upper_bound():
    # trained on 32-px crops, the image pooling of a larger image averages 4 x 4 feature pixels around each pixel
    model = DeepLabV3(block="basic", layers=[1, 1, 1, 1], width=4, aspp_channels=4, aspp_rates=[1, 2, 3])
    model.train()(torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    model.eval()
    images = torch.ones(1, 3, 320, 320, dtype=torch.float64, requires_grad=True)
    logits = structural_copy(model)(images)
    (gradient,) = torch.autograd.grad(logits[0, :, 300, 290].sum(), images)
    seen = gradient.abs().sum(dim=(0, 1)) > 1e-9 * gradient.abs().max()  # the window mean's running sums leave
    rows, cols = (np.nonzero(seen.any(dim=axis).numpy())[0] for axis in (1, 0))  # rounding noise of ~1e-18 elsewhere
    top, bottom, left, right = receptive_boxes(model, 320, (300, 290))["output"]
    assert top <= rows[0] and rows[-1] <= bottom and left <= cols[0] and cols[-1] <= right
    assert rows[0] > 0 and cols[0] > 0  # the pixel no longer sees the whole image: its field is bounded
