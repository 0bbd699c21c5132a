"""The architecture race, watched: curves side by side while each model trains, then a table to compare them.

The race itself is :func:`segtutor.train.race` (headless: a notebook calls it directly and asserts on the results).
:class:`ArchitectureRace` is its view, a :class:`~segtutor.train.RaceCallback`: pass it to ``race(...,
callbacks=[view])`` to watch a race a notebook cell runs, or press its Start button, which runs the race in a
worker thread (:func:`segtutor.train.run_in_background`, so it stops any other training of this kernel).
"""

from __future__ import annotations

import html
import math
import threading
import time
from collections.abc import Sequence

import ipywidgets as widgets
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from torch.utils.data import Dataset

from segtutor.data import class_names_of
from segtutor.figures import style
from segtutor.models import LABELS, format_count, list_models
from segtutor.train import (
    CpuShare,
    RaceCallback,
    RaceResult,
    TrainConfig,
    TrainingControl,
    TrainState,
    race,
    run_in_background,
    smooth,
)
from segtutor.widgets.controls import row, status_line
from segtutor.widgets.live_figure import LiveFigure
from segtutor.widgets.studio.settings import TrainSettings, label

CELL = "padding:2px 10px;white-space:nowrap"  # a table cell of the results: columns apart, a header on one line
RACE_COLORS = {"unet": "#1b9e77", "fcn8s": "#d95f02", "deeplabv3": "#7570b3"}  # one colour per architecture


def race_figure(model_names: Sequence[str]) -> go.Figure:
    """Two panels against training time: smoothed training loss, and validation mean IoU; one colour per model.

    Traces, by name: the model's label (its loss, shown in the legend) and "<label> IoU", e.g. "FCN-8s IoU".
    """
    figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.08,
                           subplot_titles=("training loss (smoothed)", "validation mean IoU"))  # fmt: skip
    for name in model_names:
        label_, color = LABELS.get(name, name), RACE_COLORS.get(name, "#333333")
        common = dict(x=[], y=[], legendgroup=name, line=dict(color=color, width=2))
        figure.add_trace(go.Scatter(mode="lines", name=label_,
                                    hovertemplate=f"{label_}<br>%{{x:.1f}} s: %{{y:.4f}}<extra></extra>", **common),
                         1, 1)  # fmt: skip
        iou_hover = f"{label_}<br>%{{x:.1f}} s: IoU %{{y:.3f}}<extra></extra>"
        figure.add_trace(go.Scatter(mode="lines+markers", name=f"{label_} IoU", showlegend=False,
                                    hovertemplate=iou_hover, **common), 1, 2)  # fmt: skip
    figure.update_xaxes(title_text="training time (s)")
    figure.update_yaxes(rangemode="tozero", row=1, col=1)
    figure.update_yaxes(range=[0, 1.02], row=1, col=2)
    return style(figure, width=1120, height=380, margin=dict(l=50, r=10, t=40, b=70), uirevision="keep zoom",
                 legend=dict(orientation="h", x=0.5, xanchor="center", y=-0.2))  # fmt: skip


class ArchitectureRace(widgets.VBox, RaceCallback):
    """Watch every architecture train with the same budget on the same data; curves side by side and a table.

    Args:
        train_data, val_data: ``(image (C, H, W), mask (H, W))`` datasets shared by every model.
        config: the settings every model trains with (the controls show its batch size and budget); default
            ``TrainConfig(max_seconds=20, eval_every=20)``.
        class_names: one per class; default ``train_data.class_names``.
        models: registry names to race, in order.
        size: the size of every model (``"tiny"``, ``"small"``, ...).
        tolerance: pixels an outline may be off in the boundary F-score.
        draw_every_s: seconds between two redraws while a model trains.
        cpu_share: the models take turns for the machine's cores with the runs of other kernels (a class on one
            server, :class:`~segtutor.train.CpuShare`); the status shows a wait for a free core. None: no turns.

    Python API: :meth:`start`, :meth:`stop`, :meth:`join`; :attr:`results` fills in as each model finishes.
    """

    def __init__(
        self,
        train_data: Dataset,
        val_data: Dataset,
        config: TrainConfig | None = None,
        *,
        class_names: Sequence[str] | None = None,
        models: Sequence[str] = tuple(list_models()),
        size: str = "small",
        tolerance: float = 2.0,
        draw_every_s: float = 0.2,
        cpu_share: CpuShare | None = None,
    ) -> None:
        unknown = [name for name in models if name not in list_models()]
        if unknown:
            raise ValueError(f"unknown models {unknown}; available options are: {', '.join(list_models())}")
        self.train_data, self.val_data = train_data, val_data
        self.class_names = class_names_of(train_data, class_names)
        self.models = list(models)
        self.tolerance, self.draw_every_s = tolerance, draw_every_s
        self.cpu_share = cpu_share  # the models take turns for the machine's cores with other learners' runs
        self.waiting_ahead: int | None = None  # runs first in line while the model waits for a core
        self.results: list[RaceResult] = []
        self.current: str | None = None  # the model training now
        self.control = TrainingControl()  # the latest race's; a stop ends it
        self._history = None  # the history of the model training now
        self._worker: threading.Thread | None = None
        self._last_draw = -math.inf

        config = config if config is not None else TrainConfig(max_seconds=20, eval_every=20)
        self.settings = TrainSettings(config, fields=("batch_size", "budget"))
        self.size = widgets.ToggleButtons(options=["tiny", "small", "medium"], value=size,
                                          style={"button_width": "auto"})  # fmt: skip
        self.start_button = widgets.Button(description="▶ Start the race", button_style="success",
                                           layout=widgets.Layout(width="150px"))  # fmt: skip
        self.stop_button = widgets.Button(description="■ Stop", button_style="danger", disabled=True,
                                          layout=widgets.Layout(width="90px"))  # fmt: skip
        self.status = widgets.HTML()
        self.table = widgets.HTML()
        self.errors = widgets.Output()
        self.figure = LiveFigure(race_figure(self.models))
        self.figure.add_class("segtutor-race")
        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self._render(final=True)
        super().__init__([
            row([self.start_button, self.stop_button, self.status]),
            row([label("size"), self.size]),
            *self.settings.rows(),
            self.figure, self.table, self.errors,
        ])  # fmt: skip
        self.add_class("segtutor-race-panel")

    # ---- Python API ----------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while a race started with :meth:`start` trains."""
        return self._worker is not None and self._worker.is_alive()

    def config(self) -> TrainConfig:
        """The settings every model trains with."""
        return self.settings.config()

    def start(self) -> None:
        """Race every model in a worker thread (stopping any other training of this kernel first)."""
        self.errors.outputs = ()
        config, size = self.config(), self.size.value
        control = TrainingControl()
        self.start_button.disabled, self.stop_button.disabled = True, False  # before the worker: it re-enables Start
        try:
            self._worker = run_in_background(lambda: self._race(config, size, control), control, name="segtutor-race")
        except RuntimeError as error:
            self.errors.append_stderr(f"{error}\n")
            self._render(final=True)
            return
        self.control = control

    def stop(self) -> None:
        """End the race after the step in progress (models already finished keep their line in the table)."""
        self.control.stop()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for a race started with :meth:`start` to end (at most ``timeout`` seconds); True if it has."""
        if self._worker is not None:
            self._worker.join(timeout)
        return not self.running

    def _race(self, config: TrainConfig, size: str, control: TrainingControl) -> None:
        try:
            race(self.models, self.train_data, self.val_data, config, size=size, class_names=self.class_names,
                 tolerance=self.tolerance, callbacks=[self], control=control, cpu_share=self.cpu_share)  # fmt: skip
        except Exception as error:  # noqa: BLE001 (shown in the widget, never lost in the thread)
            self.errors.append_stderr(f"the race stopped: {type(error).__name__}: {error}\n")
        finally:
            self.current = None
            self._render(final=True)

    # ---- RaceCallback hooks (the thread that runs the race) -------------------------------------------------
    def on_model_start(self, name: str, index: int) -> None:
        if index == 0:  # a new race: clear the last one's curves and table
            self.results = []
            with self.figure.batch():
                for model in self.models:
                    self.figure.update_trace(LABELS.get(model, model), x=[], y=[])
                    self.figure.update_trace(f"{LABELS.get(model, model)} IoU", x=[], y=[])
        self.current, self._history = name, None
        self._render()

    def on_train_start(self, state: TrainState) -> None:
        self._history = state.history

    def on_iteration(self, state: TrainState) -> None:
        now = time.perf_counter()
        if now - self._last_draw >= self.draw_every_s:
            self._last_draw = now
            self._draw(self.current, state.history)
            self._render()

    def on_wait(self, state: TrainState) -> None:
        if state.waiting_ahead != self.waiting_ahead:  # started or stopped waiting for a core: the status says so
            self.waiting_ahead = state.waiting_ahead
            self._render()

    def on_model_end(self, result: RaceResult) -> None:
        self.results.append(result)
        self._draw(result.model_name, result.history)
        self._render()

    # ---- drawing -------------------------------------------------------------------------------------------
    def _draw(self, name: str | None, history) -> None:
        if name is None or history is None:
            return
        with self.figure.batch():
            label_ = LABELS.get(name, name)
            self.figure.update_trace(label_, x=history.seconds, y=smooth(history.losses))
            self.figure.update_trace(f"{label_} IoU", x=[e.seconds for e in history.evaluations],
                                     y=[e.mean_iou for e in history.evaluations])  # fmt: skip

    def _render(self, *, final: bool = False) -> None:
        """Status line, buttons and the table."""
        self.stop_button.disabled = final
        self.start_button.disabled = not final  # Stop first: a second Start would restart the race silently
        if not final and self.current is not None:
            steps = len(self._history.losses) if self._history is not None else 0
            parts = ["<b style='color:#238b45'>racing</b>",
                     f"{LABELS.get(self.current)} ({len(self.results) + 1} of {len(self.models)})", f"step {steps}"]
            if self.waiting_ahead is not None:
                parts.append(f"<span style='color:#6a51a3'>waiting for a free core — {self.waiting_ahead} ahead</span>")
            self.status.value = status_line(parts)
        elif self.results:
            self.status.value = status_line(["<b>finished</b>", f"{len(self.results)} of {len(self.models)} models "
                                             "trained"])  # fmt: skip
        else:
            self.status.value = "every model gets the same budget, data, seed and settings"
        self.table.value = _table_html(self.results, self.tolerance)


def _table_html(results: Sequence[RaceResult], tolerance: float) -> str:
    if not results:
        return ""
    columns = ["parameters", "FLOPs per tile", "ms per step", "steps", "mean IoU", "mean Dice",
               f"boundary F ({tolerance:g} px)", "ended"]  # fmt: skip
    head = ("<tr style='border-bottom:1px solid #999'><th style='text-align:left;padding:2px 10px 2px 0'>model</th>"
            + "".join(f"<th style='{CELL}'>{column}</th>" for column in columns) + "</tr>")  # fmt: skip
    best_iou = max((r.mean_iou for r in results if r.mean_iou == r.mean_iou), default=math.nan)
    rows = []
    for r in results:
        name = LABELS.get(r.model_name, r.model_name)
        color = RACE_COLORS.get(r.model_name, "#333333")
        iou = f"<b>{r.mean_iou:.3f}</b>" if r.mean_iou == best_iou else f"{r.mean_iou:.3f}"
        rows.append(
            f"<tr><td style='text-align:left;padding:2px 10px 2px 0'><b style='color:{color}'>{html.escape(name)}</b>"
            f" ({r.size})</td>" + "".join(f"<td style='{CELL}'>{value}</td>" for value in (
                format_count(r.num_params), format_count(r.flops), f"{1000 * r.seconds_per_iteration:.0f}",
                r.iterations, iou, f"{r.mean_dice:.3f}", f"{r.boundary.mean_f_score:.3f}", r.status)) + "</tr>"
        )
    note = ("<div style='font-size:12px;color:#555'>boundary F: share of outline pixels within "
            f"{tolerance:g} px of the true outline (1 = every edge in place); IoU and Dice count all "
            "pixels.</div>")  # fmt: skip
    return (f"<table style='font-size:13px;text-align:right;border-collapse:collapse'>{head}{''.join(rows)}</table>"
            f"{note}")
