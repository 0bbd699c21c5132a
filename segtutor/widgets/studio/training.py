"""The training dashboard: Start, Pause, Resume, Stop, and watch the loss fall while the page stays responsive.

The run is a :class:`~segtutor.train.TrainingSession`: :meth:`~segtutor.train.Trainer.run`, the loop of ``fit``,
in a worker thread. The dashboard is its view and one of its callbacks: the buttons only set flags and return,
and the hooks, which run in the worker thread, redraw the curves, the status line and the preview at most every
``draw_every_s`` seconds (5 times a second by default). The preview is the time machine's prediction
(:meth:`~segtutor.train.TimeMachine.predict`): it waits up to ``preview_every_s`` longer for a step with a snapshot,
whose forward pass it then shares.

Curves change in place (:meth:`LiveFigure.update_trace`), one small patch per redraw: no clear-and-redraw.
Under the curves, the time machine (:class:`~segtutor.train.TimeMachine`, another callback of the run, drawn by
:class:`~segtutor.widgets.studio.time_machine.TimeMachineViewer`) keeps snapshots of the preview tile's prediction
and scrubs back through them.
"""

from __future__ import annotations

import base64
import copy
import html
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from torch import nn
from torch.utils.data import Dataset

from segtutor.data import class_colors
from segtutor.figures import class_legend_html, image_trace, log_ticks, lr_finder_figure, png_uri, style
from segtutor.models import PAPER_SIZED_PARAMETERS, count_parameters, format_count
from segtutor.predict import BrokenModelError, image_to_rgb, labels_of, overlay
from segtutor.train import (
    Callback,
    History,
    LRFinderResult,
    TimeMachine,
    TrainConfig,
    TrainingSession,
    TrainState,
    save_checkpoint,
    smooth,
)
from segtutor.widgets.controls import row, status_line
from segtutor.widgets.live_figure import LiveFigure
from segtutor.widgets.studio.settings import TrainSettings
from segtutor.widgets.studio.time_machine import TimeMachineViewer

WARM_UP_DELAY_S = 3.0  # the warm-up waits this long (or for Start), leaving the CPU to drawing the page
TRAIN_COLOR, SMOOTH_COLOR, VAL_COLOR = "#9ecae1", "#08519c", "#6a3d9a"
STATE_COLORS = {"running": "#238b45", "paused": "#b35806", "warming up": "#6a51a3", "completed": "#08519c",
                "stopped": "#525252", "diverged": "#cb181d", "error": "#cb181d", "idle": "#525252",
                "finding lr": "#6a51a3"}  # fmt: skip
CURVES = ("training loss", "training loss (smoothed)", "validation loss")
CURVES_MIN_PX, PREVIEW_MIN_PX = 560, 240  # narrower than both side by side: the preview wraps under the curves
EMPTY_LOG_RANGE = (0.1, 1.0)  # the log-scale loss axis before any loss: a usual range for a cross-entropy


def curves_figure(class_names: Sequence[str], colors: Sequence[Sequence[int]]) -> go.Figure:
    """The dashboard's curves: the losses, and the validation IoU and Dice per class.

    Traces, by name: "training loss", "training loss (smoothed)", "validation loss", "IoU <class>" and "Dice <class>"
    for each class. :class:`TrainingDashboard` updates them in place.
    """
    figure = make_subplots(rows=1, cols=2, column_widths=[0.53, 0.47], horizontal_spacing=0.1,
                           subplot_titles=("loss (lower is better)", "validation IoU and Dice"))  # fmt: skip
    def curve(name: str, line: dict, mode: str = "lines", digits: int = 4, **kwargs) -> go.Scatter:
        return go.Scatter(x=[], y=[], mode=mode, name=name, line=line,
                          hovertemplate=f"step %{{x}}: %{{y:.{digits}f}}", **kwargs)  # fmt: skip

    figure.add_trace(curve("training loss", dict(color=TRAIN_COLOR, width=1)), 1, 1)
    figure.add_trace(curve("training loss (smoothed)", dict(color=SMOOTH_COLOR, width=2)), 1, 1)
    figure.add_trace(curve("validation loss", dict(color=VAL_COLOR, width=2), "lines+markers"), 1, 1)
    for name, color in zip(class_names, colors):
        rgb = f"rgb{tuple(color)}"
        figure.add_trace(curve(f"IoU {name}", dict(color=rgb, width=2), "lines+markers", 3, legendgroup=name), 1, 2)
        figure.add_trace(curve(f"Dice {name}", dict(color=rgb, width=1.5, dash="dot"), digits=3, legendgroup=name),
                         1, 2)  # fmt: skip
    figure.update_xaxes(title_text="step", row=1, col=1)
    figure.update_xaxes(title_text="step", matches="x", row=1, col=2)  # both panels show the same steps
    figure.update_yaxes(rangemode="tozero", row=1, col=1)
    figure.update_yaxes(range=[0, 1.02], row=1, col=2)
    style(figure, width=880, height=430, margin=dict(l=50, r=10, t=40, b=40), uirevision="keep zoom",
          legend=dict(orientation="h", x=0, y=-0.14, font=dict(size=11)))  # fmt: skip
    for annotation in figure.layout.annotations:
        annotation.font.size = 13
    return figure


def picture_figure(picture: np.ndarray, name: str, title: str) -> go.Figure:
    """One picture (``(H, W, 3)`` uint8) under a title: the preview's truth or prediction (trace ``name``)."""
    figure = go.Figure(image_trace(picture, name))
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return style(figure, width=PREVIEW_MIN_PX - 10, height=210, margin=dict(l=10, r=10, t=34, b=6),
                 title=dict(text=title, x=0.5, font=dict(size=13)))  # fmt: skip


class TrainingDashboard(widgets.VBox, Callback):
    """Train a model live: Start, Pause, Resume, Stop; learning rate, optimizer, batch size and budget; live curves.

    Args:
        model: the network to train (in place); "from scratch" always restarts from its weights of now.
        train_data: ``Dataset`` of ``(image (C, H, W) float, mask (H, W) int64)``.
        val_data: the same for the validation curves and the live preview (sample ``preview_index``).
        config: the controls' first values and every setting without a control (``eval_every``, seed, device,
            the loss, ...); default ``TrainConfig(max_seconds=30, eval_every=20)``.
        class_names: one per class; default ``train_data.class_names``.
        preview_index: the validation sample the live preview predicts.
        preview_every_s: seconds between two live previews of the prediction (up to twice that, to share the
            forward pass of a time-machine snapshot).
        draw_every_s: seconds between two redraws of curves and status (0.2: at most 5 per second).
        warm_up: run one throw-away step in the background now (the first step of a fresh kernel is slow).
        max_snapshots: the time machine keeps at most this many snapshots of the preview tile per run.

    Python API (what the buttons call): :meth:`start`, :meth:`pause`, :meth:`resume`, :meth:`stop`, :meth:`join`,
    :meth:`find_lr`, :meth:`offer_checkpoint`; ``dashboard.settings.lr.value = 1e-4`` changes the learning rate of
    the running training.
    The controls show the model's recommended learning rate and batch size where ``config`` leaves them at None.

    Example:
        >>> dashboard = TrainingDashboard(create_model("unet", size="tiny"), train_data, val_data,
        ...                               TrainConfig(max_seconds=20, eval_every=20))
        >>> dashboard            # shows it; then press Start (or call dashboard.start())
    """

    def __init__(
        self,
        model: nn.Module,
        train_data: Dataset,
        val_data: Dataset,
        config: TrainConfig | None = None,
        *,
        class_names: Sequence[str] | None = None,
        preview_index: int = 0,
        preview_every_s: float = 1.0,
        draw_every_s: float = 0.2,
        warm_up: bool = True,
        max_snapshots: int = 64,
    ) -> None:
        self.settings = TrainSettings(config if config is not None else TrainConfig(max_seconds=30, eval_every=20),
                                      model=model)  # fmt: skip
        self.session = TrainingSession(model, train_data, val_data, class_names=class_names,
                                       preview_index=preview_index, warm_up=warm_up,
                                       warm_up_delay=WARM_UP_DELAY_S)  # fmt: skip
        self.time_machine = TimeMachine(val_data, preview_index, max_snapshots, class_names=self.session.class_names)
        self.session.callbacks += [self.time_machine, self]  # snapshots first: the dashboard draws the newest
        self.preview_every_s = preview_every_s
        self.draw_every_s = draw_every_s
        self.class_names = self.session.class_names
        self.colors = getattr(train_data, "class_colors", None) or class_colors(self.class_names)
        self._last_draw = self._last_preview = -math.inf

        # 1) controls
        button = dict(layout=widgets.Layout(width="105px"))
        self.start_button = widgets.Button(description="▶ Start", button_style="success", **button,
                                           tooltip="train from the initial weights (or go on, if ticked below)")
        self.pause_button = widgets.Button(description="‖ Pause", disabled=True, **button)
        self.resume_button = widgets.Button(description="▷ Resume", disabled=True, **button)
        self.stop_button = widgets.Button(description="■ Stop", button_style="danger", disabled=True, **button)
        self.log_scale = widgets.Checkbox(value=False, description="log-scale loss", indent=False,
                                          layout=widgets.Layout(width="130px"))  # fmt: skip
        self.keep_weights = widgets.Checkbox(value=False, description="continue from the current weights",
                                             indent=False)  # fmt: skip
        self.status = widgets.HTML()
        self.status.add_class("segtutor-training-status")
        self.progress = widgets.FloatProgress(value=0, min=0, max=1,
                                              layout=widgets.Layout(width="auto"))  # the row's width, less margins
        self.errors = widgets.Output()
        self.lr_finder_button = widgets.Button(description="find lr", icon="search", **button,
                                               tooltip="a short mock training with a rising learning rate, on a copy "
                                                       "of the model: where does the loss fall fastest?")  # fmt: skip
        self.lr_finder = None  # the latest LRFinderResult
        self.lr_figure = LiveFigure()
        self.lr_panel = widgets.Box([self.lr_figure], layout=widgets.Layout(display="none"))  # shown once it has run
        self.checkpoint_button = widgets.Button(description="checkpoint", icon="download",
                                                layout=widgets.Layout(width="120px"),
                                                tooltip="the model as it is now, with its settings and curves, as a "
                                                        ".pt file to keep (segtutor.train.load_checkpoint reads it)")
        self.checkpoint_link = widgets.HTML()  # the download link, once a checkpoint is made

        # 2) the figures: curves, and beside them (under them where the output is narrow) the preview tile
        image, mask = self.session.preview_sample()
        self._preview_rgb = image_to_rgb(image)
        self.figure = LiveFigure(curves_figure(self.class_names, self.colors))
        self.truth = LiveFigure(picture_figure(overlay(image, mask, self.colors, 0.45), "truth", "truth"))
        self.prediction = LiveFigure(picture_figure(self._preview_rgb, "prediction", "prediction: press Start"))
        # a row that wraps: the curves may shrink to CURVES_MIN_PX, the preview to PREVIEW_MIN_PX; below that the
        # preview goes under the curves, as wide as the output, its two pictures side by side
        curves = widgets.Box([self.figure], layout=widgets.Layout(flex=f"3 1 {CURVES_MIN_PX}px", min_width="0"))
        curves.add_class("segtutor-training-curves")
        preview = widgets.Box([self.truth, self.prediction], layout=widgets.Layout(
            flex=f"1 1 {PREVIEW_MIN_PX}px", flex_flow="row wrap", align_content="flex-start"))  # fmt: skip
        preview.add_class("segtutor-training-preview")
        self.rewind = TimeMachineViewer(self.time_machine, colors=self.colors, curves=self.figure)

        # 3) wiring: buttons only call methods that set flags and return
        self.start_button.on_click(lambda _: self.start())
        self.pause_button.on_click(lambda _: self.pause())
        self.resume_button.on_click(lambda _: self.resume())
        self.stop_button.on_click(lambda _: self.stop())
        self.lr_finder_button.on_click(lambda _: self.find_lr())
        self.checkpoint_button.on_click(lambda _: self.offer_checkpoint())
        self.settings.lr.observe(self._on_lr, names="value")
        self.log_scale.observe(self._on_log_scale, names="value")
        self._render_status()
        super().__init__([
            row([self.start_button, self.pause_button, self.resume_button, self.stop_button, self.lr_finder_button,
                 self.status]),
            *self.settings.rows(),
            row([self.log_scale, self.keep_weights, self.checkpoint_button, self.checkpoint_link]),
            self.lr_panel, self.progress, row([curves, preview], align_items="flex-start"),
            widgets.HTML(class_legend_html(self.class_names, self.colors)),
            self.rewind, self.errors,
        ])  # fmt: skip

    # ---- the Python API (what the buttons do) --------------------------------------------------------------
    def config(self) -> TrainConfig:
        """The :class:`TrainConfig` the controls describe now."""
        return self.settings.config()

    def start(self) -> None:
        """Stop the current run (if any) and train with the controls' settings in a worker thread.

        A bad setting (a batch larger than the data, say) is shown below the figure before anything trains.
        """
        self.errors.outputs = ()
        self._last_draw = self._last_preview = -math.inf
        try:
            self.session.start(self.config(), from_scratch=not self.keep_weights.value)
        except (ValueError, TypeError, RuntimeError) as error:
            self.errors.append_stderr(f"{error}\n")
        else:
            self._clear_curves("prediction: waiting for the first steps")
        self._render_status()

    def find_lr(self, num_steps: int = 100) -> None:
        """Stop the current run (if any) and run the learning-rate finder on a copy of the model, in the background.

        When it ends, its curve is drawn above the training curves and the learning-rate control is set to its
        suggestion (change it if the curve says otherwise). The model's weights are not touched.
        """
        self.errors.outputs = ()
        try:
            self.session.find_lr(self.config(), self._show_lr_finder, num_steps=num_steps)
        except (ValueError, TypeError, RuntimeError) as error:
            self.errors.append_stderr(f"{error}\n")
        self._render_status()

    def offer_checkpoint(self) -> bytes:
        """The model as it is now (between two steps), its settings and history, as a link that downloads a ``.pt``.

        A learner keeps the work on their own machine: a closed tab or a restarted server does not take it along.
        The file is :func:`~segtutor.train.save_checkpoint`'s; :func:`~segtutor.train.load_checkpoint` reads it back.

        Returns:
            The file's bytes (also in the link); b"" if the model cannot be saved (the reason is shown).
        """
        session = self.session
        with session.control.step_lock:  # weights and curves of the same step
            model = copy.deepcopy(session.model).cpu()
            history = copy.deepcopy(session.history)
        steps = len(history.losses) if history is not None else 0
        name = f"{type(model).__name__.lower()}-step{steps}.pt"
        try:
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / name
                save_checkpoint(path, model, class_names=list(self.class_names), history=history,
                                config=session.config if history is not None else None)  # fmt: skip
                data = path.read_bytes()
        except ValueError as error:  # not a model create_model rebuilds, or a setting that is not a plain value
            self.errors.append_stderr(f"no checkpoint: {error}\n")
            return b""
        href = "data:application/octet-stream;base64," + base64.b64encode(data).decode("ascii")
        self.checkpoint_link.value = (f"<a download='{name}' href='{href}' style='color:#08519c'>⬇ save {name}</a> "
                                      f"({len(data) / 2**20:.1f} MB, after {steps} steps)")  # fmt: skip
        return data

    def pause(self) -> None:
        """Pause after the step in progress."""
        self.session.control.pause()

    def resume(self) -> None:
        """Go on after a pause."""
        self.session.control.resume()

    def stop(self) -> None:
        """End the run after the step in progress (model and history are kept)."""
        self.session.control.stop()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the run to end (at most ``timeout`` seconds); True if it has."""
        return self.session.join(timeout)

    def set_model(self, model: nn.Module) -> None:
        """Train ``model`` from now on (stops the current run): what the model picker calls."""
        self.session.set_model(model)
        self.settings.use_model(model)  # its recommended learning rate and batch size, unless given
        self._clear_curves("prediction: press Start")
        self._render_status()

    @property
    def model(self) -> nn.Module:
        """The model being trained (or trained last)."""
        return self.session.model

    @property
    def history(self) -> History | None:
        """The latest run's :class:`~segtutor.train.History` (None before the first run)."""
        return self.session.history

    # ---- Callback hooks: these run in the worker thread ----------------------------------------------------
    def on_iteration(self, state: TrainState) -> None:
        now = time.perf_counter()
        since = now - self._last_preview
        machine = self.time_machine
        shared = machine.predicted(state) or machine not in self.session.callbacks  # no snapshot to wait for
        preview = since >= self.preview_every_s and (shared or since >= 2 * self.preview_every_s)
        if not preview and now - self._last_draw < self.draw_every_s:
            return
        self._last_draw = now
        if preview:
            self._last_preview = now
        self._draw(state, preview=preview)

    def on_wait(self, state: TrainState) -> None:
        self._render_status()

    def on_train_end(self, state: TrainState) -> None:
        self._render_status()  # "stopped" at once; the last curves and preview follow
        self._draw(state, preview=bool(state.history.losses))
        if state.traceback:
            self.errors.append_stderr(state.traceback)

    def _show_lr_finder(self, result: LRFinderResult | None, error: str) -> None:
        """The finder's end (in the worker thread): draw its curve, take its suggestion, or show its error."""
        if result is None:
            self.errors.append_stderr(f"the learning-rate finder stopped: {error}\n")
        else:
            self.lr_finder = result
            self.lr_figure.show(lr_finder_figure(result))
            self.lr_panel.layout.display = None
            self.settings.lr.value = float(f"{result.suggestion:.1g}")  # a round number: 3e-3, not 2.87e-3
        self._render_status()

    # ---- drawing -------------------------------------------------------------------------------------------
    def _draw(self, state: TrainState, *, preview: bool) -> None:
        history = self.session.history
        losses = history.losses
        steps = list(range(1, len(losses) + 1))
        with self.figure.batch():
            self.figure.update_trace("training loss", x=steps, y=losses)
            self.figure.update_trace("training loss (smoothed)", x=steps, y=smooth(losses))
            self.figure.update_trace("validation loss", x=history.val_iterations, y=history.val_losses)
            for c, name in enumerate(self.class_names):
                self.figure.update_trace(f"IoU {name}", x=history.val_iterations, y=history.val_iou(c))
                self.figure.update_trace(f"Dice {name}", x=history.val_iterations, y=history.val_dice(c))
            if self.log_scale.value:
                self._update_loss_axis()  # round values for the new range
            if preview:
                self._draw_preview(state)
        self.rewind.refresh(draw=preview)
        self._render_status()

    def _draw_preview(self, state: TrainState) -> None:
        step = state.iteration
        try:
            probs = self.time_machine.predict(state)  # (K, H, W): a snapshot's pass if this step has one
        except BrokenModelError:  # the weights predict NaN just now: say so, and let the run (and its checks) go on
            self.prediction.update_layout({"title.text": f"prediction at step {step}: NaN"})
            return
        picture = overlay(self._preview_rgb, labels_of(probs), self.colors, 0.45)
        with self.prediction.batch():
            self.prediction.update_trace("prediction", source=png_uri(picture))
            self.prediction.update_layout({"title.text": f"prediction at step {step}"})

    def _clear_curves(self, prediction_title: str) -> None:
        with self.figure.batch():
            for name in [*CURVES, *(f"{kind} {c}" for c in self.class_names for kind in ("IoU", "Dice"))]:
                self.figure.update_trace(name, x=[], y=[])
            if self.log_scale.value:
                self._update_loss_axis()  # the empty axis's ticks
        with self.prediction.batch():
            self.prediction.update_trace("prediction", source=png_uri(self._preview_rgb))
            self.prediction.update_layout({"title.text": prediction_title})
        self.rewind.refresh()

    def _render_status(self) -> None:
        """Status line, progress bar and which buttons make sense now."""
        session = self.session
        state, history, trainer = session.state, session.history, session.trainer
        active = state in ("running", "paused", "warming up", "finding lr")
        busy = state in ("running", "paused", "finding lr")  # Stop first: a second Start would restart silently
        self.start_button.disabled = self.lr_finder_button.disabled = busy
        self.pause_button.disabled = state != "running"
        self.resume_button.disabled = state != "paused"
        self.stop_button.disabled = not active
        color = STATE_COLORS.get(state, "#525252")
        parts = [f"<b style='color:{color}'>{state}</b>"]
        parts += _sharing_note(state, trainer, session)
        if state == "finding lr":
            parts.append("a short mock training on a copy of the model, the learning rate rising each step")
        elif history is not None and history.losses:
            total = f" / {trainer.total_iters}" if trainer.total_iters else ""
            parts += [
                f"step {len(history.losses)}{total}",
                f"{history.train_seconds:.1f} s",
                f"{history.images_per_second:.0f} images/s",
                f"lr {history.lrs[-1]:.1e}" + (" (cosine: falls to 0 by the end)"
                                               if trainer.config.schedule == "cosine" else ""),
                f"loss {history.losses[-1]:.3f}",
            ]
            if history.evaluations:
                parts.append(f"val mean IoU {history.evaluations[-1].mean_iou:.3f}")
        else:
            num_params = count_parameters(session.model)
            parts.append(f"{type(session.model).__name__}, {format_count(num_params)} parameters")
            if num_params > PAPER_SIZED_PARAMETERS:
                parts.append("<span style='color:#b35806'>paper-sized: a step takes seconds or more on a CPU</span>")
        parts.append(f"on {session.device}")
        text = status_line(parts)  # wraps between parts
        if history is not None and history.status != "running" and history.message:
            message_color = "#cb181d" if history.status in ("diverged", "error") else "#333333"
            text += f"<br><span style='color:{message_color}'>{html.escape(history.message)}</span>"
        if self.lr_finder is not None and state != "finding lr":
            text += (f"<br>learning-rate finder: lowest loss at lr {self.lr_finder.min_loss_lr:.1e}, suggestion "
                     f"{self.lr_finder.suggestion:.1e} (ten times lower), now in the learning-rate control")
        self.status.value = f"<div style='font-size:13px;line-height:1.4'>{text}</div>"
        self.progress.value = trainer.progress if trainer is not None else 0.0
        self.progress.bar_style = {"completed": "success", "diverged": "danger", "error": "danger"}.get(state, "")

    # ---- controls ------------------------------------------------------------------------------------------
    def _on_lr(self, change: dict) -> None:
        if self.session.running:
            self.session.control.set_lr(change["new"])  # a flag the worker reads before its next step

    def _on_log_scale(self, _change: dict) -> None:
        self._update_loss_axis()

    def _update_loss_axis(self) -> None:
        """The loss axis: linear from 0, or log with round values (:func:`~segtutor.figures.log_ticks`) labelled at
        the axis's font size, for the range of the losses drawn."""
        if not self.log_scale.value:
            self.figure.update_layout({"yaxis.type": "linear", "yaxis.autorange": True, "yaxis.rangemode": "tozero",
                                       "yaxis.tickmode": "auto"})  # fmt: skip
            return
        drawn = [trace.get("y") or [] for trace in self.figure.data if trace.get("name") in CURVES]
        losses = [loss for ys in drawn for loss in ys if isinstance(loss, (int, float)) and 0 < loss < math.inf]
        low, high = (min(losses), max(losses)) if losses else EMPTY_LOG_RANGE
        ticks = log_ticks(low, high)
        axis = {"yaxis.type": "log", "yaxis.rangemode": "normal", "yaxis.tickmode": "array", "yaxis.tickvals": ticks,
                "yaxis.ticktext": [f"{tick:g}" for tick in ticks]}  # fmt: skip
        if losses:
            axis["yaxis.autorange"] = True
        else:  # no data to fit: show the usual range (plotly's empty log axis spans 1 … 10)
            axis.update({"yaxis.autorange": False, "yaxis.range": [math.log10(low) - 0.05, math.log10(high) + 0.05]})
        self.figure.update_layout(axis)


def _sharing_note(state: str, trainer, session) -> list[str]:
    """What the status says while a run shares the machine's cores with other learners' runs (CpuShare)."""
    if state != "running" or trainer is None or session.cpu_share is None or not session.cpu_share.enabled:
        return []
    cores, runs = session.cpu_share.slots, trainer.state.runs_sharing
    share = f"{runs} runs share {cores} core{'s' if cores > 1 else ''}"
    if trainer.state.waiting_ahead is not None:
        ahead = trainer.state.waiting_ahead
        return [f"<span style='color:#6a51a3'>waiting for a free core — {ahead} ahead ({share})</span>"]
    return [share] if runs > 1 else []
