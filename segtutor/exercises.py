"""The course's automatic checks: each compares a learner's answer with the one segtutor computes.

Every check follows the same recipe:

1. compute the right answer with the package (``segtutor.explain``, ``segtutor.metrics``, ...), from the same
   inputs the learner was given, never from a number written down here;
2. compare it with the learner's answer (numbers to within a rounding tolerance, arrays shape first);
3. print what is right or wrong, with a hint that does not give the answer away, and return a :class:`Feedback`.

An exercise left as ``None`` prints "not answered yet" and raises nothing, so every notebook runs as stored.

Example:
    >>> image = np.arange(16).reshape(4, 4)
    >>> kernel = np.ones((3, 3))
    >>> check_conv_pixel(45, image, kernel, position=(0, 0))
    ✓ Correct: 0·1 + 1·1 + 2·1 + 4·1 + 5·1 + 6·1 + 8·1 + 9·1 + 10·1 = 45
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from segtutor.explain import conv2d_steps, output_size, overlap_count, pool2d, transposed_output_size
from segtutor.explain.receptive_field import receptive_field
from segtutor.metrics import confusion_matrix, dice_per_class, iou_per_class, pixel_accuracy
from segtutor.models import count_parameters, create_model, layer_table, list_models
from segtutor.data import tile_starts
from segtutor.train import cross_entropy_loss

STATUSES = ("correct", "wrong", "unanswered")
NOT_ANSWERED = "not answered yet: replace None with your answer and run the cell again"


@dataclass(frozen=True)
class Feedback:
    """What a check found. The check has printed :attr:`message` already.

    Attributes:
        exercise: what the exercise asks, in a few words.
        status: ``"correct"``, ``"wrong"`` or ``"unanswered"``.
        message: the sentence the learner saw.
    """

    exercise: str
    status: str
    message: str

    @property
    def correct(self) -> bool:
        """True when the answer was right."""
        return self.status == "correct"

    def __str__(self) -> str:
        return self.message

    def _ipython_display_(self) -> None:
        """Show nothing: a check is usually a cell's last line, and its message is printed already."""


def _feedback(exercise: str, status: str, message: str) -> Feedback:
    symbol = {"correct": "✓ Correct: ", "wrong": "✗ Not yet: ", "unanswered": "… "}[status]
    feedback = Feedback(exercise, status, f"{symbol}{message}")
    print(feedback.message)
    return feedback


def _number(answer: Any) -> float | None:
    """The answer as a float, or None if it is not a single number (a bool, a string, a list ...)."""
    if isinstance(answer, bool):
        return None
    if isinstance(answer, torch.Tensor):
        answer = answer.detach().cpu().numpy()
    if isinstance(answer, np.ndarray):
        return float(answer.item()) if answer.size == 1 else None
    if isinstance(answer, int | float | np.integer | np.floating):
        return float(answer)
    return None


def _check_number(
    exercise: str, answer: Any, expected: float, *, right: str, hint: str, tolerance: float = 0.01
) -> Feedback:
    """Compare one number: correct within ``tolerance`` (absolute, or relative for large numbers)."""
    if answer is None:
        return _feedback(exercise, "unanswered", NOT_ANSWERED)
    value = _number(answer)
    if value is None:
        return _feedback(exercise, "wrong", f"the answer should be one number, got {answer!r}. Hint: {hint}")
    if math.isclose(value, expected, rel_tol=1e-3, abs_tol=tolerance):
        return _feedback(exercise, "correct", right)
    return _feedback(exercise, "wrong", f"{value:g} is not it. Hint: {hint}")


def _check_array(
    exercise: str, answer: Any, expected: np.ndarray, *, right: str, hint: str, tolerance: float = 0.01
) -> Feedback:
    """Compare an array: the shape first, then every value within ``tolerance``."""
    if answer is None:
        return _feedback(exercise, "unanswered", NOT_ANSWERED)
    if isinstance(answer, torch.Tensor):
        answer = answer.detach().cpu().numpy()
    try:
        value = np.asarray(answer, dtype=np.float64)
    except (TypeError, ValueError):
        return _feedback(exercise, "wrong", f"the answer should be an array of numbers, got {answer!r}. Hint: {hint}")
    if value.shape != expected.shape:
        return _feedback(
            exercise, "wrong", f"the answer has shape {value.shape}, but it should be {expected.shape}. Hint: {hint}"
        )
    wrong = ~np.isclose(value, expected, rtol=1e-3, atol=tolerance)
    if wrong.any():
        first = tuple(int(i) for i in np.argwhere(wrong)[0])
        return _feedback(
            exercise,
            "wrong",
            f"the shape is right, but {int(wrong.sum())} of {wrong.size} values differ (the first at index "
            f"{first}: you have {value[first]:g}). Hint: {hint}",
        )
    return _feedback(exercise, "correct", right)


def _check_size(exercise: str, answer: Any, expected: tuple[int, ...], *, right: str, hint: str) -> Feedback:
    """Compare a size given as an int or a tuple of ints (e.g. ``(H, W)``)."""
    if answer is None:
        return _feedback(exercise, "unanswered", NOT_ANSWERED)
    given = tuple(answer) if isinstance(answer, list | tuple | torch.Size) else (answer,)
    if not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in given):
        return _feedback(exercise, "wrong", f"give whole numbers of pixels or channels, got {answer!r}. Hint: {hint}")
    if len(given) != len(expected):
        shape = "one number" if len(expected) == 1 else f"{len(expected)} numbers, e.g. (H, W)"
        return _feedback(exercise, "wrong", f"the answer should be {shape}, got {answer!r}. Hint: {hint}")
    if tuple(int(v) for v in given) == expected:
        return _feedback(exercise, "correct", right)
    return _feedback(exercise, "wrong", f"{answer!r} is not it. Hint: {hint}")


def _tensor(values: Any, dtype: torch.dtype | None = None) -> torch.Tensor:
    tensor = values.detach().cpu() if isinstance(values, torch.Tensor) else torch.as_tensor(np.asarray(values))
    return tensor.to(dtype) if dtype is not None else tensor


# ---- 00 Start here ------------------------------------------------------------------------------------------


def check_label_map(answer: Any, probs: np.ndarray | torch.Tensor) -> Feedback:
    """The predicted class of every pixel from per-pixel probabilities ``probs (K, H, W)``: an ``(H, W)`` label map."""
    probs = _tensor(probs, torch.float64)
    expected = probs.argmax(0).numpy()  # (H, W): the class with the highest probability
    return _check_array(
        "label map from probabilities",
        answer,
        expected.astype(np.float64),
        right=f"each pixel takes the class with the highest probability (argmax over the {probs.shape[0]} "
        f"classes); here {int((expected == 1).sum())} of {expected.size} pixels are class 1.",
        hint="for every pixel, compare the K probabilities and keep the index of the largest: probs.argmax(0).",
    )


def check_pixel_accuracy(answer: Any, preds: np.ndarray | torch.Tensor, masks: np.ndarray | torch.Tensor) -> Feedback:
    """The share of pixels whose predicted class equals the label."""
    masks, preds = _tensor(masks, torch.int64), _tensor(preds, torch.int64)
    num_classes = int(max(masks.max(), preds.max())) + 1
    matrix = confusion_matrix(masks, preds, num_classes, ignore_index=None)
    expected = pixel_accuracy(matrix)
    correct = int(matrix.diagonal().sum())
    return _check_number(
        "pixel accuracy",
        answer,
        expected,
        right=f"{correct} of {masks.numel()} pixels agree with the label, {expected:.3f} (a share between 0 and 1).",
        hint="count the pixels where preds == masks and divide by the number of pixels; give a share, not a "
        "percentage.",
    )


# ---- 01 Images are numbers ----------------------------------------------------------------------------------


def check_pixel_value(answer: Any, image: np.ndarray, row: int, col: int) -> Feedback:
    """The (R, G, B) values of one pixel of an ``(H, W, 3)`` image."""
    expected = np.asarray(image)[row, col].astype(np.float64)  # numpy indexes [row, column, channel]
    return _check_array(
        f"the colour of pixel (row {row}, column {col})",
        answer,
        expected,
        right=f"image[{row}, {col}] is (R, G, B) = {tuple(int(v) for v in expected)}; rows come first, then "
        "columns, then the channel.",
        hint="index the array as image[row, column]: the row (y, downwards) comes first, the column (x) second.",
        tolerance=0.5,
    )


def check_class_share(answer: Any, mask: np.ndarray | torch.Tensor, class_index: int) -> Feedback:
    """The share of a mask's pixels labelled ``class_index`` (0 to 1)."""
    mask = _tensor(mask, torch.int64)
    num_classes = max(int(mask.max()) + 1, class_index + 1)
    pixels_per_class = confusion_matrix(mask, mask, num_classes, ignore_index=None).sum(1)  # (K,)
    expected = float(pixels_per_class[class_index] / pixels_per_class.sum())
    return _check_number(
        f"share of class {class_index}",
        answer,
        expected,
        right=f"{int(pixels_per_class[class_index])} of {mask.numel()} pixels are class {class_index}, a share of "
        f"{expected:.3f}.",
        hint=f"count the pixels where mask == {class_index}, divide by mask.size; give a share between 0 and 1.",
    )


# ---- 02 Convolution -----------------------------------------------------------------------------------------


def check_conv_pixel(
    answer: Any,
    image: np.ndarray,
    kernel: np.ndarray,
    position: tuple[int, int],
    *,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
) -> Feedback:
    """One output pixel of a convolution, computed by hand."""
    steps = conv2d_steps(image, kernel, stride=stride, padding=padding, dilation=dilation)
    width = steps[-1].position[1] + 1
    row, col = position
    if not (0 <= row <= steps[-1].position[0] and 0 <= col < width):
        raise ValueError(f"position {position} lies outside the {steps[-1].position[0] + 1}x{width} output")
    step = steps[row * width + col]
    top, left = int(step.rows[0]), int(step.cols[0])
    return _check_number(
        f"output pixel {position} of the convolution",
        answer,
        step.value,
        right=step.formula(),
        hint=f"place the kernel's top-left weight on input pixel (row {top}, column {left}), multiply each "
        "weight with the number under it, and add the products up.",
    )


def check_output_size(
    answer: Any, in_size: int, kernel_size: int, *, stride: int = 1, padding: int = 0, dilation: int = 1
) -> Feedback:
    """The output size of a convolution along one dimension."""
    size = output_size(in_size, kernel_size, stride, padding, dilation)
    return _check_number(
        "output size of a convolution",
        answer,
        size.value,
        tolerance=0,
        right=str(size.formula),
        hint="count the positions the kernel's first tap can take: add the padding on both sides, subtract the "
        "kernel's span minus one, then count every stride-th position (including the first).",
    )


def check_same_padding(answer: Any, kernel_size: int, *, dilation: int = 1) -> Feedback:
    """The padding that keeps the size of the input (stride 1)."""
    exercise = f"padding that keeps the size, kernel {kernel_size}, dilation {dilation}"
    if answer is None:
        return _feedback(exercise, "unanswered", NOT_ANSWERED)
    hint = "the kernel covers dilation·(kernel_size − 1) + 1 pixels; half of the extra pixels go on each side."
    if _number(answer) is None or _number(answer) != int(_number(answer)) or _number(answer) < 0:
        return _feedback(exercise, "wrong", f"padding is a whole number >= 0, got {answer!r}. Hint: {hint}")
    padding = int(_number(answer))
    span = dilation * (kernel_size - 1) + 1
    sizes = [size for size in (span, 32, 33) if size + 2 * padding >= span]  # inputs the kernel fits into
    outs = [output_size(size, kernel_size, 1, padding, dilation).value for size in sizes]
    if outs == sizes:
        formula = output_size(32, kernel_size, 1, padding, dilation).formula
        return _feedback(exercise, "correct", f"padding {padding}: {formula}.")
    return _feedback(
        exercise,
        "wrong",
        f"with padding {padding} a 32-pixel input becomes {output_size(32, kernel_size, 1, padding, dilation).value} "
        f"pixels, not 32. Hint: {hint}",
    )


# ---- 03 ReLU and pooling ------------------------------------------------------------------------------------


def check_relu_max_pool(answer: Any, x: np.ndarray) -> Feedback:
    """ReLU, then 2x2 max pooling with stride 2, of a small feature map ``x (H, W)``."""
    rectified = torch.relu(_tensor(x, torch.float64)).numpy()  # negatives become 0
    expected = pool2d(rectified, kernel_size=2, stride=2, mode="max")  # (H/2, W/2)
    return _check_array(
        "ReLU, then 2x2 max pooling",
        answer,
        expected,
        right=f"each output is the largest value of its 2x2 window after negatives became 0; {x.shape} -> "
        f"{expected.shape}.",
        hint="first replace every negative number by 0, then cut the map into 2x2 blocks and keep each block's "
        "largest value.",
    )


def check_size_after_pooling(answer: Any, in_size: int, num_pools: int) -> Feedback:
    """The size of a map after ``num_pools`` 2x2 max poolings with stride 2."""
    size = in_size
    for _ in range(num_pools):
        size = output_size(size, kernel_size=2, stride=2).value
    return _check_number(
        f"size after {num_pools} poolings",
        answer,
        size,
        tolerance=0,
        right=f"{in_size} -> " + " -> ".join(str(in_size // 2**k) for k in range(1, num_pools + 1)) + " pixels: "
        f"each feature pixel now summarises {in_size // size}x{in_size // size} input pixels.",
        hint="each 2x2 pooling with stride 2 halves the size.",
    )


# ---- 04 Encoder, decoder and skips --------------------------------------------------------------------------


def check_transposed_output_size(
    answer: Any, in_size: int, kernel_size: int, *, stride: int = 1, padding: int = 0, output_padding: int = 0
) -> Feedback:
    """The output size of a transposed convolution along one dimension."""
    size = transposed_output_size(in_size, kernel_size, stride, padding, output_padding)
    return _check_number(
        "output size of a transposed convolution",
        answer,
        size.value,
        tolerance=0,
        right=str(size.formula),
        hint="the stamps of neighbouring input pixels start `stride` pixels apart; the last stamp adds the "
        "kernel's size, and padding crops that many pixels from each side.",
    )


def check_checkerboard_free(answer: Any, stride: int, in_size: int = 8) -> Feedback:
    """A kernel size whose transposed convolution with ``stride`` covers every output pixel equally often."""
    exercise = f"kernel size without checkerboard at stride {stride}"
    if answer is None:
        return _feedback(exercise, "unanswered", NOT_ANSWERED)
    hint = f"draw the stamps of a row of input pixels, {stride} pixels apart: when do they overlap evenly?"
    if not isinstance(answer, int | np.integer) or isinstance(answer, bool) or answer < 1:
        return _feedback(exercise, "wrong", f"a kernel size is a whole number >= 1, got {answer!r}. Hint: {hint}")
    counts = overlap_count((in_size, in_size), int(answer), stride=stride)
    margin = int(answer)  # the border is covered less often by any kernel: look inside it
    interior = counts[margin:-margin, margin:-margin]
    if interior.size and interior.min() == interior.max():
        return _feedback(
            exercise,
            "correct",
            f"with kernel {answer} every inner output pixel is covered by {interior.min()} stamps, because {answer} "
            f"is a multiple of the stride {stride}.",
        )
    row = " ".join(str(v) for v in counts[counts.shape[0] // 2, margin:-margin][:8])
    return _feedback(
        exercise, "wrong", f"with kernel {answer} the stamp counts along a row go {row}: uneven. Hint: {hint}"
    )


# ---- 05 UNet, 06 FCN-8s, 07 DeepLabv3 -----------------------------------------------------------------------


def check_conv_parameters(
    answer: Any, in_channels: int, out_channels: int, kernel_size: int, *, bias: bool = True
) -> Feedback:
    """The number of weights (and biases) of one ``Conv2d`` layer."""
    with torch.device("meta"):  # shapes only: no memory, even for the paper's 100-million-weight layers
        layer = nn.Conv2d(in_channels, out_channels, kernel_size, bias=bias)
    expected = count_parameters(layer)
    bias_text = f" + {out_channels} biases" if bias else ""
    return _check_number(
        f"parameters of a {kernel_size}x{kernel_size} convolution, {in_channels} -> {out_channels} channels",
        answer,
        expected,
        tolerance=0,
        right=f"{out_channels} kernels of {in_channels}x{kernel_size}x{kernel_size} weights{bias_text} = "
        f"{expected:,}.",
        hint="each output channel has its own kernel, which spans every input channel: "
        "out_channels·in_channels·kernel_size·kernel_size weights, plus one bias per output channel.",
    )


def check_feature_size(
    answer: Any, model: nn.Module, layer: str, input_size: tuple[int, int, int]
) -> Feedback:
    """The ``(C, H, W)`` a named layer of ``model`` outputs for one image of ``input_size = (C, H, W)``."""
    rows = {row.name: row for row in layer_table(model, input_size)}
    if layer not in rows:
        raise ValueError(f"the model has no layer {layer!r}; see layer_table(model) for the names")
    expected = tuple(rows[layer].output_shape[1:])  # drop the batch dimension
    stride = input_size[1] / expected[1]
    return _check_size(
        f"output of {layer}",
        answer,
        expected,
        right=f"{layer} outputs {expected}: {expected[0]} feature maps at 1/{stride:g} of the input's size.",
        hint="give (channels, height, width); count the poolings and strided convolutions before that layer, "
        "each halves H and W.",
    )


def check_unet_concat_channels(answer: Any, model: nn.Module, level: int) -> Feedback:
    """The channels entering a UNet decoder level's convolutions, after the skip is concatenated."""
    block = model.decoder[len(model.decoder) - 1 - level]  # the decoder runs deepest level first
    expected = block.conv[0].in_channels
    return _check_number(
        f"channels after the skip concatenation at level {level}",
        answer,
        expected,
        tolerance=0,
        right=f"{block.up.out_channels} upsampled channels + {model.channels[level]} skip channels from the "
        f"encoder = {expected}.",
        hint="the up-convolution halves the channels coming from below; torch.cat then stacks them with the "
        "encoder's feature maps of the same level.",
    )


def check_dilated_span(answer: Any, kernel_size: int, dilation: int) -> Feedback:
    """How many input pixels (along one direction) a dilated kernel spans."""
    span = output_size(64, kernel_size, dilation=dilation)  # a span of s pixels leaves 64 − s + 1 outputs
    expected = 64 - span.value + 1
    return _check_number(
        f"span of a {kernel_size}x{kernel_size} kernel with dilation {dilation}",
        answer,
        expected,
        tolerance=0,
        right=f"{kernel_size} taps, {dilation} pixels apart, span {dilation}·({kernel_size} − 1) + 1 = {expected} "
        f"pixels, with still only {kernel_size}x{kernel_size} weights.",
        hint="dilation d puts d − 1 holes between neighbouring taps; count the pixels from the first tap to the last.",
    )


def check_receptive_field(answer: Any, layers: nn.Module) -> Feedback:
    """How many input pixels across one output pixel of a stack of layers can see."""
    fields = receptive_field(layers)
    last = fields[-1]
    path = " → ".join(f"{field.size:g}" for field in fields)
    return _check_number(
        "receptive field of a stack of layers",
        answer,
        last.size,
        tolerance=0,
        right=f"layer by layer the field grows {path} pixels: each layer adds dilation·(kernel_size − 1) "
        "times the jump (the product of the strides before it).",
        hint="start at 1 pixel; each layer adds dilation·(kernel_size − 1)·jump, where jump is the product of the "
        "strides of the layers before it (a 2x2 pooling with stride 2 doubles it).",
    )


# ---- 08 Loss, backpropagation, optimizer --------------------------------------------------------------------


def check_cross_entropy(answer: Any, logits: np.ndarray | torch.Tensor, masks: np.ndarray | torch.Tensor) -> Feedback:
    """The mean per-pixel cross-entropy of ``logits (N, K, H, W)`` against ``masks (N, H, W)``."""
    logits, masks = _tensor(logits, torch.float64), _tensor(masks, torch.int64)
    expected = float(cross_entropy_loss(logits, masks))
    return _check_number(
        "per-pixel cross-entropy",
        answer,
        expected,
        tolerance=0.005,
        right=f"the mean of −log p(true class) over the {masks.numel()} pixels is {expected:.4f}.",
        hint="softmax each pixel's logits over the classes (exp, then divide by the sum), take −log of the "
        "probability of the true class, then average over the pixels.",
    )


def check_dice(
    answer: Any, preds: np.ndarray | torch.Tensor, masks: np.ndarray | torch.Tensor, class_index: int
) -> Feedback:
    """The Dice score of one class, ``2 TP / (2 TP + FP + FN)``."""
    masks, preds = _tensor(masks, torch.int64), _tensor(preds, torch.int64)
    num_classes = int(max(masks.max(), preds.max(), class_index)) + 1
    matrix = confusion_matrix(masks, preds, num_classes, ignore_index=None)
    expected = float(dice_per_class(matrix)[class_index])
    true_pos = int(matrix[class_index, class_index])
    predicted, labelled = int(matrix[:, class_index].sum()), int(matrix[class_index].sum())
    return _check_number(
        f"Dice of class {class_index}",
        answer,
        expected,
        right=f"2·{true_pos} / ({predicted} predicted + {labelled} labelled pixels) = {expected:.3f}.",
        hint=f"count the pixels that are class {class_index} in both (TP), in the prediction only (FP) and in the "
        "mask only (FN); Dice = 2·TP / (2·TP + FP + FN).",
    )


def check_sgd_step(answer: Any, weight: float, grad: float, lr: float) -> Feedback:
    """A weight after one plain gradient-descent step."""
    parameter = nn.Parameter(torch.tensor([float(weight)], dtype=torch.float64))
    parameter.grad = torch.tensor([float(grad)], dtype=torch.float64)
    torch.optim.SGD([parameter], lr=lr).step()  # what the optimizer does: w <- w − lr·grad
    expected = float(parameter.detach()[0])
    return _check_number(
        "one gradient-descent step",
        answer,
        expected,
        tolerance=1e-6,
        right=f"{weight:g} − {lr:g}·({grad:g}) = {expected:g}: the weight moves against its gradient.",
        hint="the new weight is the old one minus the learning rate times the gradient (mind the sign).",
    )


# ---- 09 Training and evaluating -----------------------------------------------------------------------------


def check_iou(answer: Any, matrix: np.ndarray | torch.Tensor, class_index: int) -> Feedback:
    """The IoU of one class from a confusion matrix (rows: true classes, columns: predicted classes)."""
    matrix = _tensor(matrix, torch.int64)
    expected = float(iou_per_class(matrix)[class_index])
    true_pos = int(matrix[class_index, class_index])
    false_pos = int(matrix[:, class_index].sum()) - true_pos
    false_neg = int(matrix[class_index].sum()) - true_pos
    return _check_number(
        f"IoU of class {class_index}",
        answer,
        expected,
        right=f"{true_pos} / ({true_pos} + {false_pos} + {false_neg}) = {expected:.3f}.",
        hint=f"TP is the diagonal entry [{class_index}, {class_index}]; FP the rest of column {class_index} "
        f"(predicted as it, truly another class); FN the rest of row {class_index}. IoU = TP / (TP + FP + FN).",
    )


def check_fixed_mask(answer: Any, mask: np.ndarray) -> Feedback:
    """A mask saved as {0, 255} turned into class indices {0, 1}."""
    mask = np.asarray(mask)
    expected = (mask == mask.max()).astype(np.float64)  # 255 (the drawn class) becomes 1, 0 stays 0
    return _check_array(
        "a 0/255 mask as class indices",
        answer,
        expected,
        tolerance=0,
        right=f"{int(expected.sum())} pixels are class 1 and {int(expected.size - expected.sum())} class 0; the "
        "mask now holds class indices, as the loss and the metrics expect.",
        hint="a mask must hold the class index of each pixel (0, 1, ...), not a grey value: map 255 to 1, "
        "e.g. (mask == 255).astype(np.int64) or mask // 255.",
    )


# ---- 10 Real tissue -----------------------------------------------------------------------------------------


def check_tile_count(answer: Any, height: int, width: int, tile_size: int, overlap: int) -> Feedback:
    """How many tiles a sliding-window prediction cuts an ``height x width`` image into."""
    rows, cols = tile_starts(height, tile_size, overlap), tile_starts(width, tile_size, overlap)
    expected = len(rows) * len(cols)
    return _check_number(
        "tiles of a sliding-window prediction",
        answer,
        expected,
        tolerance=0,
        right=f"{len(rows)} rows of tiles (starting at {rows}) x {len(cols)} columns = {expected} tiles.",
        hint=f"tiles start every tile_size − overlap = {tile_size - overlap} pixels, and one more tile is added "
        "where needed so the last one ends at the image's edge; count rows and columns separately.",
    )


# ---- 11 Comparing the architectures -------------------------------------------------------------------------


def check_most_parameters(answer: Any, size: str = "small", num_classes: int = 2) -> Feedback:
    """Which of ``list_models()`` has the most parameters at ``size``."""
    exercise = f"the model with the most parameters at size {size!r}"
    if answer is None:
        return _feedback(exercise, "unanswered", NOT_ANSWERED)
    with torch.device("meta"):
        models = {name: create_model(name, num_classes=num_classes, size=size) for name in list_models()}
    counts = {name: count_parameters(model) for name, model in models.items()}
    if answer not in counts:
        return _feedback(exercise, "wrong", f"answer with one of {list(counts)}, got {answer!r}.")
    expected = max(counts, key=counts.get)
    table = ", ".join(f"{name} {count:,}" for name, count in counts.items())
    if answer == expected:
        return _feedback(exercise, "correct", f"{table}.")
    return _feedback(
        exercise, "wrong", f"{answer} has {counts[answer]:,} parameters; another has more. "
        "Hint: count them with count_parameters(create_model(name, size=size)) for each name in list_models()."
    )


__all__ = [
    "Feedback",
    "check_checkerboard_free",
    "check_class_share",
    "check_conv_parameters",
    "check_conv_pixel",
    "check_cross_entropy",
    "check_dice",
    "check_dilated_span",
    "check_feature_size",
    "check_fixed_mask",
    "check_iou",
    "check_label_map",
    "check_most_parameters",
    "check_output_size",
    "check_pixel_accuracy",
    "check_pixel_value",
    "check_receptive_field",
    "check_relu_max_pool",
    "check_same_padding",
    "check_size_after_pooling",
    "check_sgd_step",
    "check_tile_count",
    "check_transposed_output_size",
    "check_unet_concat_channels",
]
