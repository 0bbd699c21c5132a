"""The step-by-step explainers against torch: same numbers on many random configurations, and clear errors."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from segtutor.explain import (
    bilinear_upsample,
    conv2d,
    conv2d_steps,
    conv_transpose2d,
    conv_transpose2d_steps,
    output_size,
    overlap_count,
    pool2d,
    pool2d_steps,
    transposed_output_size,
)


def _random_conv_config(rng: np.random.Generator) -> dict:
    """Kernel 1–7, stride 1–3, padding 0–3 or "same", dilation 1–3, 2-D or 1–3 channels, odd sizes included."""
    channels = [None, 1, 2, 3][rng.integers(4)]
    kh, kw = rng.integers(1, 8, size=2)
    dilation = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    same = rng.random() < 0.2
    stride = (1, 1) if same else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    padding = "same" if same else (int(rng.integers(0, 4)), int(rng.integers(0, 4)))
    pad = (0, 0) if same else padding
    # the dilated kernel must fit inside the padded image
    h_min = max(1, dilation[0] * (kh - 1) + 1 - 2 * pad[0])
    w_min = max(1, dilation[1] * (kw - 1) + 1 - 2 * pad[1])
    height, width = int(h_min + rng.integers(0, 7)), int(w_min + rng.integers(0, 7))
    image_shape = (height, width) if channels is None else (channels, height, width)
    kernel_shape = (kh, kw) if channels is None else (channels, kh, kw)
    return dict(
        image=rng.normal(size=image_shape),
        kernel=rng.normal(size=kernel_shape),
        stride=stride,
        padding=padding,
        dilation=dilation,
        bias=float(rng.normal()),
    )


def _torch_conv2d(image, kernel, *, stride, padding, dilation, bias) -> np.ndarray:
    x = torch.from_numpy(image).reshape(1, -1, *image.shape[-2:])  # (1, C, H, W)
    w = torch.from_numpy(kernel).reshape(1, -1, *kernel.shape[-2:])  # (1, C, kh, kw)
    b = torch.tensor([bias], dtype=torch.float64)
    return F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation)[0, 0].numpy()


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("seed", range(150))
def test_conv2d_equals_torch(seed):
    config = _random_conv_config(np.random.default_rng(seed))
    expected = _torch_conv2d(**config)
    result = conv2d(**config)
    assert result.shape == expected.shape
    assert result.dtype == np.float64
    np.testing.assert_allclose(result, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("seed", range(40))
def test_conv2d_steps_taps_products_and_padding(seed):
    config = _random_conv_config(np.random.default_rng(1000 + seed))
    image, kernel = config["image"], config["kernel"]
    steps = conv2d_steps(**config)
    height, width = image.shape[-2:]
    out_w = steps[-1].position[1] + 1
    for k, step in enumerate(steps):
        assert step.position == divmod(k, out_w)
        inside_rows = (step.rows >= 0) & (step.rows < height)
        inside_cols = (step.cols >= 0) & (step.cols < width)
        np.testing.assert_array_equal(step.is_padding, ~(inside_rows[:, None] & inside_cols[None, :]))
        # every tap on the image reads the pixel it claims; every padding tap reads 0
        for a, row in enumerate(step.rows):
            for b, col in enumerate(step.cols):
                expected = 0.0 if step.is_padding[a, b] else image[..., row, col]
                np.testing.assert_array_equal(step.inputs[..., a, b], expected)
        np.testing.assert_allclose(step.products, step.inputs * kernel)
        assert step.value == pytest.approx(step.products.sum() + config["bias"])


def test_conv2d_steps_dilation_spreads_the_taps():
    steps = conv2d_steps(np.zeros((9, 9)), np.ones((3, 3)), stride=2, dilation=3, padding=1)
    np.testing.assert_array_equal(steps[0].rows, [-1, 2, 5])
    np.testing.assert_array_equal(steps[1].cols, [1, 4, 7])  # next placement: two pixels to the right
    assert steps[0].is_padding[0].all() and not steps[0].is_padding[1:, 1:].any()


def test_conv_formula_reads_like_the_hand_calculation():
    # 3·1 + 0·0 + 1·(−1) + 2·2 = 3 + 0 − 1 + 4 = 6
    step = conv2d_steps([[3, 0], [1, 2]], [[1, 0], [-1, 2]])[0]
    assert step.formula() == "3·1 + 0·0 + 1·(−1) + 2·2 = 6"
    with_bias = conv2d_steps([[3, 0], [1, 2]], [[1, 0], [-1, 2]], bias=-0.5)[0]
    assert with_bias.formula() == "3·1 + 0·0 + 1·(−1) + 2·2 + (−0.5) = 5.5"
    long = conv2d_steps(np.ones((5, 5)), np.ones((5, 5)))[0].formula(max_terms=4)
    assert long == "1·1 + 1·1 + 1·1 + … + 1·1 = 25"


def test_conv_same_padding_keeps_the_size_and_matches_torch_asymmetry():
    image, kernel = np.random.default_rng(0).normal(size=(6, 7)), np.ones((4, 2))  # even kernel: odd pixel at the end
    result = conv2d(image, kernel, padding="same")
    assert result.shape == image.shape
    np.testing.assert_allclose(result, _torch_conv2d(image, kernel, stride=1, padding="same", dilation=1, bias=0.0))
    step = conv2d_steps(image, kernel, padding="same")[0]
    np.testing.assert_array_equal(step.rows, [-1, 0, 1, 2])  # 3 extra rows: 1 on top, 2 at the bottom


def test_conv2d_accepts_tensors():
    image, kernel = torch.randn(2, 6, 6), torch.randn(2, 3, 3)
    expected = F.conv2d(image[None].double(), kernel[None].double())[0, 0].numpy()
    np.testing.assert_allclose(conv2d(image, kernel), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(image=np.ones((5, 5)), kernel=np.ones((2, 3, 3))), r"needs a kernel of shape \(kh, kw\)"),
        (dict(image=np.ones((2, 5, 5)), kernel=np.ones((3, 3, 3))), r"needs a kernel of shape \(2, kh, kw\)"),
        (dict(image=np.ones(5), kernel=np.ones((3, 3))), r"image must have shape \(H, W\) or \(C, H, W\)"),
        (dict(image=np.ones((3, 3)), kernel=np.ones((5, 5))), "the kernel covers 5 pixels"),
        (dict(image=np.ones((5, 5)), kernel=np.ones((3, 3)), stride=0), "stride must be >= 1"),
        (dict(image=np.ones((5, 5)), kernel=np.ones((3, 3)), padding=-1), "padding must be >= 0"),
        (dict(image=np.ones((5, 5)), kernel=np.ones((3, 3)), padding="full"), "padding must be an int"),
        (dict(image=np.ones((5, 5)), kernel=np.ones((3, 3)), padding="same", stride=2), "needs stride 1"),
        (dict(image=np.ones((5, 5)), kernel=np.ones((3, 3)), dilation=(1, 2, 3)), "dilation must be an int or a pair"),
    ],
)
def test_conv2d_bad_input_says_what_to_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        conv2d_steps(**kwargs)


@pytest.mark.parametrize("seed", range(60))
def test_pool2d_equals_torch_and_finds_the_winner(seed):
    rng = np.random.default_rng(seed)
    kernel_size = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
    stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    x = rng.normal(size=(int(kernel_size[0] + rng.integers(0, 8)), int(kernel_size[1] + rng.integers(0, 8))))
    x_t = torch.from_numpy(x)[None]  # (1, H, W)
    expected_max, indices = F.max_pool2d(x_t, kernel_size, stride, return_indices=True)
    expected_avg = F.avg_pool2d(x_t, kernel_size, stride)
    np.testing.assert_allclose(pool2d(x, kernel_size=kernel_size, stride=stride, mode="max"), expected_max[0].numpy())
    np.testing.assert_allclose(pool2d(x, kernel_size=kernel_size, stride=stride, mode="avg"), expected_avg[0].numpy())
    width = x.shape[1]
    for step in pool2d_steps(x, kernel_size=kernel_size, stride=stride, mode="max"):
        row, col = step.winner
        assert row * width + col == indices[0][step.position].item()
        assert step.value == x[row, col]
    for step in pool2d_steps(x, kernel_size=kernel_size, stride=stride, mode="avg"):
        assert step.winner is None


def test_pool2d_channels_and_ties():
    x = np.random.default_rng(3).normal(size=(3, 6, 4))
    expected = F.max_pool2d(torch.from_numpy(x), 2)  # unbatched (C, H, W)
    np.testing.assert_allclose(pool2d(x), expected.numpy())
    tie = pool2d_steps(np.array([[1.0, 4.0], [4.0, 0.0]]))[0]
    assert tie.winner == (0, 1)  # the first maximum in reading order, as torch picks
    assert tie.formula() == "max(1, 4, 4, 0) = 4"
    assert pool2d_steps(np.array([[1.0, 4.0], [4.0, 0.0]]), mode="avg")[0].formula() == "(1 + 4 + 4 + 0) / 4 = 2.25"


def test_pool2d_bad_input():
    with pytest.raises(ValueError, match="mode must be one of"):
        pool2d_steps(np.ones((4, 4)), mode="min")
    with pytest.raises(ValueError, match="the kernel covers 3 pixels"):
        pool2d_steps(np.ones((2, 2)), kernel_size=3)


def _random_transposed_config(rng: np.random.Generator) -> dict:
    channels = [None, 1, 2, 3][rng.integers(4)]
    kh, kw = (int(k) for k in rng.integers(1, 6, size=2))
    stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    dilation = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    output_padding = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
    height, width = (int(n) for n in rng.integers(1, 7, size=2))
    # padding must leave at least one output pixel
    sizes = zip((height, width), stride, dilation, (kh, kw), output_padding)
    full = [(n - 1) * s + d * (k - 1) + op + 1 for n, s, d, k, op in sizes]
    padding = tuple(int(rng.integers(0, min(3, (f - 1) // 2) + 1)) for f in full)
    x_shape = (height, width) if channels is None else (channels, height, width)
    kernel_shape = (kh, kw) if channels is None else (channels, kh, kw)
    return dict(
        x=rng.normal(size=x_shape),
        kernel=rng.normal(size=kernel_shape),
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
    )


@pytest.mark.parametrize("seed", range(120))
def test_conv_transpose2d_equals_torch(seed):
    config = _random_transposed_config(np.random.default_rng(seed))
    x, kernel = config.pop("x"), config.pop("kernel")
    x_t = torch.from_numpy(x).reshape(1, -1, *x.shape[-2:])  # (1, C, H, W)
    w_t = torch.from_numpy(kernel).reshape(-1, 1, *kernel.shape[-2:])  # (C_in, C_out=1, kh, kw)
    expected = F.conv_transpose2d(x_t, w_t, **config)[0, 0].numpy()
    result = conv_transpose2d(x, kernel, **config)
    assert result.shape == expected.shape
    np.testing.assert_allclose(result, expected, rtol=1e-10, atol=1e-10)
    # overlap count = transposed convolution of ones with a kernel of ones
    ones = F.conv_transpose2d(torch.ones(1, 1, *x.shape[-2:]), torch.ones(1, 1, *kernel.shape[-2:]), **config)
    counts = overlap_count(x.shape[-2:], kernel.shape[-2:], **config)
    assert counts.dtype == np.int64
    np.testing.assert_array_equal(counts, ones[0, 0].numpy().round().astype(np.int64))


def test_scatter_steps_stamp_the_scaled_kernel():
    x, kernel = np.array([[2.0, -1.0], [0.5, 3.0]]), np.arange(9.0).reshape(3, 3)
    steps = conv_transpose2d_steps(x, kernel, stride=2, padding=1)
    assert [s.position for s in steps] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    step = steps[1]
    np.testing.assert_array_equal(step.contribution, -1.0 * kernel)
    np.testing.assert_array_equal(step.cols, [1, 2, 3])  # 1·stride 2 + (0, 1, 2) − padding 1
    np.testing.assert_array_equal(step.rows, [-1, 0, 1])
    # the output is (2 − 1)·2 − 2·1 + (3 − 1) + 1 = 3 pixels wide: row −1 and column 3 are cropped away
    expected_cropped = np.array([[True, True, True], [False, False, True], [False, False, True]])
    np.testing.assert_array_equal(step.is_cropped, expected_cropped)
    assert step.formula() == "−1 × kernel → added to rows −1 to 1, cols 1 to 3"


def test_checkerboard_kernel_3_stride_2_is_uneven_kernel_4_is_flat_inside():
    uneven = overlap_count((4, 4), 3, stride=2)
    assert set(np.unique(uneven[1:-1, 1:-1])) == {1, 2, 4}
    even = overlap_count((4, 4), 4, stride=2, padding=1)
    assert set(np.unique(even[1:-1, 1:-1])) == {4}


def test_conv_transpose2d_bad_input():
    with pytest.raises(ValueError, match="output_padding"):
        conv_transpose2d_steps(np.ones((3, 3)), np.ones((2, 2)), stride=2, output_padding=2)
    with pytest.raises(ValueError, match="crops the whole output"):
        conv_transpose2d_steps(np.ones((1, 1)), np.ones((1, 1)), padding=1)
    with pytest.raises(ValueError, match=r"needs a kernel of shape \(2, kh, kw\)"):
        conv_transpose2d_steps(np.ones((2, 3, 3)), np.ones((3, 3)))


def _evaluate(formula: str) -> int:
    """Evaluate the left side of a formula string with Python's integer arithmetic."""
    left = formula.split(" = ")[0]
    for symbol, python in {"⌊": "(", "⌋": ")", "/": "//", "·": "*", "−": "-"}.items():
        left = left.replace(symbol, python)
    return eval(left)  # noqa: S307 (only digits and operators from our own formula)


@pytest.mark.parametrize("seed", range(80))
def test_output_size_matches_torch_shapes_and_its_own_formula(seed):
    rng = np.random.default_rng(seed)
    k, s, p, d = int(rng.integers(1, 8)), int(rng.integers(1, 4)), int(rng.integers(0, 4)), int(rng.integers(1, 4))
    n = int(max(1, d * (k - 1) + 1 - 2 * p) + rng.integers(0, 9))
    size = output_size(n, k, s, p, d)
    layer = torch.nn.Conv2d(1, 1, (k, 1), stride=s, padding=(p, 0), dilation=d)
    assert size.value == layer(torch.zeros(1, 1, n, 1)).shape[2]
    assert _evaluate(size.formula) == size.value and size.formula.endswith(f"= {size.value}")

    op = int(rng.integers(0, max(s, d)))
    n = int(rng.integers(1 + p, 8 + p))
    transposed = transposed_output_size(n, k, s, p, op, d)
    layer = torch.nn.ConvTranspose2d(1, 1, (k, 1), stride=s, padding=(p, 0), output_padding=(op, 0), dilation=d)
    assert transposed.value == layer(torch.zeros(1, 1, n, 1)).shape[2]
    assert _evaluate(transposed.formula) == transposed.value


def test_output_size_errors():
    with pytest.raises(ValueError, match="kernel_size must be a positive integer"):
        output_size(7, 0)
    with pytest.raises(ValueError, match="padding must be an integer >= 0"):
        output_size(7, 3, padding=-1)
    with pytest.raises(ValueError, match="padded input has only 3"):
        output_size(3, 5)
    assert str(output_size(7, 3, 2, 1)) == "⌊(7 + 2·1 − 1·(3 − 1) − 1) / 2⌋ + 1 = 4"


def test_output_size_is_the_number_and_carries_its_formula():
    size = output_size(7, 3)
    assert size == 5 and 5 == size and size + 1 == 6 and size < 6 and isinstance(size, int)
    assert list(range(size)) == [0, 1, 2, 3, 4] and size.value == 5 and type(size.value) is int
    assert str(size) == size.formula == "⌊(7 + 2·0 − 1·(3 − 1) − 1) / 1⌋ + 1 = 5"
    assert repr(size) == "OutputSize(value=5, formula='⌊(7 + 2·0 − 1·(3 − 1) − 1) / 1⌋ + 1 = 5')"
    assert transposed_output_size(4, 2, stride=2) == 8
    assert pickle.loads(pickle.dumps(size)).formula == copy.deepcopy(size).formula == size.formula


def test_output_size_accepts_numpy_integers():
    assert output_size(np.int64(97), np.int32(3), np.int64(2), np.int64(1)) == 49
    assert transposed_output_size(np.int64(12), 4, stride=np.int8(2), padding=np.int64(1)) == 24
    with pytest.raises(ValueError, match="in_size must be a positive integer, got 7.0"):
        output_size(7.0, 3)  # a float is not a size, even a whole one
    with pytest.raises(ValueError, match="stride must be a positive integer, got True"):
        output_size(7, 3, stride=True)


@pytest.mark.parametrize(("height", "width", "factor"), [(4, 4, 2), (3, 5, 3), (1, 1, 2), (8, 6, 4), (2, 7, 1)])
def test_bilinear_upsample_equals_torch_interpolate(height, width, factor):
    x = np.random.default_rng(height * 10 + width).normal(size=(height, width))
    expected = F.interpolate(torch.from_numpy(x)[None, None], scale_factor=factor, mode="bilinear",
                             align_corners=False)[0, 0].numpy()  # fmt: skip
    np.testing.assert_allclose(bilinear_upsample(x, factor), expected, atol=1e-12)


@pytest.mark.parametrize("size", range(1, 8))
def test_the_bilinear_upsampling_kernel_is_fcns_tent(size):
    from segtutor.explain import upsampling_kernel
    from segtutor.models.fcn import bilinear_tent

    np.testing.assert_allclose(upsampling_kernel("bilinear", size), bilinear_tent(size).double().numpy(), atol=1e-6)
