"""The training dashboard: Start, Pause, Resume, Stop, and watch the loss fall while the page stays responsive.

The run itself lives in a :class:`~segtutor.widgets.session.TrainingSession` (a worker thread, no widgets). The
dashboard is its view: the buttons only set flags and return, and the dashboard's :class:`RunListener` hooks,
which run in the worker thread, redraw the curves, the status line and the preview at most every
``draw_every_s`` seconds (5 times a second by default). So while a run is active every widget write happens in
that one thread; before the first run and after the last one the kernel's thread draws.

Curves change in place (:meth:`LiveFigure.update_trace`), one small patch per redraw: no clear-and-redraw.
"""

from __future__ import annotations

import html
import math
import threading
import time
from collections.abc import Sequence

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from torch import nn
from torch.utils.data import Dataset

from segtutor.data import class_colors
from segtutor.predict import overlay
from segtutor.train import TrainConfig
from segtutor.widgets.diagram import format_count
from segtutor.widgets.figures import LiveFigure
from segtutor.widgets.pictures import as_rgb, image_trace, png_uri
from segtutor.widgets.session import RunListener, TrainingSession
from segtutor.widgets.theme import style

WARM_UP_DELAY_S = 3.0  # the warm-up waits this long (or for Start), leaving the CPU to drawing the page
SMOOTHING = 0.9  # weight of the past in the smoothed training loss (an exponential moving average)
TRAIN_COLOR, SMOOTH_COLOR, VAL_COLOR = "#9ecae1", "#08519c", "#6a3d9a"
STATE_COLORS = {"running": "#238b45", "paused": "#b35806", "warming up": "#6a51a3", "completed": "#08519c",
                "stopped": "#525252", "diverged": "#cb181d", "error": "#cb181d", "idle": "#525252"}  # fmt: skip


def smooth(values: Sequence[float], weight: float = SMOOTHING) -> list[float]:
    """Exponential moving average with bias correction, as TensorBoard smooths a loss curve.

    ``s[i] = weight * s[i-1] + (1 - weight) * values[i]``, divided by ``1 - weight**(i+1)`` so the first
    points are not pulled towards 0. NaN values are skipped (they keep the previous average).
    """
    smoothed, average, count = [], 0.0, 0
    for value in values:
        if math.isfinite(value):
            average = weight * average + (1 - weight) * value
            count += 1
        smoothed.append(average / (1 - weight**count) if count else math.nan)
    return smoothed


def curves_figure(class_names: Sequence[str], colors: Sequence[Sequence[int]], image: np.ndarray,
                  truth: np.ndarray) -> go.Figure:  # fmt: skip
    """The dashboard's figure: loss curves, IoU/Dice curves, and the preview tile's truth and prediction.

    Traces: 0 training loss, 1 smoothed training loss, 2 validation loss, then IoU and Dice of each class, then
    the two pictures (truth, prediction). :data:`TrainingDashboard` updates them in place.
    """
    figure = make_subplots(
        rows=2, cols=3, specs=[[{"rowspan": 2}, {"rowspan": 2}, {}], [None, None, {}]],
        column_widths=[0.41, 0.36, 0.23], horizontal_spacing=0.07, vertical_spacing=0.12,
        subplot_titles=("loss (lower is better)", "validation IoU and Dice", "truth", "prediction: press Start"),
    )  # fmt: skip
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
    figure.add_trace(image_trace(truth, "truth"), 1, 3)
    figure.add_trace(image_trace(image, "prediction"), 2, 3)
    figure.update_xaxes(title_text="step", row=1, col=1)
    figure.update_xaxes(title_text="step", matches="x", row=1, col=2)  # both panels show the same steps
    figure.update_yaxes(rangemode="tozero", row=1, col=1)
    figure.update_yaxes(range=[0, 1.02], row=1, col=2)
    for row in (1, 2):
        figure.update_xaxes(visible=False, row=row, col=3)
        figure.update_yaxes(visible=False, row=row, col=3)
    style(figure, width=1120, height=430, margin=dict(l=50, r=10, t=40, b=40), uirevision="keep zoom",
          legend=dict(orientation="h", x=0, y=-0.14, font=dict(size=11)))  # fmt: skip
    for annotation in figure.layout.annotations:
        annotation.font.size = 13
    return figure


class TrainingDashboard(widgets.VBox, RunListener):
    """Train a model live: Start, Pause, Resume, Stop; learning rate, optimizer, batch size and budget; live curves.

    Args:
        model: the network to train (in place); "from scratch" always restarts from its weights of now.
        train_data: ``Dataset`` of ``(image (C, H, W) float, mask (H, W) int64)``.
        val_data: the same for the validation curves and the live preview (sample ``preview_index``).
        class_names: one per class; default ``train_data.class_names``.
        lr, optimizer, batch_size, budget, budget_unit, schedule: the controls' first values
            (``budget_unit`` is ``"seconds"`` or ``"iterations"``).
        eval_every: evaluate on ``val_data`` every this many steps.
        preview_every_s: seconds between two live previews of the prediction.
        draw_every_s: seconds between two redraws of curves and status (0.2: at most 5 per second).
        device: where to train (None: ``segtutor.default_device()``).
        seed: seeds the data order.
        warm_up: run one throw-away step in the background now (the first step of a fresh kernel is slow).

    Python API (what the buttons call): :meth:`start`, :meth:`pause`, :meth:`resume`, :meth:`stop`, :meth:`join`;
    ``dashboard.lr.value = 1e-4`` changes the learning rate of the running training.

    Example:
        >>> dashboard = TrainingDashboard(create_model("unet", size="tiny"), train_data, val_data, budget=20)
        >>> dashboard            # shows it; then press Start (or call dashboard.start())
    """

    def __init__(
        self,
        model: nn.Module,
        train_data: Dataset,
        val_data: Dataset,
        *,
        class_names: Sequence[str] | None = None,
        lr: float = 1e-3,
        optimizer: str = "adam",
        batch_size: int = 8,
        budget: float = 30,
        budget_unit: str = "seconds",
        schedule: str = "cosine",
        eval_every: int = 20,
        preview_index: int = 0,
        preview_every_s: float = 1.0,
        draw_every_s: float = 0.2,
        device: str | None = None,
        seed: int = 0,
        warm_up: bool = True,
    ) -> None:
        if budget_unit not in ("seconds", "iterations"):
            raise ValueError(f"budget_unit must be 'seconds' or 'iterations', got {budget_unit!r}")
        self.session = TrainingSession(model, train_data, val_data, class_names=class_names,
                                       preview_index=preview_index, warm_up=warm_up,
                                       warm_up_delay=WARM_UP_DELAY_S)  # fmt: skip
        self.session.listeners.append(self)
        self.eval_every = eval_every
        self.preview_every_s = preview_every_s
        self.draw_every_s = draw_every_s
        self.device = device
        self.seed = seed
        self.class_names = self.session.class_names
        self.colors = getattr(train_data, "class_colors", None) or class_colors(self.class_names)
        self._figure_lock = threading.RLock()  # one writer of the figure at a time (worker or kernel thread)
        self._last_draw = self._last_preview = -math.inf

        # 1) controls
        button = dict(layout=widgets.Layout(width="105px"))
        self.start_button = widgets.Button(description="▶ Start", button_style="success", **button,
                                           tooltip="train from the initial weights (or go on, if ticked below)")
        self.pause_button = widgets.Button(description="‖ Pause", disabled=True, **button)
        self.resume_button = widgets.Button(description="▷ Resume", disabled=True, **button)
        self.stop_button = widgets.Button(description="■ Stop", button_style="danger", disabled=True, **button)
        self.lr = widgets.FloatLogSlider(value=lr, base=10, min=-5, max=0, step=0.1, description="learning rate",
                                         readout_format=".1e", continuous_update=False,
                                         style={"description_width": "90px"})  # fmt: skip
        self.optimizer = widgets.ToggleButtons(options=[("Adam", "adam"), ("SGD", "sgd")], value=optimizer,
                                               style={"button_width": "60px"})  # fmt: skip
        self.batch_size = widgets.Dropdown(options=[2, 4, 8, 16, 32], value=batch_size, description="batch size",
                                           layout=widgets.Layout(width="170px"))  # fmt: skip
        self.budget = widgets.BoundedFloatText(value=budget, min=1, max=100_000, description="budget",
                                               layout=widgets.Layout(width="170px"))  # fmt: skip
        self.budget_unit = widgets.ToggleButtons(options=["seconds", "iterations"], value=budget_unit,
                                                 style={"button_width": "80px"})  # fmt: skip
        self.schedule = widgets.ToggleButtons(
            options=["cosine", "constant"], value=schedule, style={"button_width": "75px"},
            tooltips=["lr falls to 0 over the budget", "the same lr throughout"],
        )  # fmt: skip
        self.log_scale = widgets.Checkbox(value=False, description="log-scale loss", indent=False,
                                          layout=widgets.Layout(width="130px"))  # fmt: skip
        self.keep_weights = widgets.Checkbox(value=False, description="continue from the current weights",
                                             indent=False)  # fmt: skip
        self.status = widgets.HTML()
        self.status.add_class("segtutor-training-status")
        self.progress = widgets.FloatProgress(value=0, min=0, max=1, layout=widgets.Layout(width="100%"))
        self.errors = widgets.Output()

        # 2) the figure: curves and preview
        image, mask = self.session.preview_sample()
        self._preview_rgb = as_rgb(image)
        self.figure = LiveFigure(curves_figure(self.class_names, self.colors, self._preview_rgb,
                                               overlay(image, mask, self.colors, 0.45)))  # fmt: skip
        self.figure.add_class("segtutor-training-curves")
        self._titles = [dict(annotation) for annotation in self.figure.layout["annotations"]]
        self._iou_trace = 3  # first IoU trace; Dice follows each IoU
        self._prediction_trace = 3 + 2 * len(self.class_names) + 1

        # 3) wiring: buttons only call methods that set flags and return
        self.start_button.on_click(lambda _: self.start())
        self.pause_button.on_click(lambda _: self.pause())
        self.resume_button.on_click(lambda _: self.resume())
        self.stop_button.on_click(lambda _: self.stop())
        self.lr.observe(self._on_lr, names="value")
        self.log_scale.observe(self._on_log_scale, names="value")
        self._render_status()
        super().__init__([
            widgets.HBox([self.start_button, self.pause_button, self.resume_button, self.stop_button, self.status],
                         layout=widgets.Layout(align_items="center")),
            widgets.HBox([self.lr, _label("optimizer"), self.optimizer, self.batch_size]),
            widgets.HBox([self.budget, self.budget_unit, _label("lr schedule"), self.schedule]),
            widgets.HBox([self.log_scale, self.keep_weights]),
            self.progress, self.figure, self.errors,
        ])  # fmt: skip

    # ---- the Python API (what the buttons do) --------------------------------------------------------------
    def config(self) -> TrainConfig:
        """The :class:`TrainConfig` the controls describe now."""
        budget = {"max_seconds": float(self.budget.value)} if self.budget_unit.value == "seconds" else \
            {"max_iters": int(self.budget.value)}  # fmt: skip
        return TrainConfig(lr=self.lr.value, optimizer=self.optimizer.value, batch_size=self.batch_size.value,
                           schedule=self.schedule.value, eval_every=self.eval_every, seed=self.seed,
                           device=self.device, **budget)  # fmt: skip

    def start(self) -> None:
        """Stop the current run (if any) and train with the controls' settings in a worker thread."""
        try:
            self.session.stop()
            self.session.join(timeout=30)
            config = self.config()
            if len(self.session.train_data) < config.batch_size:
                raise ValueError(f"batch size {config.batch_size} is larger than the {len(self.session.train_data)} "
                                 "training tiles: pick a smaller batch size")  # fmt: skip
            self.session.start(config, from_scratch=not self.keep_weights.value)
        except (ValueError, RuntimeError) as error:
            self.errors.append_stderr(f"{error}\n")

    def pause(self) -> None:
        """Pause after the step in progress."""
        self.session.pause()

    def resume(self) -> None:
        """Go on after a pause."""
        self.session.resume()

    def stop(self) -> None:
        """End the run after the step in progress (model and history are kept)."""
        self.session.stop()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the run to end (at most ``timeout`` seconds); True if it has."""
        return self.session.join(timeout)

    def set_model(self, model: nn.Module) -> None:
        """Train ``model`` from now on (stops the current run): what the model picker calls."""
        self.session.set_model(model)
        with self._figure_lock:
            self._clear_curves("prediction: press Start")
            self._render_status()

    @property
    def model(self) -> nn.Module:
        """The model being trained (or trained last)."""
        return self.session.model

    @property
    def history(self):
        """The latest run's :class:`~segtutor.train.History` (None before the first run)."""
        return self.session.history

    # ---- RunListener hooks: these run in the worker thread -------------------------------------------------
    def on_run_start(self, session: TrainingSession) -> None:
        self._last_draw = self._last_preview = -math.inf
        with self._figure_lock:
            self._clear_curves("prediction: waiting for the first steps")
            self.errors.outputs = ()
            self._render_status()

    def on_step(self, session: TrainingSession) -> None:
        now = time.perf_counter()
        if now - self._last_draw < self.draw_every_s:
            return
        self._last_draw = now
        preview = now - self._last_preview >= self.preview_every_s
        if preview:
            self._last_preview = now
        self._draw(preview=preview)

    def on_wait(self, session: TrainingSession) -> None:
        self._render_status()

    def on_run_end(self, session: TrainingSession) -> None:
        self._draw(preview=session.trainer is not None and bool(session.history.losses))
        if session.error_text:
            self.errors.append_stderr(session.error_text)

    # ---- drawing -------------------------------------------------------------------------------------------
    def _draw(self, *, preview: bool) -> None:
        history = self.session.history
        losses = history.losses
        with self._figure_lock, self.figure.batch():
            steps = list(range(1, len(losses) + 1))
            self.figure.update_trace(0, x=steps, y=losses)
            self.figure.update_trace(1, x=steps, y=smooth(losses))
            self.figure.update_trace(2, x=history.val_iterations, y=history.val_losses)
            for c in range(len(self.class_names)):
                self.figure.update_trace(self._iou_trace + 2 * c, x=history.val_iterations, y=history.val_iou(c))
                self.figure.update_trace(self._iou_trace + 2 * c + 1, x=history.val_iterations, y=history.val_dice(c))
            if preview:
                probs = self.session.predict_preview()  # (K, H, W)
                image, _ = self.session.preview_sample()
                picture = overlay(image, probs.argmax(0), self.colors, 0.45)
                self.figure.update_trace(self._prediction_trace, source=png_uri(picture))
                self._set_title(3, f"prediction at step {len(losses)}")
        self._render_status()

    def _clear_curves(self, prediction_title: str) -> None:
        with self.figure.batch():
            for index in range(self._prediction_trace - 1):
                self.figure.update_trace(index, x=[], y=[])
            self.figure.update_trace(self._prediction_trace, source=png_uri(self._preview_rgb))
            self._set_title(3, prediction_title)

    def _set_title(self, index: int, text: str) -> None:
        self._titles[index] = {**self._titles[index], "text": text}
        self.figure.update_layout(annotations=self._titles)

    def _render_status(self) -> None:
        """Status line, progress bar and which buttons make sense now."""
        session = self.session
        state, history, trainer = session.state, session.history, session.trainer
        active = state in ("running", "paused", "warming up")
        self.pause_button.disabled = state != "running"
        self.resume_button.disabled = state != "paused"
        self.stop_button.disabled = not active
        color = STATE_COLORS.get(state, "#525252")
        parts = [f"<b style='color:{color}'>{state}</b>"]
        if history is not None and history.losses:
            total = f" / {trainer.total_iters}" if trainer is not None and trainer.total_iters else ""
            parts += [
                f"step {len(history.losses)}{total}",
                f"{history.train_seconds:.1f} s",
                f"{history.images_per_second:.0f} images/s",
                f"lr {history.lrs[-1]:.1e}",
                f"loss {history.losses[-1]:.3f}",
            ]
            if history.evaluations:
                last = history.evaluations[-1]
                parts.append(f"val mean IoU {last.mean_iou:.3f}")
        else:
            num_params = _num_params(session.model)
            parts.append(f"{type(session.model).__name__}, {format_count(num_params)} parameters")
            if num_params > 5_000_000:
                parts.append("<span style='color:#b35806'>paper-sized: a step takes seconds or more on a CPU</span>")
        parts.append(f"on {session.device}")
        text = " · ".join(parts)
        if history is not None and history.status != "running" and history.message:
            message_color = "#cb181d" if history.status in ("diverged", "error") else "#333333"
            text += f"<br><span style='color:{message_color}'>{html.escape(history.message)}</span>"
        self.status.value = f"<div style='font-size:13px;line-height:1.4'>{text}</div>"
        self.progress.value = trainer.progress if trainer is not None else 0.0
        self.progress.bar_style = {"completed": "success", "diverged": "danger", "error": "danger"}.get(state, "")

    # ---- controls ------------------------------------------------------------------------------------------
    def _on_lr(self, change: dict) -> None:
        if self.session.running:
            self.session.set_lr(change["new"])  # a flag the worker reads before its next step

    def _on_log_scale(self, change: dict) -> None:
        log = change["new"]
        with self._figure_lock:  # the worker may be redrawing
            self.figure.update_layout({"yaxis.type": "log" if log else "linear", "yaxis.autorange": True,
                                       "yaxis.rangemode": "normal" if log else "tozero"})  # fmt: skip


def _label(text: str) -> widgets.Label:
    """A label in front of a control whose own description would wrap onto a line of its own."""
    return widgets.Label(text, layout=widgets.Layout(margin="0 4px 0 24px"))


def _num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
