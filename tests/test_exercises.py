"""The exercise checks: every stored solution passes, unanswered exercises stay quiet, wrong answers get a hint.

Each notebook's exercises are replayed as a learner meets them: its Setup cell, then for every exercise the stub
cell (answer still None), then the solution file that ``# %load`` would paste in. The checks' right answers are
compared here with independent computations in plain torch/numpy.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segtutor import exercises
from segtutor.exercises import Feedback
from segtutor.models import create_model, list_models

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"
COURSE = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def run_cell(code: str, namespace: dict):
    """Run ``code`` as a notebook cell does: all statements, and return the value of a final expression."""
    tree = ast.parse(code)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<cell>", "exec"), namespace)  # noqa: S102 (our own notebook's code)
    return eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace) if last else None  # noqa: S307


def exercise_cells(path: Path) -> tuple[str, list[tuple[str, str, Path]]]:
    """The Setup cell, and ``(heading, stub, solution file)`` of every exercise of a notebook."""
    cells = nbformat.read(path, as_version=4).cells
    code = [cell.source for cell in cells if cell.cell_type == "code"]
    found = []
    for index, cell in enumerate(cells):
        heading = next((line for line in cell.source.splitlines() if line.startswith("### Exercise")), None)
        if cell.cell_type == "markdown" and heading:
            load = cells[index + 2].source.strip().removeprefix("# %load ")
            found.append((heading, cells[index + 1].source, NOTEBOOKS / load))
    return code[0], found


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.name)
def test_every_solution_passes_its_check(path, capsys):
    setup, found = exercise_cells(path)
    assert found, f"{path.name} has no exercises"
    namespace: dict = {}
    run_cell(setup, namespace)
    for heading, stub, solution in found:
        unanswered = run_cell(stub, namespace)
        assert isinstance(unanswered, Feedback), f"{path.name} {heading!r}: the stub must end with its check call"
        assert unanswered.status == "unanswered", f"{path.name} {heading!r}: {unanswered.message}"
        assert "not answered yet" in capsys.readouterr().out
        feedback = run_cell(solution.read_text(), namespace)
        assert isinstance(feedback, Feedback), f"{solution.name} must end with its check call"
        assert feedback.correct, f"{solution.name} fails its own check: {feedback.message}"
        assert feedback.message.startswith("✓") and feedback.message in capsys.readouterr().out


# ---- the checks' right answers agree with independent computations ---------------------------------------------


def test_conv_pixel_matches_torch():
    rng = np.random.default_rng(0)
    image, kernel = rng.integers(-3, 4, size=(6, 7)).astype(float), rng.integers(-2, 3, size=(3, 3)).astype(float)
    expected = F.conv2d(torch.tensor(image)[None, None], torch.tensor(kernel)[None, None], stride=2, padding=1)
    feedback = exercises.check_conv_pixel(float(expected[0, 0, 1, 2]), image, kernel, (1, 2), stride=2, padding=1)
    assert feedback.correct
    assert not exercises.check_conv_pixel(float(expected[0, 0, 1, 2]) + 1, image, kernel, (1, 2), stride=2,
                                          padding=1).correct  # fmt: skip


@pytest.mark.parametrize(
    "in_size, kernel_size, stride, padding, dilation", [(97, 3, 2, 1, 1), (64, 5, 1, 4, 2), (33, 7, 3, 0, 1)]
)
def test_output_size_matches_torch(in_size, kernel_size, stride, padding, dilation):
    layer = nn.Conv2d(1, 1, kernel_size, stride=stride, padding=padding, dilation=dilation)
    expected = layer(torch.zeros(1, 1, in_size, in_size)).shape[-1]
    settings = dict(kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation)
    assert exercises.check_output_size(expected, in_size, **settings).correct
    assert not exercises.check_output_size(expected + 1, in_size, **settings).correct


def test_same_padding_accepts_exactly_the_padding_that_keeps_the_size():
    for kernel_size, dilation in [(3, 1), (5, 2), (7, 3)]:
        keeps = [p for p in range(12) if nn.Conv2d(1, 1, kernel_size, padding=p, dilation=dilation)(
            torch.zeros(1, 1, 40, 40)).shape[-1] == 40]  # fmt: skip
        results = [exercises.check_same_padding(p, kernel_size, dilation=dilation).correct for p in range(12)]
        assert [p for p, ok in enumerate(results) if ok] == keeps


def test_relu_max_pool_matches_torch():
    x = np.random.default_rng(1).normal(size=(6, 4))
    expected = F.max_pool2d(torch.relu(torch.tensor(x))[None], 2)[0].numpy()
    assert exercises.check_relu_max_pool(expected, x).correct
    assert not exercises.check_relu_max_pool(F.max_pool2d(torch.tensor(x)[None], 2)[0].numpy() - 1, x).correct


def test_transposed_output_size_matches_torch():
    layer = nn.ConvTranspose2d(1, 1, kernel_size=4, stride=2, padding=1)
    expected = layer(torch.zeros(1, 1, 12, 12)).shape[-1]
    assert exercises.check_transposed_output_size(expected, 12, 4, stride=2, padding=1).correct


def test_even_overlap_accepts_multiples_of_the_stride_only():
    for stride in (2, 3):
        accepted = [k for k in range(1, 9) if exercises.check_even_overlap(k, stride=stride).correct]
        assert accepted == [k for k in range(1, 9) if k % stride == 0]


def test_conv_parameters_match_a_real_layer():
    layer = nn.Conv2d(16, 32, 5)
    assert exercises.check_conv_parameters(sum(p.numel() for p in layer.parameters()), 16, 32, 5).correct
    assert exercises.check_conv_parameters(16 * 32 * 25, 16, 32, 5, bias=False).correct
    assert not exercises.check_conv_parameters(16 * 32 * 25, 16, 32, 5).correct  # the biases were forgotten


def test_cross_entropy_matches_torch():
    logits = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(0))
    masks = torch.randint(0, 3, (2, 4, 5), generator=torch.Generator().manual_seed(1))
    assert exercises.check_cross_entropy(F.cross_entropy(logits, masks), logits, masks).correct
    assert not exercises.check_cross_entropy(F.cross_entropy(logits, masks) + 0.1, logits, masks).correct


def test_dice_iou_and_accuracy_match_brute_force():
    rng = np.random.default_rng(2)
    masks, preds = rng.integers(0, 3, size=(5, 7)), rng.integers(0, 3, size=(5, 7))
    both, predicted, labelled = ((preds == 1) & (masks == 1)).sum(), (preds == 1).sum(), (masks == 1).sum()
    assert exercises.check_dice(2 * both / (predicted + labelled), preds, masks, class_index=1).correct
    matrix = np.array([[(masks == t).__and__(preds == p).sum() for p in range(3)] for t in range(3)])
    assert exercises.check_iou(both / (predicted + labelled - both), matrix, class_index=1).correct
    assert exercises.check_pixel_accuracy((masks == preds).mean(), preds, masks).correct


def test_sgd_step_matches_the_rule():
    assert exercises.check_sgd_step(0.8 + 0.01 * 2.5, weight=0.8, grad=-2.5, lr=0.01).correct
    assert not exercises.check_sgd_step(0.8 - 0.01 * 2.5, weight=0.8, grad=-2.5, lr=0.01).correct  # sign flipped


def test_receptive_field_matches_the_formula():
    stack = nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3, dilation=3))
    field = 1 + 2 * 1 + 1 * 1 + 3 * 2 * 2  # conv: +2; pool: +1, jump 2; dilated conv: +3·2·2
    assert exercises.check_receptive_field(field, stack).correct


def test_tile_count_and_most_parameters():
    starts = len(range(0, 300 - 128 + 1, 96)) + 1  # 0, 96, then one more ending at the edge (172)
    assert exercises.check_tile_count(starts * starts, 300, 300, tile_size=128, overlap=32).correct
    with torch.device("meta"):
        counts = {name: sum(p.numel() for p in create_model(name).parameters())
                  for name in list_models()}  # fmt: skip
    assert exercises.check_most_parameters(max(counts, key=counts.get)).correct
    assert not exercises.check_most_parameters(min(counts, key=counts.get)).correct


def test_downsample_matches_a_slide_read_at_that_magnification(tmp_path):
    from segtutor.data import Slide, write_sample_slide

    slide_path, _ = write_sample_slide(tmp_path, size=256)
    scan = Slide(slide_path, mpp=0.25)  # as if it were a 40× scan
    assert exercises.check_downsample(scan.downsample(magnification=10), slide_mpp=0.25, magnification=10).correct
    assert exercises.check_downsample(scan.downsample(magnification=5), slide_mpp=0.25, magnification=5).correct
    assert not exercises.check_downsample(16, slide_mpp=0.25, magnification=10).correct  # pixels by area


def test_field_in_microns_is_the_hand_counted_field_times_the_pixel_size():
    stack = nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3, dilation=3))
    field = 1 + 2 * 1 + 1 * 1 + 3 * 2 * 2  # 16 pixels, as in test_receptive_field_matches_the_formula
    assert exercises.check_field_in_microns(field * 0.25, stack, magnification=40).correct
    assert exercises.check_field_in_microns(field * 2.0, stack, magnification=5).correct
    assert not exercises.check_field_in_microns(field, stack, magnification=40).correct  # pixels, not µm


def test_ece_share_won_back_and_trainable_parameters_match_independent_computations():
    from segtutor.metrics import expected_calibration_error

    rng = np.random.default_rng(0)
    confidences = rng.uniform(0.5, 1.0, size=200)
    correct = rng.random(200) < confidences - 0.1  # overconfident by about 0.1
    # Two-class logits whose softmax gives exactly these confidences, right where correct says so.
    logits = torch.tensor(np.log(np.stack([confidences, 1 - confidences])))[None, :, :, None]  # (1, 2, 200, 1)
    masks = torch.tensor(np.where(correct, 0, 1))[None, :, None]  # (1, 200, 1)
    expected = expected_calibration_error(logits, masks, num_bins=10)
    assert exercises.check_ece(expected, confidences, correct, num_bins=10).correct
    histogram = np.histogram(confidences, bins=10, range=(0, 1))[0]  # numpy's [low, high) bins: the same here
    bins = np.minimum((confidences * 10).astype(int), 9)
    by_numpy = sum(abs(correct[bins == b].mean() - confidences[bins == b].mean()) * n / 200
                   for b, n in enumerate(histogram) if n)  # fmt: skip
    assert exercises.check_ece(by_numpy, confidences, correct, num_bins=10).correct
    with pytest.raises(ValueError, match="bin edge"):  # a confidence of 0.6 with 5 bins: the convention decides
        exercises.check_ece(0.2, np.array([0.55, 0.6]), np.array([1, 0]), num_bins=5)
    assert not exercises.check_ece(expected + 0.01, confidences, correct, num_bins=10).correct
    assert exercises.check_share_won_back(0.5, home_iou=0.9, shifted_iou=0.7, fixed_iou=0.8).correct
    with pytest.raises(ValueError, match="nothing was lost"):
        exercises.check_share_won_back(0.5, home_iou=0.7, shifted_iou=0.7, fixed_iou=0.8)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 2, 1))
    model[0].requires_grad_(False)
    assert exercises.check_trainable_parameters(4 * 2 + 2, model).correct
    assert not exercises.check_trainable_parameters(3 * 4 * 9 + 4 + 4 * 2 + 2, model).correct


# ---- feedback: unanswered, wrong answers, wrong types ----------------------------------------------------------

WRONG_ANSWERS = [  # (check, arguments after the answer, a wrong answer, words the hint must contain)
    (exercises.check_label_map, (np.array([[[0.9, 0.2]], [[0.1, 0.8]]]),), [[1, 0]], "argmax"),
    (exercises.check_pixel_accuracy, (np.array([1, 0]), np.array([1, 1])), 50, "share"),
    (exercises.check_pixel_value, (np.arange(12).reshape(2, 2, 3), 0, 1), (0, 1, 2), "row"),
    (exercises.check_class_share, (np.array([0, 1, 1, 1]), 1), 0.25, "mask == 1"),
    (exercises.check_conv_pixel, (np.eye(4), np.ones((3, 3)), (0, 0)), 9, "multiply"),
    (exercises.check_output_size, (32, 3), 32, "padding"),
    (exercises.check_same_padding, (3,), 2, "dilation"),
    (exercises.check_relu_max_pool, (np.array([[-1.0, 2.0], [3.0, -4.0]]),), [[3.0, 0.0]], "shape"),
    (exercises.check_size_after_pooling, (128, 2), 64, "halves"),
    (exercises.check_transposed_output_size, (4, 2), 8, "stride"),
    (exercises.check_even_overlap, (2,), 3, "uneven"),
    (exercises.check_conv_parameters, (3, 8, 3), 216, "bias"),
    (exercises.check_dilated_span, (3, 2), 3, "holes"),
    (exercises.check_cross_entropy, (torch.zeros(1, 2, 1, 1), torch.zeros(1, 1, 1, dtype=torch.long)), 0.5, "softmax"),
    (exercises.check_dice, (np.array([1, 0]), np.array([1, 1]), 1), 0.5, "TP"),
    (exercises.check_sgd_step, (1.0, 2.0, 0.1), 1.2, "minus"),
    (exercises.check_iou, (np.array([[5, 1], [1, 2]]), 1), 0.4, "TP"),
    (exercises.check_fixed_mask, (np.array([[0, 255]]),), np.array([[0, 255]]), "class index"),
    (exercises.check_tile_count, (300, 300, 128, 32), 4, "overlap"),
    (exercises.check_most_parameters, (), "unet", "count_parameters"),
    (exercises.check_downsample, (0.25, 10), 16, "10 / magnification"),
    (exercises.check_field_in_microns, (nn.Conv2d(3, 2, 3), 40), 3, "µm per pixel"),
    (exercises.check_share_won_back, (0.9, 0.7, 0.8), 0.1, "divide the gain by the loss"),
    (exercises.check_ece, (np.array([0.9, 0.65]), np.array([1, 1]), 5), 0.1, "mean confidence"),
    (exercises.check_trainable_parameters, (nn.Linear(2, 2),), 4, "requires_grad"),
]


@pytest.mark.parametrize("check, arguments, wrong, hint", WRONG_ANSWERS, ids=lambda v: getattr(v, "__name__", ""))
def test_wrong_answer_says_not_yet_with_a_hint(check, arguments, wrong, hint, capsys):
    feedback = check(wrong, *arguments)
    assert feedback.status == "wrong" and not feedback.correct
    assert feedback.message.startswith("✗ Not yet") and hint in feedback.message, feedback.message
    assert feedback.message in capsys.readouterr().out  # printed for the learner


@pytest.mark.parametrize("check, arguments, wrong, hint", WRONG_ANSWERS, ids=lambda v: getattr(v, "__name__", ""))
def test_unanswered_prints_not_answered_yet_and_raises_nothing(check, arguments, wrong, hint, capsys):
    feedback = check(None, *arguments)
    assert feedback.status == "unanswered" and not feedback.correct
    assert "not answered yet" in capsys.readouterr().out


@pytest.mark.parametrize("answer", ["seven", [1, 2], True, {"a": 1}])
def test_answers_of_the_wrong_type_are_wrong_not_errors(answer, capsys):
    feedback = exercises.check_output_size(answer, 32, 3)
    assert feedback.status == "wrong" and "one number" in feedback.message


def test_a_correct_answer_shows_the_working():
    feedback = exercises.check_conv_pixel(45, np.arange(16).reshape(4, 4), np.ones((3, 3)), (0, 0))
    assert feedback.correct and "0·1 + 1·1" in feedback.message and feedback.message.endswith("= 45")
    assert str(feedback) == feedback.message


def test_position_outside_the_output_is_an_error():
    with pytest.raises(ValueError, match="outside"):
        exercises.check_conv_pixel(0, np.eye(4), np.ones((3, 3)), (2, 0))


def test_feature_size_names_an_unknown_layer():
    with pytest.raises(ValueError, match="layer_table"):
        exercises.check_feature_size((1, 1, 1), create_model("unet", size="tiny"), "nope", (3, 32, 32))


def test_rounded_hand_computations_are_accepted():
    assert exercises.check_class_share(0.33, np.array([0, 0, 1]), 1).correct  # 0.333...
    assert not exercises.check_class_share(0.3, np.array([0, 0, 1]), 1).correct
    coin_flip = (torch.zeros(1, 2, 1, 1), torch.zeros(1, 1, 1, dtype=torch.long))  # two equal scores: loss ln 2
    assert exercises.check_cross_entropy(round(math.log(2), 3), *coin_flip).correct


# ---- answers that must not pass, and right answers in natural forms that must (course review, section 3) ------

PROBS_WITH_A_TIE = np.array([[[0.9, 0.4, 0.5]], [[0.1, 0.6, 0.5]]])  # (K=2, H=1, W=3): the last pixel is a tie


def half_frozen() -> nn.Module:
    """Two convolutions, the first frozen: 64·4·9 + 64 = 2,368 of its 2,408 parameters learn."""
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Conv2d(4, 64, 3))
    model[0].requires_grad_(False)
    return model


def wrong_answers():
    return [  # (check, answer, arguments after the answer, words the message must contain)
        (exercises.check_conv_parameters, 512 * 1024 * 9, (512, 1024, 3), "bias"),  # the biases forgotten
        (exercises.check_conv_parameters, 4096 * 512 * 7 * 7, (512, 4096, 7), "bias"),
        (exercises.check_conv_parameters, 512 * 1024 * 9 + 1024 + 1000, (512, 1024, 3), "is not it"),
        (exercises.check_output_size, 49.04, (97, 3), "not a whole number"),
        (exercises.check_tile_count, 299.8, (960, 1280, 96, 32), "not a whole number"),
        (exercises.check_dilated_span, 25.02, (3, 12), "not a whole number"),
        (exercises.check_feature_size, (64.5, 12, 12), (create_model("unet"), "encoder.3", (3, 96, 96)), "whole"),
        (exercises.check_even_overlap, 6.5, (3,), "whole number"),
        (exercises.check_even_overlap, True, (3,), "whole number"),
        (exercises.check_pixel_value, (5, 4, 3), (np.arange(12).reshape(2, 2, 3), 0, 1), "reverse order"),
        (exercises.check_most_parameters, "U-Net", (), "another has more"),
        (exercises.check_most_parameters, "SegNet", (), "one of"),
        # a count of parameters compares exactly, however large: 10 off in 36,928 is wrong
        (exercises.check_trainable_parameters, 64 * 64 * 9 + 64 + 10, (nn.Conv2d(64, 64, 3),), "is not it"),
        (exercises.check_trainable_parameters, 4 * 9 + 4 + 64 * 4 * 9 + 64, (half_frozen(),), "frozen ones too"),
    ]


@pytest.mark.parametrize("check, answer, arguments, words", wrong_answers(), ids=lambda v: getattr(v, "__name__", ""))
def test_wrong_answers_do_not_pass(check, answer, arguments, words, capsys):
    feedback = check(answer, *arguments)
    assert feedback.status == "wrong", feedback.message
    assert words in feedback.message, feedback.message


def natural_answers():
    unet = create_model("unet")
    return [  # (check, a right answer in a natural form, arguments after the answer)
        (exercises.check_conv_parameters, np.int64(512 * 1024 * 9 + 1024), (512, 1024, 3)),
        (exercises.check_conv_parameters, torch.tensor(512 * 1024 * 9 + 1024), (512, 1024, 3)),
        (exercises.check_output_size, (97 + 2 - 2 - 1) / 2 + 1, (97, 3), {"stride": 2, "padding": 1}),  # 49.0
        (exercises.check_output_size, np.int32(49), (97, 3), {"stride": 2, "padding": 1}),
        (exercises.check_feature_size, np.array([64, 12, 12]), (unet, "encoder.3", (3, 96, 96))),
        (exercises.check_feature_size, torch.tensor([64, 12, 12]), (unet, "encoder.3", (3, 96, 96))),
        (exercises.check_feature_size, tuple(torch.tensor([64, 12, 12])), (unet, "encoder.3", (3, 96, 96))),
        (exercises.check_feature_size, (64.0, 12, 12), (unet, "encoder.3", (3, 96, 96))),
        (exercises.check_feature_size, [64, 12, 12], (unet, "encoder.3", (3, 96, 96))),
        (exercises.check_feature_size, torch.Size([64, 12, 12]), (unet, "encoder.3", (3, 96, 96))),
        (exercises.check_even_overlap, torch.tensor(6), (3,)),
        (exercises.check_even_overlap, 6.0, (3,)),
        (exercises.check_even_overlap, 21, (3,)),  # a large multiple of the stride: the probe grows with it
        (exercises.check_even_overlap, 24, (3,)),
        (exercises.check_label_map, (PROBS_WITH_A_TIE[1] >= 0.5).astype(int), (PROBS_WITH_A_TIE,)),
        (exercises.check_label_map, PROBS_WITH_A_TIE.argmax(0), (PROBS_WITH_A_TIE,)),
        (exercises.check_label_map, torch.tensor(PROBS_WITH_A_TIE).argmax(0), (PROBS_WITH_A_TIE,)),
        (exercises.check_most_parameters, "FCN-8s", ()),
        (exercises.check_most_parameters, "FCN8s", ()),
        (exercises.check_most_parameters, " fcn_8s ", ()),
        (exercises.check_tile_count, np.int64(15 * 20), (960, 1280, 96, 32)),
        (exercises.check_same_padding, 4.0, (5,), {"dilation": 2}),
        (exercises.check_trainable_parameters, 64 * 4 * 9 + 64, (half_frozen(),)),
        (exercises.check_trainable_parameters, torch.tensor(float(64 * 4 * 9 + 64)), (half_frozen(),)),
        (exercises.check_tile_count, 300.0, (960, 1280, 96, 32)),
    ]


@pytest.mark.parametrize("probe", natural_answers(), ids=lambda v: v[0].__name__)
def test_right_answers_in_natural_forms_pass(probe, capsys):
    check, answer, arguments, *keywords = probe
    feedback = check(answer, *arguments, **(keywords[0] if keywords else {}))
    assert feedback.correct, feedback.message


def test_a_tie_accepts_either_class_but_nothing_else():
    assert exercises.check_label_map([[0, 1, 0]], PROBS_WITH_A_TIE).correct
    assert exercises.check_label_map([[0, 1, 1]], PROBS_WITH_A_TIE).correct
    assert not exercises.check_label_map([[1, 1, 1]], PROBS_WITH_A_TIE).correct  # pixel 0 is no tie


def test_even_overlap_has_an_interior_for_every_kernel():
    for stride in (2, 3, 4):
        for kernel_size in range(1, 40):
            feedback = exercises.check_even_overlap(kernel_size, stride=stride)
            assert feedback.correct == (kernel_size % stride == 0), feedback.message
            assert "go  :" not in feedback.message  # never an empty row of counts


@pytest.mark.parametrize("spelling, key", [("FCN-8s", "fcn8s"), ("U-Net", "unet"), ("UNet", "unet"),
                                           ("DeepLabv3", "deeplabv3"), ("DeepLabV3+", "deeplabv3plus"),
                                           ("deeplab v3+", "deeplabv3plus"), ("DeepLabV3Plus", "deeplabv3plus")])
def test_model_names_as_the_prose_spells_them(spelling, key):
    from segtutor.exercises.architectures import model_key

    assert model_key(spelling) == key and key in list_models()


# ---- the new exercises of notebook 08: soft Dice, the chain rule, Adam, loss curves -------------------------------


def test_soft_dice_loss_matches_a_pixel_loop_and_names_the_usual_mistakes(capsys):
    probs = np.array([[[0.8, 0.3, 0.4]], [[0.2, 0.7, 0.6]]])  # (K, H, W)
    masks = np.array([[0, 1, 1]])
    dices = []
    for k in range(2):
        overlap = sum(probs[k, 0, x] * (masks[0, x] == k) for x in range(3))
        sizes = sum(probs[k, 0, x] + (masks[0, x] == k) for x in range(3))
        dices.append((2 * overlap + 1) / (sizes + 1))
    expected = 1 - sum(dices) / 2  # 1 − (2.6/3.5 + 3.6/4.5)/2 = 0.2286
    assert expected == pytest.approx(0.228571, abs=1e-6)
    assert exercises.check_soft_dice_loss(expected, probs, masks).correct
    assert not exercises.check_soft_dice_loss(expected + 0.01, probs, masks).correct
    assert "mean soft Dice" in exercises.check_soft_dice_loss(1 - expected, probs, masks).message
    assert "smooth" in exercises.check_soft_dice_loss(1 - (1.6 / 2.5 + 2.6 / 3.5) / 2, probs, masks).message
    assert "hard prediction" in exercises.check_soft_dice_loss(0.0, probs, masks).message
    vnet = 1 - ((1.6 + 1) / (0.89 + 1 + 1) + (2.6 + 1) / (0.89 + 2 + 1)) / 2  # Σp² below the fraction
    assert "V-Net" in exercises.check_soft_dice_loss(vnet, probs, masks).message


def test_chain_rule_matches_a_finite_difference(capsys):
    x, w1, w2 = 1.5, 0.8, -0.5

    def loss(first: float, second: float) -> float:  # −log sigmoid(w2 · relu(w1 · x))
        return math.log(1 + math.exp(-second * max(0.0, first * x)))

    step = 1e-6
    slope = (loss(w1 + step, w2) - loss(w1 - step, w2)) / (2 * step)  # no autograd: the definition of a slope
    assert exercises.check_chain_rule(slope, x=x, w1=w1, w2=w2).correct
    assert not exercises.check_chain_rule(slope + 0.01, x=x, w1=w1, w2=w2).correct
    for_w2 = (loss(w1, w2 + step) - loss(w1, w2 - step)) / (2 * step)
    assert "∂loss/∂w2" in exercises.check_chain_rule(for_w2, x=x, w1=w1, w2=w2).message
    assert "sign" in exercises.check_chain_rule(-slope, x=x, w1=w1, w2=w2).message
    assert exercises.check_chain_rule(0.0, x=x, w1=-0.8, w2=w2).correct  # a closed ReLU passes no gradient back


def test_adam_steps_match_the_papers_algorithm(capsys):
    weight, grads, lr, (beta1, beta2), eps = 0.5, [0.02, -0.005], 0.1, (0.9, 0.999), 1e-8
    w, m, v = weight, 0.0, 0.0
    for t, g in enumerate(grads, start=1):  # Kingma & Ba, Algorithm 1
        m, v = beta1 * m + (1 - beta1) * g, beta2 * v + (1 - beta2) * g * g
        w -= lr * (m / (1 - beta1**t)) / (math.sqrt(v / (1 - beta2**t)) + eps)
    assert w == pytest.approx(0.35305, abs=1e-5)
    assert exercises.check_adam_steps(w, weight=weight, grads=grads, lr=lr).correct
    assert not exercises.check_adam_steps(w + 0.001, weight=weight, grads=grads, lr=lr).correct
    sgd = weight - lr * sum(grads)
    assert "plain gradient descent" in exercises.check_adam_steps(sgd, weight=weight, grads=grads, lr=lr).message
    assert "first step" in exercises.check_adam_steps(0.4, weight=weight, grads=grads, lr=lr).message
    # the scale of the gradients does not matter to Adam (up to eps): a hundred times larger, the same steps
    assert exercises.check_adam_steps(w, weight=weight, grads=[100 * g for g in grads], lr=lr).correct


def test_loss_curves_are_reproducible_and_each_kind_is_recognised(capsys):
    runs = exercises.example_loss_curves()
    again = exercises.example_loss_curves()
    assert all(np.array_equal(runs[name].train, again[name].train) for name in "ABC")
    kinds = {name: exercises.diagnose_loss_curves(run) for name, run in runs.items()}
    assert sorted(kinds.values()) == ["learning", "overfitting", "too high a learning rate"]
    overfit = next(name for name, kind in kinds.items() if kind == "overfitting")
    high = next(name for name, kind in kinds.items() if kind == "too high a learning rate")
    # the curves show what the names say: overfitting ends with its validation loss well above its lowest point
    # while its training loss kept falling; too high a learning rate jumps far above its first loss
    assert runs[overfit].val[-1] > 1.3 * runs[overfit].val.min() and runs[overfit].train[-1] < 0.1
    assert runs[high].train.max() > 3 * runs[high].train[0]
    assert exercises.check_loss_curves((overfit, high), runs).correct
    assert exercises.check_loss_curves([overfit.lower(), high.lower()], runs).correct
    assert "other way round" in exercises.check_loss_curves((high, overfit), runs).message
    assert not exercises.check_loss_curves("AB", runs).correct
    for seed in range(20):  # every seed gives one run of each kind
        kinds = sorted(exercises.diagnose_loss_curves(run) for run in exercises.example_loss_curves(seed).values())
        assert kinds == ["learning", "overfitting", "too high a learning rate"], seed


def test_missed_tumor_cross_entropy_is_the_share_weighted_mean():
    expected = -(0.98 * math.log(0.95) + 0.02 * math.log(0.05))
    assert exercises.check_missed_tumor_cross_entropy(expected, tumor_share=0.02, p_tumor=0.05).correct
    assert not exercises.check_missed_tumor_cross_entropy(-math.log(0.05), tumor_share=0.02, p_tumor=0.05).correct


def test_first_step_reads_the_time_machine():
    from segtutor.data import TissueDataset
    from segtutor.train import TimeMachine, TrainConfig, fit

    data = TissueDataset(4, 32, seed=0)
    machine = TimeMachine(data, max_time_share=None)
    fit(create_model("unet", size="tiny", seed=0), data, None, TrainConfig(lr=1e-2, max_iters=30, batch_size=4),
        [machine])  # fmt: skip
    reached = [s.iteration for s in machine.snapshots if s.iou[1] >= 0.3]
    assert reached, "the tiny run should reach tumor IoU 0.3 on its own training tile"
    assert exercises.check_first_step(reached[0], machine, "tumor", 0.3).correct
    assert not exercises.check_first_step(reached[0] + 1, machine, "tumor", 0.3).correct
    assert not exercises.check_first_step(reached[0] + 0.4, machine, "tumor", 0.3).correct  # a step is whole
    assert exercises.check_first_step(float(reached[0]), machine, "tumor", 0.3).correct
    steps = machine.iterations
    if reached[0] > 0:
        before = steps[steps.index(reached[0]) - 1]
        assert "one snapshot later" in exercises.check_first_step(before, machine, "tumor", 0.3).message
    later = [step for step in steps if step > reached[0]]
    if later:
        assert "one snapshot earlier" in exercises.check_first_step(later[0], machine, "tumor", 0.3).message
    assert not exercises.check_first_step(0, machine, "tumor", 1.01).correct  # never reached: says so
