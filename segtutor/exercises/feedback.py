"""How every exercise check compares an answer and tells the learner: :class:`Feedback` and four comparisons.

Every check of :mod:`segtutor.exercises` follows the same recipe:

1. compute the right answer with the package (``segtutor.explain``, ``segtutor.metrics``, ...), from the same
   inputs the learner was given, never from a number written down here;
2. compare it with the learner's answer with one of :func:`check_count`, :func:`check_number`,
   :func:`check_array`, :func:`check_size`;
3. print what is right or wrong, with a hint that does not give the answer away, and return a :class:`Feedback`.

Counts (weights, pixels, tiles, channels) compare **exactly**: 4,719,616 is right and 4,718,592 (the biases
forgotten) is wrong, however close. A float with a whole value, such as the ``49.0`` that Python's ``/`` gives,
counts as that whole number; a float that is not whole (``49.04``) is wrong, with a message that says a count is
a whole number. numpy and torch numbers, and numpy arrays or tensors for sizes, are accepted like plain ones.
Only real-valued answers (a loss, a share, a score) are compared with a tolerance.

An exercise left as ``None`` prints "not answered yet" and raises nothing, so every notebook runs as stored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

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


def feedback(exercise: str, status: str, message: str) -> Feedback:
    symbol = {"correct": "✓ Correct: ", "wrong": "✗ Not yet: ", "unanswered": "… "}[status]
    feedback = Feedback(exercise, status, f"{symbol}{message}")
    print(feedback.message)
    return feedback


def as_number(answer: Any) -> float | None:
    """The answer as a float, or None if it is not a single number (a bool, a string, a list ...)."""
    if isinstance(answer, bool | np.bool_):
        return None
    if isinstance(answer, torch.Tensor):
        answer = answer.detach().cpu().numpy()
    if isinstance(answer, np.ndarray):
        if answer.size != 1 or answer.dtype.kind not in "iuf":
            return None
        return float(answer.item())
    if isinstance(answer, int | float | np.integer | np.floating):
        return float(answer)
    return None


def as_whole_number(value: float) -> int | None:
    """``value`` as an int if it is a whole number (``49.0 -> 49``), else None (``49.04``, ``inf``, ``nan``)."""
    if not math.isfinite(value) or value != math.floor(value):
        return None
    return int(value)


def check_count(
    exercise: str,
    answer: Any,
    expected: int,
    *,
    right: str,
    hint: str,
    unit: str = "a count",
    mistakes: Sequence[tuple[int, str]] = (),
) -> Feedback:
    """Compare a whole number exactly (a number of weights, pixels, tiles or channels).

    ``unit`` names what is counted in the message for a non-whole answer, e.g. ``"a number of pixels"``;
    ``mistakes`` lists ``(value, hint)`` for known wrong answers, which get that hint instead of the general one.
    """
    if answer is None:
        return feedback(exercise, "unanswered", NOT_ANSWERED)
    value = as_number(answer)
    if value is None:
        return feedback(exercise, "wrong", f"the answer should be one number, got {answer!r}. Hint: {hint}")
    whole = as_whole_number(value)
    if whole is None:
        return feedback(
            exercise, "wrong", f"{value:g} is not a whole number, but {unit} is: no fractions, no rounding "
            f"errors. Hint: {hint}"
        )
    if whole == expected:
        return feedback(exercise, "correct", right)
    for mistake, mistake_hint in mistakes:
        if whole == mistake:
            return feedback(exercise, "wrong", f"{whole:,} is not it: {mistake_hint}")
    return feedback(exercise, "wrong", f"{whole:,} is not it. Hint: {hint}")


def check_number(
    exercise: str,
    answer: Any,
    expected: float,
    *,
    right: str,
    hint: str,
    tolerance: float = 0.01,
    mistakes: Sequence[tuple[float, str]] = (),
) -> Feedback:
    """Compare one real number: correct within ``tolerance`` (absolute, or 0.1 % relative for large numbers).

    ``mistakes`` lists ``(value, hint)`` for known wrong answers (a forgotten term, a flipped sign): an answer
    near one of them gets that hint instead of the general one. For whole numbers (counts) use
    :func:`check_count`, which compares exactly.
    """
    if answer is None:
        return feedback(exercise, "unanswered", NOT_ANSWERED)
    value = as_number(answer)
    if value is None:
        return feedback(exercise, "wrong", f"the answer should be one number, got {answer!r}. Hint: {hint}")
    if math.isclose(value, expected, rel_tol=1e-3, abs_tol=tolerance):
        return feedback(exercise, "correct", right)
    for mistake, mistake_hint in mistakes:
        if math.isclose(value, mistake, rel_tol=1e-3, abs_tol=tolerance):
            return feedback(exercise, "wrong", f"{value:g} is not it: {mistake_hint}")
    return feedback(exercise, "wrong", f"{value:g} is not it. Hint: {hint}")


def check_array(
    exercise: str, answer: Any, expected: np.ndarray, *, right: str, hint: str, tolerance: float = 0.01
) -> Feedback:
    """Compare an array: the shape first, then every value within ``tolerance``."""
    if answer is None:
        return feedback(exercise, "unanswered", NOT_ANSWERED)
    if isinstance(answer, torch.Tensor):
        answer = answer.detach().cpu().numpy()
    try:
        value = np.asarray(answer, dtype=np.float64)
    except (TypeError, ValueError):
        return feedback(exercise, "wrong", f"the answer should be an array of numbers, got {answer!r}. Hint: {hint}")
    if value.shape != expected.shape:
        return feedback(
            exercise, "wrong", f"the answer has shape {value.shape}, but it should be {expected.shape}. Hint: {hint}"
        )
    wrong = ~np.isclose(value, expected, rtol=1e-3, atol=tolerance)
    if wrong.any():
        first = tuple(int(i) for i in np.argwhere(wrong)[0])
        return feedback(
            exercise,
            "wrong",
            f"the shape is right, but {int(wrong.sum())} of {wrong.size} values differ (the first at index "
            f"{first}: you have {value[first]:g}). Hint: {hint}",
        )
    return feedback(exercise, "correct", right)


def as_whole_numbers(answer: Any) -> tuple[int, ...] | None:
    """A size given as an int, a list/tuple, a ``torch.Size``, a numpy array or a tensor, as a tuple of ints.

    None if it holds anything but numbers with whole values (``(64.0, 12, 12)`` is fine, ``(64.5, 12, 12)``,
    ``True`` or ``"12"`` are not).
    """
    if isinstance(answer, torch.Tensor):
        answer = answer.detach().cpu().numpy()
    items = list(answer) if isinstance(answer, list | tuple | torch.Size | np.ndarray) else [answer]
    if isinstance(answer, np.ndarray) and answer.ndim == 0:
        items = [answer.item()]
    numbers = [as_number(item) for item in items]
    if not numbers or any(number is None for number in numbers):
        return None
    whole = [as_whole_number(number) for number in numbers]
    return None if any(number is None for number in whole) else tuple(whole)


def check_size(exercise: str, answer: Any, expected: tuple[int, ...], *, right: str, hint: str) -> Feedback:
    """Compare a size given as an int or a sequence of whole numbers (e.g. ``(C, H, W)``), exactly.

    A tuple, a list, a ``torch.Size``, a numpy array or a tensor all work, and so do floats with whole values.
    """
    if answer is None:
        return feedback(exercise, "unanswered", NOT_ANSWERED)
    given = as_whole_numbers(answer)
    if given is None:
        return feedback(exercise, "wrong", f"give whole numbers of pixels or channels, got {answer!r}. Hint: {hint}")
    if len(given) != len(expected):
        shape = "one number" if len(expected) == 1 else f"{len(expected)} numbers, e.g. (C, H, W)"
        return feedback(exercise, "wrong", f"the answer should be {shape}, got {answer!r}. Hint: {hint}")
    if given == tuple(expected):
        return feedback(exercise, "correct", right)
    return feedback(exercise, "wrong", f"{given} is not it. Hint: {hint}")


def as_tensor(values: Any, dtype: torch.dtype | None = None) -> torch.Tensor:
    tensor = values.detach().cpu() if isinstance(values, torch.Tensor) else torch.as_tensor(np.asarray(values))
    return tensor.to(dtype) if dtype is not None else tensor
