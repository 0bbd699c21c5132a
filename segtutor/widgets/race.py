"""The architecture race: UNet, FCN-8s and DeepLabv3 trained with the same budget on the same data, side by side.

Each model trains in turn in one worker thread (on a 2-core laptop, running them at the same time would only
make each slower), with the same :class:`~segtutor.train.TrainConfig`, the same data order and the same
validation tiles. Afterwards a table compares what a learner weighs when choosing: size (parameters), cost (FLOPs
per image, time per training step), and quality (IoU and Dice, and the boundary F-score, which looks only at the
outlines; see :mod:`segtutor.metrics.boundary`).
"""

from __future__ import annotations

import copy
import html
import math
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from torch import nn
from torch.utils.data import Dataset

from segtutor.metrics import BoundaryScores, boundary_scores
from segtutor.models import count_parameters, forward_flops, list_models
from segtutor.predict import predict
from segtutor.train import History, TrainConfig, TrainingControl
from segtutor.widgets.diagram import format_count
from segtutor.widgets.figures import LiveFigure
from segtutor.widgets.model_picker import MODEL_LABELS, build_model
from segtutor.widgets.session import RunListener, TrainingSession, warm_up_step
from segtutor.widgets.theme import style
from segtutor.widgets.training import smooth

RACE_COLORS = {"unet": "#1b9e77", "fcn8s": "#d95f02", "deeplabv3": "#7570b3"}  # one colour per architecture


@dataclass(frozen=True)
class RaceResult:
    """One architecture's line in the race table."""

    model_name: str  # registry name, e.g. "unet"
    size: str  # e.g. "small"
    num_params: int  # parameters
    flops: int  # FLOPs of one forward pass on one tile
    iterations: int  # optimizer steps done within the budget
    seconds_per_iteration: float  # median time of one training step
    mean_iou: float  # mean IoU over the classes, at the final evaluation
    mean_dice: float  # mean Dice over the classes, at the final evaluation
    boundary: BoundaryScores  # outline precision, recall and F-score per class on the validation tiles
    history: History  # every number of the run
    status: str  # how the run ended: "completed", "stopped", "diverged", "error"


def seconds_per_iteration(history: History) -> float:
    """Median duration of one training step (robust to the odd slow step), NaN before two steps."""
    if len(history.seconds) < 2:
        return math.nan
    return statistics.median(np.diff(history.seconds).tolist())


@torch.no_grad()
def evaluate_boundaries(
    model: nn.Module, dataset: Dataset, num_classes: int, *, tolerance: float = 2.0
) -> BoundaryScores:
    """Boundary scores of ``model``'s predictions over every ``(image, mask)`` of ``dataset``."""
    masks, preds = [], []
    for index in range(len(dataset)):
        image, mask = dataset[index]
        masks.append(mask)
        preds.append(predict(model, image))
    return boundary_scores(torch.stack(masks), torch.stack(preds), num_classes, tolerance=tolerance)


def race_figure(model_names: Sequence[str]) -> go.Figure:
    """Two panels against training time: smoothed training loss, and validation mean IoU; one colour per model."""
    figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.08,
                           subplot_titles=("training loss (smoothed)", "validation mean IoU"))  # fmt: skip
    for name in model_names:
        label, color = MODEL_LABELS.get(name, name), RACE_COLORS.get(name, "#333333")
        common = dict(x=[], y=[], name=label, legendgroup=name, line=dict(color=color, width=2))
        figure.add_trace(go.Scatter(mode="lines", hovertemplate=f"{label}<br>%{{x:.1f}} s: %{{y:.4f}}<extra></extra>",
                                    **common), 1, 1)  # fmt: skip
        iou_hover = f"{label}<br>%{{x:.1f}} s: IoU %{{y:.3f}}<extra></extra>"
        figure.add_trace(go.Scatter(mode="lines+markers", showlegend=False, hovertemplate=iou_hover, **common), 1, 2)
    figure.update_xaxes(title_text="training time (s)")
    figure.update_yaxes(rangemode="tozero", row=1, col=1)
    figure.update_yaxes(range=[0, 1.02], row=1, col=2)
    return style(figure, width=1120, height=380, margin=dict(l=50, r=10, t=40, b=70), uirevision="keep zoom",
                 legend=dict(orientation="h", x=0.5, xanchor="center", y=-0.2))  # fmt: skip


class ArchitectureRace(widgets.VBox, RunListener):
    """Train every architecture with the same budget on the same data; curves side by side and a table.

    Args:
        train_data, val_data: ``(image (C, H, W), mask (H, W))`` datasets shared by every model.
        class_names: one per class; default ``train_data.class_names``.
        models: registry names to race, in order.
        size: the size of every model (``"tiny"``, ``"small"``, ...).
        budget, budget_unit: the same budget for each (``"seconds"`` or ``"iterations"``).
        lr, batch_size, eval_every: the shared training settings (Adam, cosine schedule).
        tolerance: pixels an outline may be off in the boundary F-score.
        device: where to train (None: ``segtutor.default_device()``).
        seed: the same initial-weight seed and data order for every model.

    Python API: :meth:`start`, :meth:`stop`, :meth:`join`; :attr:`results` fills in as each model finishes.
    """

    def __init__(
        self,
        train_data: Dataset,
        val_data: Dataset,
        *,
        class_names: Sequence[str] | None = None,
        models: Sequence[str] = tuple(list_models()),
        size: str = "small",
        budget: float = 20,
        budget_unit: str = "seconds",
        lr: float = 1e-3,
        batch_size: int = 8,
        eval_every: int = 20,
        tolerance: float = 2.0,
        device: str | None = None,
        seed: int = 0,
        draw_every_s: float = 0.2,
    ) -> None:
        names = class_names if class_names is not None else getattr(train_data, "class_names", None)
        if names is None:
            raise ValueError("give class_names, e.g. ['stroma', 'tumor'] (train_data has no .class_names)")
        unknown = [name for name in models if name not in list_models()]
        if unknown:
            raise ValueError(f"unknown models {unknown}; available options are: {', '.join(list_models())}")
        self.train_data, self.val_data = train_data, val_data
        self.class_names = list(names)
        self.models = list(models)
        self.lr, self.eval_every, self.tolerance = lr, eval_every, tolerance
        self.device, self.seed, self.draw_every_s = device, seed, draw_every_s
        self.results: list[RaceResult] = []
        self.current: str | None = None  # the model training now
        self._session: TrainingSession | None = None
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._figure_lock = threading.RLock()
        self._last_draw = -math.inf

        self.size = widgets.ToggleButtons(options=["tiny", "small", "medium"], value=size,
                                          style={"button_width": "70px"})  # fmt: skip
        self.budget = widgets.BoundedFloatText(value=budget, min=1, max=100_000, description="budget each",
                                               layout=widgets.Layout(width="190px"),
                                               style={"description_width": "90px"})  # fmt: skip
        self.budget_unit = widgets.ToggleButtons(options=["seconds", "iterations"], value=budget_unit,
                                                 style={"button_width": "80px"})  # fmt: skip
        self.batch_size = widgets.Dropdown(options=[2, 4, 8, 16], value=batch_size, description="batch size",
                                           layout=widgets.Layout(width="170px"))  # fmt: skip
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
            widgets.HBox([self.start_button, self.stop_button, self.status],
                         layout=widgets.Layout(align_items="center")),
            widgets.HBox([widgets.Label("size", layout=widgets.Layout(width="90px")), self.size, self.batch_size]),
            widgets.HBox([self.budget, self.budget_unit]),
            self.figure, self.table, self.errors,
        ])  # fmt: skip
        self.add_class("segtutor-race-panel")

    # ---- Python API ----------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while the race's worker thread trains."""
        return self._worker is not None and self._worker.is_alive()

    def config(self) -> TrainConfig:
        """The settings every model trains with."""
        budget = {"max_seconds": float(self.budget.value)} if self.budget_unit.value == "seconds" else \
            {"max_iters": int(self.budget.value)}  # fmt: skip
        return TrainConfig(lr=self.lr, batch_size=self.batch_size.value, eval_every=self.eval_every, seed=self.seed,
                           device=self.device, **budget)  # fmt: skip

    def start(self) -> None:
        """Stop a race in progress, then race every model in a worker thread."""
        self.stop()
        if not self.join(timeout=30):
            self.errors.append_stderr("the previous race is still finishing a step; try again in a moment\n")
            return
        self._stop = threading.Event()
        self.results = []
        config = self.config()
        with self._figure_lock, self.figure.batch():
            for index in range(2 * len(self.models)):
                self.figure.update_trace(index, x=[], y=[])
        self._worker = threading.Thread(target=self._race, args=(config, self.size.value, self._stop),
                                        name="segtutor-race", daemon=True)  # fmt: skip
        self._worker.start()

    def stop(self) -> None:
        """End the race after the step in progress (models already finished keep their line in the table)."""
        self._stop.set()
        if self._session is not None:
            self._session.stop()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the race to end (at most ``timeout`` seconds); True if it has."""
        if self._worker is not None:
            self._worker.join(timeout)
        return not self.running

    # ---- the worker ----------------------------------------------------------------------------------------
    def _race(self, config: TrainConfig, size: str, stop: threading.Event) -> None:
        try:
            tile = tuple(self.val_data[0][0].shape)  # (C, H, W)
            for name in self.models:
                if stop.is_set():
                    break
                self.current = name
                model = build_model(name, size, in_channels=tile[0], num_classes=len(self.class_names),
                                    seed=self.seed)  # fmt: skip
                session = TrainingSession(model, self.train_data, self.val_data, class_names=self.class_names,
                                          warm_up=False)  # fmt: skip
                session.listeners.append(self)
                self._session = session
                self._render()
                # the same start for everyone: one throw-away step builds this model's kernels
                batch = [self.val_data[i % len(self.val_data)] for i in range(max(config.batch_size, 2))]
                warm_up_step(copy.deepcopy(model).to(session.device), batch)
                if stop.is_set():
                    break
                history = session.run(config, TrainingControl())
                if history.status == "stopped" and not stop.is_set():
                    stop.set()  # another training started (one run per kernel): the race ends here
                if session.error_text:
                    self.errors.append_stderr(f"{MODEL_LABELS.get(name, name)}: {session.error_text}\n")
                self.results.append(self._result(name, size, session, history, tile))
                self._draw(name, session)
                self._render()
        except Exception as error:  # noqa: BLE001 (shown in the widget, never lost in the thread)
            self.errors.append_stderr(f"the race stopped: {type(error).__name__}: {error}\n")
        finally:
            self.current, self._session = None, None
            self._render(final=True)

    def _result(self, name: str, size: str, session: TrainingSession, history: History, tile: tuple) -> RaceResult:
        last = history.evaluations[-1] if history.evaluations else None
        dice = [value for value in last.dice if value == value] if last is not None else []
        return RaceResult(
            model_name=name,
            size=size,
            num_params=count_parameters(session.model),
            flops=forward_flops(session.model, tile),
            iterations=len(history.losses),
            seconds_per_iteration=seconds_per_iteration(history),
            mean_iou=last.mean_iou if last is not None else math.nan,
            mean_dice=float(np.mean(dice)) if dice else math.nan,
            boundary=evaluate_boundaries(session.model, self.val_data, len(self.class_names), tolerance=self.tolerance),
            history=history,
            status=history.status,
        )

    # ---- RunListener hooks (worker thread) -----------------------------------------------------------------
    def on_step(self, session: TrainingSession) -> None:
        now = time.perf_counter()
        if now - self._last_draw >= self.draw_every_s:
            self._last_draw = now
            self._draw(self.current, session)
            self._render()

    def on_run_end(self, session: TrainingSession) -> None:
        self._draw(self.current, session)

    # ---- drawing -------------------------------------------------------------------------------------------
    def _draw(self, name: str | None, session: TrainingSession) -> None:
        if name is None or session.history is None:
            return
        history, index = session.history, self.models.index(name)
        with self._figure_lock, self.figure.batch():
            self.figure.update_trace(2 * index, x=history.seconds, y=smooth(history.losses))
            self.figure.update_trace(2 * index + 1, x=[e.seconds for e in history.evaluations],
                                     y=[e.mean_iou for e in history.evaluations])  # fmt: skip

    def _render(self, *, final: bool = False) -> None:
        """Status line, buttons and the table."""
        running = not final
        self.stop_button.disabled = not running
        if running and self.current is not None:
            session = self._session
            steps = len(session.history.losses) if session is not None and session.history is not None else 0
            done = len(self.results)
            self.status.value = (f"<b style='color:#238b45'>racing</b> · {MODEL_LABELS.get(self.current)} "
                                 f"({done + 1} of {len(self.models)}) · step {steps}")  # fmt: skip
        elif self.results:
            self.status.value = f"<b>finished</b> · {len(self.results)} of {len(self.models)} models trained"
        else:
            self.status.value = "every model gets the same budget, data, seed and settings"
        self.table.value = _table_html(self.results, self.tolerance)


def _table_html(results: Sequence[RaceResult], tolerance: float) -> str:
    if not results:
        return ""
    head = ("<tr><th style='text-align:left'>model</th><th>parameters</th><th>FLOPs per tile</th>"
            "<th>ms per step</th><th>steps</th><th>mean IoU</th><th>mean Dice</th>"
            f"<th>boundary F ({tolerance:g} px)</th><th>ended</th></tr>")  # fmt: skip
    best_iou = max((r.mean_iou for r in results if r.mean_iou == r.mean_iou), default=math.nan)
    rows = []
    for r in results:
        label = MODEL_LABELS.get(r.model_name, r.model_name)
        color = RACE_COLORS.get(r.model_name, "#333333")
        iou = f"<b>{r.mean_iou:.3f}</b>" if r.mean_iou == best_iou else f"{r.mean_iou:.3f}"
        rows.append(
            f"<tr><td style='text-align:left'><b style='color:{color}'>{html.escape(label)}</b> ({r.size})</td>"
            f"<td>{format_count(r.num_params)}</td><td>{format_count(r.flops)}</td>"
            f"<td>{1000 * r.seconds_per_iteration:.0f}</td><td>{r.iterations}</td><td>{iou}</td>"
            f"<td>{r.mean_dice:.3f}</td><td>{r.boundary.mean_f_score:.3f}</td><td>{r.status}</td></tr>"
        )
    note = ("<div style='font-size:12px;color:#555'>boundary F: share of outline pixels within "
            f"{tolerance:g} px of the true outline (1 = every edge in place); IoU and Dice count all "
            "pixels.</div>")  # fmt: skip
    return f"<table style='font-size:13px;text-align:right'>{head}{''.join(rows)}</table>{note}"
