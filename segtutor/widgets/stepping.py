"""What every step-by-step explorer shares: its state (named settings, a list of steps and a current one) and
its view (setting controls, Step/Play, the formula, one figure)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, ClassVar

import ipywidgets as widgets

from segtutor.widgets.controls import StepControls, report_errors
from segtutor.widgets.figures import LiveFigure


class SteppedState:
    """Base for explorer states (no widgets): ``SETTINGS`` name the arguments of ``_apply``, which must set an
    attribute per setting, ``self.steps`` and ``self.index = 0``.
    """

    SETTINGS: ClassVar[tuple[str, ...]] = ()
    steps: list
    index: int

    def configure(self, **settings: Any) -> None:
        """Change any of the ``SETTINGS``; start again at step 0.

        Raises:
            TypeError: on a setting name this state does not have.
            ValueError: on bad settings; the previous settings are kept.
        """
        current = {name: getattr(self, name) for name in self.SETTINGS}
        unknown = set(settings) - set(current)
        if unknown:
            raise TypeError(f"unknown settings {sorted(unknown)}; choose from {sorted(current)}")
        self._apply(**{**current, **settings})

    def _apply(self, **settings: Any) -> None:
        raise NotImplementedError

    @property
    def step(self):
        """The current step."""
        return self.steps[self.index]

    def go_to(self, index: int):
        """Make step ``index`` the current one (0 … ``len(steps) − 1``) and return it."""
        if not 0 <= index < len(self.steps):
            raise ValueError(f"step must be in 0 … {len(self.steps) - 1}, got {index}")
        self.index = index
        return self.step


class SteppedExplorer(widgets.VBox):
    """Base for the stepping explorers' views: setting controls, Step/Play, the formula, one figure, errors.

    A subclass builds ``self.state`` (a :class:`SteppedState`) and its setting controls, then calls
    ``super().__init__(columns)`` and implements:

    - ``_settings()``: the controls' values as ``state.configure`` arguments;
    - ``_redraw()``: a new figure for the current settings (sizes may have changed), then ``_restart()``;
    - ``_draw_step()``: the current step (the window's outline, the formula, the output so far).

    Args:
        columns: the setting controls, one list per column; a change of any of them calls ``_settings()``.
        below: widgets shown under the figure (e.g. the output-size formula).
    """

    state: SteppedState

    def __init__(self, columns: Sequence[Sequence[widgets.ValueWidget]], *, below: Sequence[widgets.Widget] = ()):
        self.stepper = StepControls(len(self.state.steps))
        self.formula = widgets.HTML()
        self.figure = LiveFigure()
        self.errors = widgets.Output()
        guard = report_errors(self.errors)
        for control in itertools.chain.from_iterable(columns):
            control.observe(guard(self._on_settings), names="value")
        self.stepper.slider.observe(guard(self._on_step), names="value")
        settings = widgets.HBox([widgets.VBox(list(column)) for column in columns])
        super().__init__([settings, self.stepper, self.formula, self.figure, *below, self.errors])
        self._redraw()

    def _settings(self) -> dict[str, Any]:
        raise NotImplementedError

    def _redraw(self) -> None:
        raise NotImplementedError

    def _draw_step(self) -> None:
        raise NotImplementedError

    def _restart(self) -> None:
        """After a redraw: the step slider spans the new steps, and step 0 is drawn."""
        self.stepper.reset(len(self.state.steps))
        self._draw_step()

    def _on_settings(self, _change: dict) -> None:
        try:
            self.state.configure(**self._settings())
        finally:
            self._redraw()  # a rejected setting still leaves the view showing the state it kept

    def _on_step(self, change: dict) -> None:
        self.state.go_to(change["new"])
        self._draw_step()
