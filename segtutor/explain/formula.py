"""Writing the arithmetic out as text a learner can check by hand: ``3·1 + 0·0 + 1·(−1) = 2``."""

from __future__ import annotations

from collections.abc import Sequence


def format_number(value: float, decimals: int = 2) -> str:
    """``3.0 -> "3"``, ``0.5 -> "0.5"``, ``-1.0 -> "−1"`` (a real minus sign), rounded to ``decimals``."""
    rounded = round(float(value), decimals)
    if rounded == 0:
        rounded = 0.0  # no "−0"
    text = f"{rounded:.{decimals}f}".rstrip("0").rstrip(".") if decimals > 0 else f"{rounded:.0f}"
    return text.replace("-", "−")


def _operand(value: float, decimals: int) -> str:
    text = format_number(value, decimals)
    return f"({text})" if text.startswith("−") else text


def sum_of_products(
    left: Sequence[float],
    right: Sequence[float],
    total: float,
    *,
    bias: float = 0.0,
    decimals: int = 2,
    max_terms: int = 9,
) -> str:
    """``"3·1 + 0·0 + … = 7"``: the products ``left[k]·right[k]``, at most ``max_terms`` of them, and the total.

    Args:
        left: first factors (e.g. the input values under the kernel), flattened.
        right: second factors (the kernel weights), same length.
        total: the value the sum comes to, bias included.
        bias: written as a last term when it is not zero.
        decimals: digits after the decimal point.
        max_terms: terms written out before the rest is abbreviated as ``…``.
    """
    terms = [f"{_operand(a, decimals)}·{_operand(b, decimals)}" for a, b in zip(left, right)]
    if len(terms) > max_terms:
        terms = terms[: max_terms - 1] + ["…", terms[-1]]
    if bias != 0:
        terms.append(_operand(bias, decimals))
    return " + ".join(terms) + f" = {format_number(total, decimals)}"
