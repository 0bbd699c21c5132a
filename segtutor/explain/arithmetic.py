"""Convolution arithmetic: how big is the output of a convolution, a pooling or a transposed convolution?

The formulas are the ones in the PyTorch documentation of ``nn.Conv2d`` and ``nn.ConvTranspose2d``
(and in Dumoulin & Visin, "A guide to convolution arithmetic for deep learning", https://arxiv.org/abs/1603.07285).
Each function returns the number *and* the formula written out with the learner's numbers: an
:class:`OutputSize`, which is an ``int`` (compare it with a number as it is) that carries its ``formula``. The
arguments may be Python or numpy integers.
"""

from __future__ import annotations

import operator

import numpy as np


class OutputSize(int):
    """The size of one spatial dimension of an output, and how it was computed.

    It *is* the number: an ``int`` subclass, so ``output_size(7, 3) == 5`` is True and it adds, compares and
    indexes like 5. It also carries the working: :attr:`formula`, which ``print`` shows.

    Attributes:
        value: the output size in pixels, as a plain ``int``.
        formula: the formula with the numbers filled in, e.g. ``"⌊(7 + 2·1 − 1·(3 − 1) − 1) / 2⌋ + 1 = 4"``.
    """

    formula: str

    def __new__(cls, value: int, formula: str) -> OutputSize:
        size = super().__new__(cls, value)
        size.formula = formula
        return size

    @property
    def value(self) -> int:
        return int(self)

    def __str__(self) -> str:
        return self.formula

    def __repr__(self) -> str:
        return f"OutputSize(value={int(self)}, formula={self.formula!r})"

    def __getnewargs__(self) -> tuple[int, str]:  # copy and pickle keep the formula
        return int(self), self.formula


def _as_int(value: object) -> int | None:
    """``value`` as an int if it is a Python or numpy integer (or a one-element integer tensor), else None."""
    if isinstance(value, bool | np.bool_ | float):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _check_positive(**values: object) -> dict[str, int]:
    checked = {name: _as_int(value) for name, value in values.items()}
    for name, number in checked.items():
        if number is None or number < 1:
            raise ValueError(f"{name} must be a positive integer, got {values[name]!r}")
    return checked


def _check_non_negative(**values: object) -> dict[str, int]:
    checked = {name: _as_int(value) for name, value in values.items()}
    for name, number in checked.items():
        if number is None or number < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {values[name]!r}")
    return checked


def output_size(in_size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> OutputSize:
    """Output size of a convolution (or pooling) along one dimension.

    ``out = ⌊(in + 2·padding − dilation·(kernel_size − 1) − 1) / stride⌋ + 1``

    Args:
        in_size: input size in pixels (height or width).
        kernel_size: kernel size along that dimension.
        stride: step between two kernel placements.
        padding: zeros added on *each* side.
        dilation: spacing between kernel taps (1 = an ordinary kernel, 2 = atrous with one hole).

    Returns:
        The size and the formula with these numbers.

    Raises:
        ValueError: if an argument is out of range or the kernel does not fit in the padded input.

    Example:
        >>> output_size(7, 3, stride=2, padding=1)
        OutputSize(value=4, formula='⌊(7 + 2·1 − 1·(3 − 1) − 1) / 2⌋ + 1 = 4')
        >>> output_size(7, 3) == 5
        True
    """
    in_size, kernel_size, stride, dilation = _check_positive(
        in_size=in_size, kernel_size=kernel_size, stride=stride, dilation=dilation
    ).values()
    padding = _check_non_negative(padding=padding)["padding"]
    span = dilation * (kernel_size - 1) + 1  # pixels covered by the (dilated) kernel
    if span > in_size + 2 * padding:
        raise ValueError(
            f"the kernel covers {span} pixels (dilation {dilation} × (kernel_size {kernel_size} − 1) + 1) but the "
            f"padded input has only {in_size + 2 * padding} (in_size {in_size} + 2 × padding {padding}): "
            "use a smaller kernel or dilation, or more padding"
        )
    value = (in_size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1
    formula = f"⌊({in_size} + 2·{padding} − {dilation}·({kernel_size} − 1) − 1) / {stride}⌋ + 1 = {value}"
    return OutputSize(value, formula)


def transposed_output_size(
    in_size: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    output_padding: int = 0,
    dilation: int = 1,
) -> OutputSize:
    """Output size of a transposed convolution along one dimension.

    ``out = (in − 1)·stride − 2·padding + dilation·(kernel_size − 1) + output_padding + 1``

    Args:
        in_size: input size in pixels.
        kernel_size: kernel size along that dimension.
        stride: how far apart the input pixels are spread in the output.
        padding: pixels cropped from *each* side of the full output.
        output_padding: extra pixels added on one side (bottom/right) to pick between the sizes
            that a strided convolution maps to the same size; must be smaller than stride or dilation.
        dilation: spacing between kernel taps.

    Returns:
        The size and the formula with these numbers.

    Raises:
        ValueError: if an argument is out of range or the output would be empty.

    Example:
        >>> transposed_output_size(4, 2, stride=2).value
        8
    """
    in_size, kernel_size, stride, dilation = _check_positive(
        in_size=in_size, kernel_size=kernel_size, stride=stride, dilation=dilation
    ).values()
    padding, output_padding = _check_non_negative(padding=padding, output_padding=output_padding).values()
    if output_padding >= max(stride, dilation):
        raise ValueError(
            f"output_padding ({output_padding}) must be smaller than stride ({stride}) or dilation ({dilation})"
        )
    value = (in_size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1
    if value < 1:
        raise ValueError(
            f"padding {padding} crops the whole output away (it would be {value} pixels): use less padding"
        )
    formula = (
        f"({in_size} − 1)·{stride} − 2·{padding} + {dilation}·({kernel_size} − 1) + {output_padding} + 1 = {value}"
    )
    return OutputSize(value, formula)
