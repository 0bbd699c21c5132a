"""How every exercise check compares an answer and tells the learner: :class:`Feedback` and three comparisons.

Every check of :mod:`segtutor.exercises` follows the same recipe:

1. compute the right answer with the package (``segtutor.explain``, ``segtutor.metrics``, ...), from the same
   inputs the learner was given, never from a number written down here;
2. compare it with the learner's answer with one of :func:`check_number`, :func:`check_array`, :func:`check_size`;
3. print what is right or wrong, with a hint that does not give the answer away, and return a :class:`Feedback`.

An exercise left as ``None`` prints "not answered yet" and raises nothing, so every notebook runs as stored.
"""

from __future__ import annotations

import math
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
    if isinstance(answer, bool):
        return None
    if isinstance(answer, torch.Tensor):
        answer = answer.detach().cpu().numpy()
    if isinstance(answer, np.ndarray):
        return float(answer.item()) if answer.size == 1 else None
    if isinstance(answer, int | float | np.integer | np.floating):
        return float(answer)
    return None


def check_number(
    exercise: str, answer: Any, expected: float, *, right: str, hint: str, tolerance: float = 0.01
) -> Feedback:
    """Compare one number: correct within ``tolerance`` (absolute, or relative for large numbers)."""
    if answer is None:
        return feedback(exercise, "unanswered", NOT_ANSWERED)
    value = as_number(answer)
    if value is None:
        return feedback(exercise, "wrong", f"the answer should be one number, got {answer!r}. Hint: {hint}")
    if math.isclose(value, expected, rel_tol=1e-3, abs_tol=tolerance):
        return feedback(exercise, "correct", right)
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


def check_size(exercise: str, answer: Any, expected: tuple[int, ...], *, right: str, hint: str) -> Feedback:
    """Compare a size given as an int or a tuple of ints (e.g. ``(H, W)``)."""
    if answer is None:
        return feedback(exercise, "unanswered", NOT_ANSWERED)
    given = tuple(answer) if isinstance(answer, list | tuple | torch.Size) else (answer,)
    if not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in given):
        return feedback(exercise, "wrong", f"give whole numbers of pixels or channels, got {answer!r}. Hint: {hint}")
    if len(given) != len(expected):
        shape = "one number" if len(expected) == 1 else f"{len(expected)} numbers, e.g. (H, W)"
        return feedback(exercise, "wrong", f"the answer should be {shape}, got {answer!r}. Hint: {hint}")
    if tuple(int(v) for v in given) == expected:
        return feedback(exercise, "correct", right)
    return feedback(exercise, "wrong", f"{answer!r} is not it. Hint: {hint}")


def as_tensor(values: Any, dtype: torch.dtype | None = None) -> torch.Tensor:
    tensor = values.detach().cpu() if isinstance(values, torch.Tensor) else torch.as_tensor(np.asarray(values))
    return tensor.to(dtype) if dtype is not None else tensor
