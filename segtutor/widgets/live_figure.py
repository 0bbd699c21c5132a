"""The figure layer every segtutor widget draws with: a plotly figure that stays live in JupyterLab *and* Voila.

Why not plotly's own ``go.FigureWidget``? Measured on this project's machines (see ``JUPYTER-STACK.md``): in
Voila, updates made before the browser connects are lost, with two FigureWidgets on a page only one keeps
updating, and each FigureWidget ships plotly's 5 MB of JavaScript again. :class:`LiveFigure` avoids all three:

1. **The figure is widget state.** ``LiveFigure.figure`` (``{"data": [...], "layout": {...}}``) is a synced trait,
   so whenever a browser view appears it draws the figure as it is *now*, however late it connects.
2. **Small updates.** :meth:`LiveFigure.update_trace` and :meth:`LiveFigure.update_layout` change the figure in
   Python and send only the changed properties to the browser, as one numbered patch per :meth:`LiveFigure.batch`.
   A browser that misses a patch (it connected half-way) notices the gap in the numbers and asks for the whole
   figure again; each new browser model also reports the revision it holds, and gets the figure if it is behind.
3. **plotly.js once per page.** Every figure refers to one shared :class:`PlotlyLibrary` widget holding plotly.js
   (gzipped, shipped in ``segtutor/widgets/static``: offline). The first figure to reach the page evaluates it; the
   others await the same promise. It is plotly.js's *cartesian* bundle (heatmap, image, scatter, bar, … see
   :meth:`PlotlyLibrary.trace_types`), which a browser evaluates in a third of the full bundle's time.

Properties are plotly.js's own, as JSON, and are not validated on update (a misspelt name is silently ignored):
build the figure with ``plotly.graph_objects`` (validated), then update what changes. plotly.js 3+ wants titles
as ``{"text": ...}``.

The browser says how wide it draws the figure (:attr:`LiveFigure.room`, in px): a widget can observe it and lay its
panels out for that width (fewer per row where the output is narrow).

Each figure is its own widget model, so any number of figures per page work. A figure may be changed from a
worker thread (a training run's callbacks) while the kernel's thread answers its browser: every change and every
send holds the figure's own lock. Traces can be addressed by their ``name``. Tests assert on
``fig.data``/``fig.layout`` in Python and call :meth:`LiveFigure.click` to play a learner's click.

The JavaScript half lives in ``static/live_figure.js``.

Example:
    >>> fig = LiveFigure(go.Figure(go.Heatmap(z=np.zeros((3, 3)))))
    >>> with fig.batch():
    ...     fig.update_trace(0, z=np.eye(3))   # or by name: fig.update_trace("prediction", source=...)
    ...     fig.update_layout(title={"text": "identity"})
    >>> fig.data[0]["z"][1]
    [0.0, 1.0, 0.0]
"""

from __future__ import annotations

import base64
import functools
import gzip
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import anywidget
import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import traitlets
from plotly.basedatatypes import BasePlotlyType


class PlotlyLibrary(widgets.Widget):
    """plotly.js as a widget with no view: the bytes travel to the browser once per kernel.

    Use :meth:`shared` rather than the constructor, so that every :class:`LiveFigure` of a kernel refers to
    the same copy.
    """

    SCRIPT: ClassVar[Path] = Path(__file__).parent / "static" / "plotly-cartesian.min.js"  # see static/README.md

    source = traitlets.Bytes(help="plotly.js, gzip-compressed").tag(sync=True)

    _shared: ClassVar[PlotlyLibrary | None] = None  # one per kernel; 0.6 MB is worth sending once, not per figure

    @classmethod
    def shared(cls) -> PlotlyLibrary:
        """The kernel's one library widget, created on first use (and again if it was closed)."""
        if cls._shared is None or cls._shared.comm is None:
            cls._shared = cls(source=gzip.compress(cls.SCRIPT.read_bytes(), compresslevel=1))  # 1.5 MB -> 0.6 MB
        return cls._shared

    @staticmethod
    @functools.cache
    def version() -> str:
        """The bundle's plotly.js version, from its header, e.g. ``"4.1.1"``."""
        with PlotlyLibrary.SCRIPT.open(encoding="utf-8") as script:
            match = re.search(r"plotly\.js .*?v(\d+\.\d+\.\d+)", script.read(200))
        if match is None:
            raise RuntimeError(f"{PlotlyLibrary.SCRIPT} has no plotly.js version in its header")
        return match.group(1)

    @staticmethod
    @functools.cache
    def trace_types() -> frozenset[str]:
        """The trace types the bundle can draw (read from the bundle itself), e.g. ``"heatmap"``, ``"scatter"``."""
        source = PlotlyLibrary.SCRIPT.read_text(encoding="utf-8")
        return frozenset(re.findall(r'moduleType:"trace",name:"(\w+)"', source))


@dataclass(frozen=True)
class Click:
    """A click on a point of a figure, as plotly reports it.

    Attributes:
        trace: index of the trace clicked in ``figure.data``.
        x: the point's x value (the column for a heatmap without x coordinates).
        y: the point's y value (the row for a heatmap without y coordinates).
        point_index: the point's index in the trace; ``[row, col]`` for a heatmap.
    """

    trace: int
    x: Any
    y: Any
    point_index: int | list[int] | None = None


def to_json(value: Any) -> Any:
    """``value`` as plain JSON types: arrays (numpy, or plotly's base64 encoding) become nested lists, NaN ``None``."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f" and np.isnan(value).any():
            return np.where(np.isnan(value), None, value).tolist()
        return value.tolist()
    if isinstance(value, np.generic):
        return to_json(value.item())
    if isinstance(value, float) and value != value:  # NaN
        return None
    if isinstance(value, dict) and "bdata" in value and "dtype" in value:  # plotly's base64 array encoding
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = [int(n) for n in str(value.get("shape", array.size)).split(",")]
        return to_json(array.reshape(shape))
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    if isinstance(value, BasePlotlyType):  # e.g. go.layout.Shape(...)
        return to_json(value.to_plotly_json())
    return value


def _figure_json(figure: go.Figure | dict) -> dict:
    """``{"data": [...], "layout": {...}}`` in plain JSON types, from a ``go.Figure`` or a dict."""
    if isinstance(figure, dict):
        figure = go.Figure(figure)  # validates the property names, like plotly does
    if not isinstance(figure, go.Figure):
        raise TypeError(f"figure must be a plotly go.Figure or a dict, got {type(figure).__name__}")
    plain = to_json(figure.to_plotly_json())  # lists, not plotly's base64 arrays: tests and patches read the same
    missing = sorted({trace.get("type", "scatter") for trace in plain.get("data", [])} - PlotlyLibrary.trace_types())
    if missing:
        raise ValueError(
            f"LiveFigure draws with plotly.js's cartesian bundle, which has no {', '.join(map(repr, missing))} "
            f"trace; it draws {', '.join(sorted(PlotlyLibrary.trace_types()))}. "
            "Show this figure with plotly instead (fig.show() or go.FigureWidget(fig))."
        )
    return {"data": plain.get("data", []), "layout": plain.get("layout", {})}


class LiveFigure(anywidget.AnyWidget):
    """A plotly figure that updates in place, in JupyterLab and in Voila, with many per page.

    Args:
        figure: the figure to start from (its traces and layout; build it with ``plotly.graph_objects``).
        config: plotly's config, e.g. ``{"displayModeBar": False}`` (the default).
        **kwargs: passed to the widget (e.g. ``layout=widgets.Layout(...)``).

    Update it with :meth:`update_trace`/:meth:`update_layout` (grouped by :meth:`batch`), or replace it whole
    with :meth:`show`. Read it back with :attr:`data` and :attr:`layout`.
    """

    _esm = Path(__file__).parent / "static" / "live_figure.js"  # the browser half: applies patches, draws
    figure = traitlets.Dict(help="{'data': [...], 'layout': {...}, 'revision': int}").tag(sync=True)
    config = traitlets.Dict().tag(sync=True)
    room = traitlets.Int(0, help="the width (px) the browser draws the figure at; 0 until drawn").tag(sync=True)
    library = traitlets.Instance(PlotlyLibrary).tag(sync=True, **widgets.widget_serialization)

    def __init__(self, figure: go.Figure | dict | None = None, *, config: dict | None = None, **kwargs: Any) -> None:
        state = _figure_json(figure) if figure is not None else {"data": [], "layout": {}}
        super().__init__(
            figure={**state, "revision": 0},
            config=config if config is not None else {"displayModeBar": False},
            library=PlotlyLibrary.shared(),
            **kwargs,
        )
        self._pending: list[dict] | None = None  # ops collected inside batch()
        self._lock = threading.RLock()  # one writer at a time: a training thread's redraws, the kernel's replies
        self._click_callbacks: list[Callable[[Click], None]] = []
        self.on_msg(self._on_browser_msg)

    @property
    def data(self) -> list[dict]:
        """The traces as plain dicts (what the browser draws); read them, change them with :meth:`update_trace`."""
        return self.figure["data"]

    @property
    def layout(self) -> dict:
        """The layout as a plain dict; change it with :meth:`update_layout`."""
        return self.figure["layout"]

    def update_trace(self, trace: int | str, props: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """Replace properties of a trace, by index or by name: ``fig.update_trace("maps", z=feature_map)``.

        Each keyword replaces that property whole (``marker={...}`` replaces the whole marker); to replace one
        nested property pass a dict with a dotted path: ``fig.update_trace(0, {"marker.color": "red"})``.
        """
        self._apply({"trace": self.trace_index(trace), "props": to_json({**(props or {}), **kwargs})})

    def trace_index(self, trace: int | str) -> int:
        """The index of a trace given by index or by its (unique) ``name``."""
        if isinstance(trace, str):
            indices = [i for i, data in enumerate(self.data) if data.get("name") == trace]
            if len(indices) != 1:
                names = [data.get("name") for data in self.data]
                problem = "no trace" if not indices else f"{len(indices)} traces"
                raise KeyError(f"{problem} named {trace!r}; the traces are {names}")
            return indices[0]
        if isinstance(trace, bool) or not isinstance(trace, int) or not 0 <= trace < len(self.data):
            raise IndexError(f"trace index must be an int in 0 … {len(self.data) - 1}, got {trace!r}")
        return trace

    def update_layout(self, props: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """Replace layout properties: ``fig.update_layout(shapes=[...], title={"text": "step 3"})``.

        Dotted paths replace one nested property and keep its siblings: ``fig.update_layout({"xaxis.range": [0, 9]})``.
        """
        self._apply({"props": to_json({**(props or {}), **kwargs})})

    def set_subplot_title(self, index: int, text: str) -> None:
        """Change the title of subplot ``index`` (0-based, in the order ``make_subplots`` got the titles)."""
        annotations = self.layout.get("annotations", [])
        if not 0 <= index < len(annotations):
            raise IndexError(f"the figure has {len(annotations)} subplot titles, got index {index}")
        self.update_layout({f"annotations.{index}.text": text})

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group updates: the browser receives them as one patch and redraws once.

        Example:
            >>> with fig.batch():
            ...     fig.update_trace(0, z=image)
            ...     fig.update_layout(shapes=[window])
        """
        with self._lock:  # the batch belongs to the thread that opened it
            if self._pending is not None:  # nested: the outer batch sends
                yield
                return
            self._pending = []
            try:
                yield
            finally:
                ops, self._pending = self._pending, None
                if ops:
                    self._send_patch(ops)

    def show(self, figure: go.Figure | dict) -> None:
        """Replace the whole figure (new traces or a new layout), e.g. when a control changes its structure."""
        state = _figure_json(figure)
        with self._lock:
            self.figure = {**state, "revision": self.figure["revision"] + 1}

    def on_click(self, callback: Callable[[Click], None]) -> None:
        """Call ``callback(click)`` when the learner clicks a point (a heatmap cell, a marker)."""
        self._click_callbacks.append(callback)

    def click(self, trace: int, x: Any, y: Any, point_index: int | list[int] | None = None) -> None:
        """Act as if the learner clicked that point: runs the :meth:`on_click` callbacks (used by tests too)."""
        event = Click(trace, x, y, point_index)
        for callback in self._click_callbacks:
            callback(event)

    def _apply(self, op: dict) -> None:
        # Change the Python copy in place: the trait stays the truth for views that connect later, and
        # traitlets does not re-send the whole figure (the patch carries the change).
        with self._lock:
            target = self.layout if "trace" not in op else self.data[op["trace"]]
            for path, value in op["props"].items():  # "xaxis.range": walk to xaxis, set its range
                *parents, last = path.split(".")
                node = target
                for key in parents:  # "annotations.2.text": a list's element by its index
                    node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
                if isinstance(node, list):
                    node[int(last)] = value
                else:
                    node[last] = value
            if self._pending is not None:
                self._pending.append(op)
            else:
                self._send_patch([op])

    def _send_patch(self, ops: list[dict]) -> None:
        with self._lock:
            self.figure["revision"] += 1
            self.send({"type": "patch", "revision": self.figure["revision"], "ops": ops})

    def _on_browser_msg(self, _widget: LiveFigure, content: dict, _buffers: list) -> None:
        if content.get("type") == "click":
            self.click(content["trace"], content["x"], content["y"], content.get("point_index"))
            return
        with self._lock:  # the figure must not change while its state is serialised
            if content.get("type") == "resync" or (
                content.get("type") == "sync" and content.get("revision") != self.figure["revision"]
            ):
                self.send_state("figure")
