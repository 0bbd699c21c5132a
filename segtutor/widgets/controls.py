"""What every widget shares: an error in a callback is shown to the learner, never lost in a log; rows that wrap;
status lines that wrap between their parts."""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets


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


def row(children: Sequence[widgets.Widget], **layout: Any) -> widgets.HBox:
    """Widgets side by side that wrap onto the next line where the output is too narrow for all of them.

    JupyterLab's output is about 850 px wide with the file browser open at 1280 px, and a fixed row wider than that
    is clipped without a scrollbar; a wrapping row never is. ``layout`` adds :class:`ipywidgets.Layout` properties.

    Example:
        >>> row([start_button, stop_button, status])
    """
    layout = {"flex_flow": "row wrap", "align_items": "center", **layout}
    return widgets.HBox(list(children), layout=widgets.Layout(**layout))


def status_line(parts: Sequence[str]) -> str:
    """``parts`` (HTML) joined by " · ", each kept on one line: a narrow output wraps the line between two parts,
    never inside one ("val mean / IoU 0.931").

    Example:
        >>> status.value = status_line(["<b>running</b>", "step 48 / 150", "loss 0.259"])
    """
    return " · ".join(f"<span style='white-space:nowrap'>{part}</span>" for part in parts)
