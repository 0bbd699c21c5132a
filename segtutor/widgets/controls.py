"""Controls the concept explorers share: Play / Step through an algorithm, and errors shown to the learner."""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets


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
        self.step_button.on_click(self._next)
        self.speed.observe(self._set_speed, names="value")
        super().__init__([self.play, self.step_button, self.slider, self.speed])

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

    def _set_speed(self, change: dict) -> None:
        self.play.interval = max(int(1000 / change["new"]), 20)


def report_errors(output: widgets.Output) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator for widget callbacks: an exception is shown in ``output`` instead of vanishing in a log.

    A ``ValueError``/``TypeError`` (a bad setting) shows its message; anything else shows the traceback. The output
    is cleared at the next call, so an error disappears once the learner fixes the setting.
    """

    def decorator(callback: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(callback)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            output.outputs = ()
            try:
                return callback(*args, **kwargs)
            except (ValueError, TypeError) as error:
                output.append_stderr(f"{error}\n")
            except Exception:  # noqa: BLE001 (a widget callback must never fail silently)
                output.append_stderr(traceback.format_exc())
            return None

        return guarded

    return decorator
