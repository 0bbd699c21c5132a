"""What every step-by-step explorer shares: its state (named settings, a list of steps and a current one), its
view (setting controls, Step/Play, the formula, one figure), and the Play / Step remote control."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, ClassVar

import ipywidgets as widgets
import numpy as np

from segtutor.widgets.controls import report_errors, row
from segtutor.widgets.links import Shareable, ShareLink
from segtutor.widgets.live_figure import LiveFigure


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

    def values_so_far(self, values: np.ndarray) -> np.ndarray:
        """``values`` (one per step, in step order, in the output's shape) with only the steps up to the current
        one filled in, NaN elsewhere: the output map as it fills in."""
        done = np.arange(len(self.steps)) <= self.index
        return np.where(done, values.ravel(), np.nan).reshape(values.shape)


class StepControls(widgets.HBox):
    """Play/Pause, Step and a step slider, plus a speed slider: the learner's remote control.

    ``slider.value`` is the current step (0 … ``num_steps − 1``); observe it to redraw. ``Play`` runs in the
    browser and moves the slider through a ``jslink``; in Python (tests, nbval) set ``slider.value`` or click
    ``step_button``.

    Args:
        num_steps: how many steps the algorithm has.
        steps_per_second: initial speed of Play.
    """

    def __init__(self, num_steps: int, *, steps_per_second: float = 2.0) -> None:
        last = max(num_steps - 1, 0)
        # Play and slider start at the same value: jslink copies Play's value to the slider when the page loads.
        self.play = widgets.Play(value=0, min=0, max=last, interval=int(1000 / steps_per_second), description="Play")
        self.slider = widgets.IntSlider(value=0, min=0, max=last, description="step", continuous_update=True)
        self.step_button = widgets.Button(description="Step", icon="step-forward", tooltip="next step",
                                          layout=widgets.Layout(width="80px"))  # fmt: skip
        self.speed = widgets.FloatLogSlider(value=steps_per_second, base=10, min=-0.5, max=1.5, step=0.1,
                                            description="steps/s", readout_format=".1f")  # fmt: skip
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        # a step set in Python (a link, a notebook cell) moves Play too: the page's jslink would else copy Play's
        # value back onto the slider when it draws them, and show step 0
        self.slider.observe(self._follow, names="value")
        self.step_button.on_click(self._next)
        self.speed.observe(self._set_speed, names="value")
        super().__init__([self.play, self.step_button, self.slider, self.speed],
                         layout=widgets.Layout(flex_flow="row wrap", align_items="center"))

    def reset(self, num_steps: int) -> None:
        """Start again at step 0 of an algorithm with ``num_steps`` steps (stops Play)."""
        last = max(num_steps - 1, 0)
        self.play.playing = False
        with self.hold_sync():
            # lower the value before the max, so no intermediate state is out of range
            self.slider.value = self.play.value = 0
            self.slider.max = self.play.max = last

    def _next(self, _button: widgets.Button) -> None:
        at_end = self.slider.value >= self.slider.max
        self.slider.value = 0 if at_end else self.slider.value + 1
        self.play.value = self.slider.value  # the jslink only runs in a browser

    def _follow(self, change: dict) -> None:
        self.play.value = change["new"]

    def _set_speed(self, change: dict) -> None:
        self.play.interval = max(int(1000 / change["new"]), 20)


class SteppedExplorer(widgets.VBox, Shareable):
    """Base for the stepping explorers' views: setting controls, Step/Play, the formula, one figure, errors.

    A subclass builds ``self.state`` (a :class:`SteppedState`) and its setting controls, then calls
    ``super().__init__(columns)`` and implements:

    - ``_settings()``: the controls' values as ``state.configure`` arguments;
    - ``_redraw()``: a new figure for the current settings (sizes may have changed), then ``_restart()``;
    - ``_draw_step()``: the current step (the window's outline, the formula, the output so far);

    and names ``LINK_VIEW`` and ``LINK_CONTROLS`` (:class:`~segtutor.widgets.links.Shareable`): the settings its
    "copy link to this view" control (``self.share``) carries, the current step among them.

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
        settings = row([widgets.VBox(list(column)) for column in columns], align_items="flex-start")
        self.share = ShareLink(self)
        super().__init__([settings, self.stepper, self.formula, self.figure, *below, self.errors, self.share])
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
