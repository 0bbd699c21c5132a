"""Views you can share: a view's settings as a short link, and a dashboard that opens in the state a link says.

A view that can be shared (every explorer, the training studio) names its settings: a :class:`LinkField` each,
usually one control (``control_field``). Its link is a URL query string, ``view=<name>&<setting>=<value>&…``,
e.g. ``view=convolution&input=tissue&kernel=blur&kernel_size=3&stride=2&padding=1&dilation=1&step=4``.
:class:`ShareLink`, at the bottom of each view, shows the link as the settings change, with a button that copies it.

**Opening a link.** Voila hands the page's query string to the kernel that runs the dashboard: as the
environment variable ``QUERY_STRING`` of a kernel started for the page, and, for a kernel pre-heated with
``--preheat_kernel=True`` (which ran the notebook before anyone asked), only once a page takes it:
``voila.utils.get_query_string()`` waits for that moment (Voila 0.5's ``wait_for_request``) and returns it. A
dashboard notebook therefore shows its view in one cell and calls :func:`open_link` in the next: a pre-heated
kernel has drawn the default view when the page is asked for, and moves its controls to the link's values once the
page has taken it. Outside Voila (JupyterLab, nbval) :func:`open_link` does nothing.

**One page for many views.** A gallery (:class:`~segtutor.widgets.ExplorerGallery`, the explorers' dashboard)
shows the view a link names, then applies the link to it (:func:`view_named`).

**Bad links.** A setting the view does not have, a value it does not offer (out of a slider's range, not among a
dropdown's options) or one it refuses (a kernel larger than the padded input) is left at its default, and the view
shows one line saying what was ignored. A link made for another view opens the default view, with a note.

Example:
    >>> explorer = ConvolutionExplorer()
    >>> explorer.stride.value = 2
    >>> view_link(explorer)
    'view=convolution&input=numbers&kernel=sobel_x&kernel_size=3&stride=2&padding=0&dilation=1&step=0'
    >>> report = open_link(ConvolutionExplorer(), "view=convolution&stride=2&padding=9")
    >>> report.note
    'Opened from a link; ignored padding=9 (not one of 0, 1, 2, 3, same).'
"""

from __future__ import annotations

import functools
import os
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import anywidget
import ipywidgets as widgets
import traitlets


@dataclass(frozen=True)
class LinkField:
    """One setting a link carries.

    Attributes:
        name: its name in the link (``stride``).
        get: the setting's value now, as text.
        set: takes a value as text; raises ValueError (the reason, in words) for one it cannot take.
        control: the control it reads, if any: :class:`ShareLink` watches it to keep the link current.
    """

    name: str
    get: Callable[[], str]
    set: Callable[[str], None]
    control: widgets.ValueWidget | None = None


class ShareableView(Protocol):
    """What :func:`view_link` and :func:`open_link` need of a view."""

    LINK_VIEW: ClassVar[str]  # the view's name in its links, e.g. "convolution"

    def link_fields(self) -> list[LinkField]: ...


def to_text(value: Any) -> str:
    """A setting's value as link text: ``0.001`` for floats (6 significant digits), ``str`` otherwise."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return format(value, ".6g")
    return str(value)


def control_field(name: str, control: widgets.ValueWidget) -> LinkField:
    """A :class:`LinkField` for one control: a dropdown or toggle (one of its options), a slider or bounded number
    (within its range; a log slider's range is ``10**min … 10**max``) or a checkbox."""

    def get() -> str:
        return to_text(control.value)

    def set_value(text: str) -> None:
        control.value = parse_value(control, text)

    return LinkField(name, get, set_value, control)


def parse_value(control: widgets.ValueWidget, text: str) -> Any:
    """The value ``text`` stands for in ``control``.

    Raises:
        ValueError: if the control does not offer it, saying what it offers.
    """
    if isinstance(control, widgets.widget_selection._Selection):  # Dropdown, ToggleButtons, RadioButtons, Select
        values = [option[1] if isinstance(option, tuple) else option for option in control.options]
        for value in values:
            if to_text(value) == text:
                return value
        raise ValueError(f"not one of {', '.join(to_text(value) for value in values)}")
    if isinstance(control, widgets.Checkbox):
        if text.lower() not in ("1", "0", "true", "false"):
            raise ValueError("not 1 or 0")
        return text.lower() in ("1", "true")
    number_type = int if isinstance(control.value, int) else float
    try:
        value = number_type(text)
    except ValueError:
        raise ValueError(f"not {'a whole number' if number_type is int else 'a number'}") from None
    low, high = getattr(control, "min", None), getattr(control, "max", None)
    if isinstance(control, widgets.FloatLogSlider):
        low, high = control.base**low, control.base**high
    if low is not None and not low <= value <= high:
        raise ValueError(f"not in {to_text(low)} … {to_text(high)}")
    return value


def view_link(view: ShareableView) -> str:
    """The link (a URL query string) that opens ``view`` as it is now."""
    pairs = [("view", view.LINK_VIEW)] + [(f.name, f.get()) for f in view.link_fields()]
    return urllib.parse.urlencode(pairs, safe=",")


@dataclass
class LinkReport:
    """What :func:`apply_link` did with a link."""

    applied: dict[str, str] = field(default_factory=dict)  # setting -> value, as in the link
    ignored: list[str] = field(default_factory=list)  # "name=value (why)", one per setting left at its default
    other_view: str | None = None  # the view a link made for another view names

    @property
    def note(self) -> str:
        """One line for the learner: what the link could not do ("" if it did everything)."""
        if self.other_view is not None:
            return f"This link is for the {self.other_view!r} view, not this one: opened the default view."
        if not self.ignored:
            return ""
        return f"Opened from a link; ignored {', '.join(self.ignored)}."


def apply_link(view: ShareableView, query: str) -> LinkReport:
    """Put ``view``'s settings to the values of the link ``query`` (``"view=…&stride=2"``, a leading ``?`` is fine).

    Settings are applied in the view's order (e.g. a budget's unit before the budget); each one the link leaves out
    keeps its value. A value the view refuses is put back and reported; so are settings it does not have.
    """
    report = LinkReport()
    pairs = urllib.parse.parse_qsl(query.lstrip("?"), keep_blank_values=True)
    values = dict(pairs)  # a setting given twice: the last one counts, as in most web servers
    name = values.pop("view", None)
    if name != view.LINK_VIEW:
        report.other_view = name if name is not None else "unnamed"
        return report
    fields = view.link_fields()
    known = {f.name for f in fields}
    for setting in fields:
        if setting.name not in values:
            continue
        text, before = values[setting.name], setting.get()
        try:
            setting.set(text)
            problem = _refusal(view)
        except ValueError as error:
            problem = str(error)
        if problem:
            setting.set(before)  # the view keeps the value it had
            report.ignored.append(f"{setting.name}={text} ({problem})")
        else:
            report.applied[setting.name] = text
    report.ignored += [f"{key}={value} (no such setting)" for key, value in values.items() if key not in known]
    return report


def _refusal(view: object) -> str:
    """The error a view showed for the setting just made, if it showed one (its ``errors`` output), else ""."""
    errors = getattr(view, "errors", None)
    if not isinstance(errors, widgets.Output) or not errors.outputs:
        return ""
    text = " ".join(output.get("text", "") for output in errors.outputs).strip()
    return text.splitlines()[-1] if text else "refused"


@functools.cache
def voila_query_string() -> str:
    """The query string of the Voila page this kernel runs for; "" outside Voila.

    A pre-heated kernel (``voila --preheat_kernel=True``) waits here until a page takes it: Voila sends it the
    page's request then. Asked once per kernel (Voila sends the request once).
    """
    if os.environ.get("VOILA_PREHEAT") == "True":
        from voila.utils import get_query_string  # imported here: segtutor does not need Voila elsewhere

        return get_query_string() or ""
    return os.environ.get("QUERY_STRING", "")


def in_voila() -> bool:
    """True in a kernel that Voila started (it sets ``VOILA_KERNEL_ID``)."""
    return "VOILA_KERNEL_ID" in os.environ


def open_link(view: ShareableView, query: str | None = None) -> LinkReport:
    """Open ``view`` in the state of a link: ``query``, or the Voila page's query string if None.

    Does nothing without a link (outside Voila, or a page address with no ``?…``). The note of what was ignored
    is shown in the view's :class:`ShareLink` (``view.share``), if it has one.

    Example (the last cell of a dashboard notebook):
        >>> open_link(explorer)
    """
    query = voila_query_string() if query is None else query
    if not query.lstrip("?"):
        return LinkReport()
    view = view_named(view, query)
    report = apply_link(view, query)
    share = getattr(view, "share", None)
    if isinstance(share, ShareLink):
        share.refresh()
        share.note = report.note
    return report


def view_named(view: Any, query: str) -> ShareableView:
    """The view a link is for: ``view`` itself, or, for a gallery of views (one with ``view_for(name)`` and an
    ``explorer`` shown, e.g. :class:`~segtutor.widgets.ExplorerGallery`), the one the link's ``view=`` names,
    which the gallery then shows (the one shown if it holds no such view)."""
    view_for = getattr(view, "view_for", None)
    if not callable(view_for):
        return view
    name = dict(urllib.parse.parse_qsl(query.lstrip("?"))).get("view")
    chosen = view_for(name)
    return chosen if chosen is not None else view.explorer


class ShareLink(anywidget.AnyWidget):
    """"Copy link to this view": the view's link as it is now, a button that copies it, and a link's note.

    Args:
        view: a view with ``LINK_VIEW`` and ``link_fields()``; the link follows its controls.
        watch: more controls whose change changes the link (beyond the fields' own controls).

    ``share.query`` is the link's query string (:func:`view_link`); in Voila the page shows the whole address.
    """

    _esm = Path(__file__).parent / "static" / "share_link.js"
    query = traitlets.Unicode("").tag(sync=True)
    note = traitlets.Unicode("", help="what the link that opened the view could not apply").tag(sync=True)
    in_voila = traitlets.Bool(False).tag(sync=True)

    def __init__(self, view: ShareableView, *, watch: Sequence[widgets.Widget] = ()) -> None:
        super().__init__(in_voila=in_voila())
        self.view = view
        self.add_class("segtutor-share-link")
        controls = [f.control for f in view.link_fields() if f.control is not None] + list(watch)
        for control in controls:
            control.observe(lambda _change: self.refresh(), names="value")
        self.refresh()

    def refresh(self) -> None:
        """Recompute the link from the view's settings."""
        self.query = view_link(self.view)


class Shareable:
    """Mixin for a view whose link settings are its controls: ``LINK_CONTROLS`` maps each setting's name in the
    link to the control's attribute path (``"step": "stepper.slider"``), in the order a link applies them."""

    LINK_VIEW: ClassVar[str] = ""
    LINK_CONTROLS: ClassVar[dict[str, str]] = {}

    def link_fields(self) -> list[LinkField]:
        """One :class:`LinkField` per entry of ``LINK_CONTROLS``."""
        return [control_field(name, functools.reduce(getattr, path.split("."), self))
                for name, path in self.LINK_CONTROLS.items()]  # fmt: skip

    def link(self) -> str:
        """The link (a URL query string) to this view as it is now."""
        return view_link(self)

    def open_link(self, query: str | None = None) -> LinkReport:
        """Put the settings to a link's values (default: the Voila page's); see :func:`open_link`."""
        return open_link(self, query)
