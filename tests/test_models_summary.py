"""Parameter counts, FLOPs, the per-layer table, the stages and feature maps, checked against sums, shapes worked
out by hand, torch's own FLOP counter and plain forward passes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from torch.utils.flop_counter import FlopCounterMode

from segtutor.models import (
    count_flops,
    count_parameters,
    create_model,
    describe_architecture,
    evaluating,
    feature_maps,
    format_table,
    layer_table,
    list_models,
)


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


@pytest.mark.parametrize("name", list_models())
def test_count_parameters_is_the_sum_of_all_tensor_sizes(name):
    model = create_model(name)
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    assert count_parameters(model, trainable_only=True) == count_parameters(model) - frozen


def test_count_parameters_of_one_convolution():
    conv = nn.Conv2d(3, 8, kernel_size=5)
    assert count_parameters(conv) == 5 * 5 * 3 * 8 + 8
    conv.bias.requires_grad_(False)
    assert count_parameters(conv, trainable_only=True) == 5 * 5 * 3 * 8


def test_flops_of_one_convolution():
    # each output number is a dot product of Cin*k*k weights with inputs: Cin*k*k multiplies and adds = 2 FLOPs each
    conv = nn.Conv2d(3, 8, kernel_size=3, padding=1)
    assert count_flops(conv, (3, 20, 24)) == 2 * 3 * 8 * 3 * 3 * 20 * 24
    strided = nn.Conv2d(4, 6, kernel_size=3, stride=2)  # H_out = (21 - 3) // 2 + 1 = 10, W_out = (33 - 3) // 2 + 1 = 16
    assert count_flops(strided, (4, 21, 33)) == 2 * 4 * 6 * 3 * 3 * 10 * 16


def test_flops_of_unet_are_the_sum_over_its_convolutions():
    # brute force: add up 2 * Cin * Cout * k * k * (pixels) over every (transposed) convolution by hand
    model = create_model("unet", size="tiny")
    height, width = 64, 96
    shapes = {row.name: row.output_shape for row in layer_table(model, (3, height, width))}
    expected = 0
    for name, module in model.named_modules():
        if isinstance(module, nn.ConvTranspose2d):
            # a transposed convolution spreads each *input* pixel over a k x k patch: count input pixels
            _, _, h_out, w_out = shapes[name]
            pixels = (h_out // 2) * (w_out // 2)
        elif isinstance(module, nn.Conv2d):
            _, _, h_out, w_out = shapes[name]
            pixels = h_out * w_out
        else:
            continue
        kh, kw = module.kernel_size
        expected += 2 * module.in_channels * module.out_channels * kh * kw * pixels
    assert count_flops(model, (3, height, width)) == expected


def test_count_flops_leaves_the_model_as_it_was():
    model = create_model("deeplabv3").train()
    running_mean = model.backbone.stem.bn1.running_mean.clone()
    count_flops(model, (3, 64, 64))
    assert model.training
    torch.testing.assert_close(model.backbone.stem.bn1.running_mean, running_mean)  # eval mode: no statistics update


def test_layer_table_shapes_match_a_forward_pass_by_hand():
    model = create_model("unet", size="tiny").eval()
    images = torch.rand(1, 3, 40, 56)
    table = {row.name: row for row in layer_table(model, (3, 40, 56))}
    with torch.no_grad():
        x = images
        for level, block in enumerate(model.encoder):
            x = block(x)
            assert table[f"encoder.{level}"].output_shape == tuple(x.shape)
        conv = model.encoder[0][0]
        assert table["encoder.0.0"].output_shape == tuple(conv(images).shape)
    assert table["encoder.4"].output_shape == (1, 64, 3, 4)  # 40 -> 20 -> 10 -> 5 -> 3 and 56 -> 28 -> 14 -> 7 -> 4
    assert table["classifier"].output_shape == (1, 2, 40, 56)
    assert table["classifier"].type == "Conv2d"
    assert table["classifier"].num_params == 4 * 2 + 2
    assert table["encoder.0"].num_params == sum(p.numel() for p in model.encoder[0].parameters())


def test_layer_table_order_and_depth():
    model = create_model("fcn8s", size="tiny")
    rows = layer_table(model, (3, 64, 64))
    names = [row.name for row in rows]
    assert names.index("block1") < names.index("block1.conv1_1") < names.index("block2")  # a block before its layers
    forward_order = ["block1", "block2", "block3", "block4", "block5", "fc", "score_fr", "upscore2", "score_pool4",
                     "upscore_pool4", "score_pool3", "upscore8"]  # fmt: skip
    assert [row.name for row in rows if row.depth == 1] == forward_order
    shallow = layer_table(model, (3, 64, 64), max_depth=1)
    assert all(row.depth == 1 for row in shallow)
    assert shallow[-1].name == "upscore8" and shallow[-1].output_shape == (1, 2, 64, 64)


def test_layer_table_prints_as_a_table():
    rows = layer_table(create_model("unet", size="tiny"), (3, 32, 32), max_depth=1)
    text = format_table(rows)
    lines = text.splitlines()
    assert lines[0].split() == ["layer", "type", "output", "shape", "parameters"]
    assert set(lines[1]) == {"-"}
    assert "classifier" in lines[-1] and "(1, 2, 32, 32)" in lines[-1] and lines[-1].endswith("10")
    assert repr(rows) == text
    assert rows._repr_html_().startswith("<table>") and "classifier" in rows._repr_html_()


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("size", [(3, 64, 64), (3, 45, 61)])
def test_count_flops_equals_torchs_flop_counter(name, size):
    """The fast hook counter gives FlopCounterMode's number, odd sizes included."""
    model = create_model(name, size="tiny").eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.rand(1, *size))
    assert count_flops(model, size) == counter.get_total_flops()


@pytest.mark.parametrize("name", list_models())
def test_describe_architecture_shapes_and_counts(name):
    model = create_model(name, size="tiny")
    summary = describe_architecture(model, (3, 64, 64))
    # reference: every module's output shape from a forward pass with our own hooks
    shapes = {}
    hooks = [module.register_forward_hook(lambda m, i, o, n=n: shapes.__setitem__(n, tuple(o.shape)))
             for n, module in model.named_modules() if n]  # fmt: skip
    model.eval()
    with torch.no_grad():
        logits = model(torch.rand(1, 3, 64, 64))
    for hook in hooks:
        hook.remove()
    for item in summary.stages:
        if item.stage.module:
            assert item.shape == shapes[item.stage.module], item.stage.name
    assert summary.stages[0].shape == (1, 3, 64, 64)
    assert summary.stages[-1].shape == tuple(logits.shape)  # the last stage gives the logits
    assert summary.num_params == sum(p.numel() for p in model.parameters())
    assert summary.flops == count_flops(model, (3, 64, 64))
    assert [row.name for row in summary.layers] == [row.name for row in layer_table(model, (3, 64, 64))]


def test_feature_maps_equal_the_module_output(val_data):
    trained = create_model("unet", size="tiny")
    image, _ = val_data[0]
    maps = feature_maps(trained, image, "encoder.1")
    trained.eval()
    with torch.no_grad():
        expected = trained.encoder[1](trained.encoder[0](image[None]))[0]
    trained.train()
    torch.testing.assert_close(maps, expected)
    with pytest.raises(ValueError, match="no module"):
        feature_maps(trained, image, "encoder.99")


def test_evaluating_switches_to_eval_and_back():
    model = nn.Sequential(nn.BatchNorm2d(3))
    with evaluating(model) as inside:
        assert inside is model and not model.training
    assert model.training
    model.eval()
    with pytest.raises(RuntimeError), evaluating(model):
        model.train()
        raise RuntimeError("an error inside")
    assert not model.training  # restored, even after an error
