"""Uncertainty-guided annotation, interactively: where is the model unsure, label there, train on, and did it help?

The view over :mod:`segtutor.train.active`: an :class:`~segtutor.train.ActiveLearner` trains a model on two annotated
tiles; the viewer shows a pool tile with what is labelled, the model's uncertainty on it (entropy or margin of the
softmax) and its prediction, with the patches it proposes to annotate next outlined. "Annotate and train on" lets
the simulated annotator reveal the generated tissue's true mask in those patches (click a patch to add or remove it
first: your choice beats the model's), then trains on from the same weights. The curve plots the validation tumor
IoU against the pixels annotated; "compare with random" runs uncertainty-chosen against randomly chosen patches
over three seeds (:func:`~segtutor.train.compare_strategies`) and says which came out ahead on this data.

Training runs in a worker thread (:func:`~segtutor.train.run_in_background`: one run per kernel, so it stops the
training dashboard's run); the buttons only start it.
"""

from __future__ import annotations

import html
import math
import statistics
from collections.abc import Sequence

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from torch import nn
from torch.utils.data import Dataset, Subset

from segtutor.data import class_colors, class_names_of
from segtutor.figures import image_trace, png_uri, probability_picture, style
from segtutor.models import create_model
from segtutor.predict import image_to_rgb, overlay, predict_proba
from segtutor.train import (
    UNCERTAINTY_MEASURES,
    ActiveLearner,
    ActiveRound,
    AnnotationPool,
    CpuShare,
    Patch,
    TrainConfig,
    TrainingControl,
    compare_strategies,
    run_in_background,
)
from segtutor.widgets.controls import report_errors, row
from segtutor.widgets.live_figure import Click, LiveFigure

PROPOSED, LABELLED = "#ff7f00", "#1b9e77"  # outline colours of proposed and labelled patches
CURVES = {"your rounds": "#1f78b4", "uncertainty (3 seeds)": "#e31a1c", "random (3 seeds)": "#7f7f7f"}


def annotation_figure(blank: np.ndarray) -> go.Figure:
    """The viewer's figure: the tile with its labels, the uncertainty, the prediction, and IoU against pixels.

    Traces, by name: "labels", "uncertainty", "prediction" (pictures), then one line per entry of :data:`CURVES`.
    """
    figure = make_subplots(rows=1, cols=4, column_widths=[0.22, 0.22, 0.22, 0.34], horizontal_spacing=0.04,
                           subplot_titles=("labels so far<br>(outlined:<br>proposed)", "uncertainty", "prediction",
                                           "validation tumor IoU"))  # fmt: skip
    for col, name in enumerate(("labels", "uncertainty", "prediction"), start=1):
        figure.add_trace(image_trace(blank, name), 1, col)
        suffix = "" if col == 1 else str(col)
        figure.update_layout({f"xaxis{suffix}": dict(visible=False, constrain="domain"),
                              f"yaxis{suffix}": dict(visible=False, autorange="reversed", constrain="domain",
                                                     scaleanchor=f"x{suffix}")})  # fmt: skip
    for name, color in CURVES.items():
        figure.add_trace(go.Scatter(x=[], y=[], mode="lines+markers", name=name, line=dict(color=color, width=2),
                                    hovertemplate="%{x:,} pixels: IoU %{y:.3f}<extra></extra>"), 1, 4)  # fmt: skip
    figure.update_xaxes(title_text="pixels annotated", row=1, col=4)
    figure.update_yaxes(range=[0, 1], row=1, col=4)
    style(figure, width=1120, height=350, margin=dict(l=10, r=10, t=60, b=40),
          legend=dict(orientation="h", x=0.66, y=-0.2, font=dict(size=11)))  # fmt: skip
    for annotation in figure.layout.annotations:
        annotation.font.size = 13
    return figure


class AnnotationViewer(widgets.VBox):
    """Train on a few annotated tiles, see where the model is unsure, annotate there, train on; compare with random.

    Args:
        train_data: the pool of tiles to annotate: the first ``pool_size`` samples (they must know their true mask).
        val_data: tiles to score each round on.
        config: each round's training; default ``TrainConfig(lr=3e-3, max_iters=40, batch_size=8)``.
        model: the architecture to train, ``"unet"``, ``"fcn8s"`` or ``"deeplabv3"``, built afresh for each start
            (and for each seed of the comparison).
        size: its size.
        class_names: one per class; default ``train_data.class_names``.
        pool_size: tiles in the pool.
        patch_size: side of the patches the annotator labels; default a quarter of the tiles' side.
        patches_per_round: patches proposed per round.
        first_tiles: the tiles annotated whole before the first training.
        cpu_share: every round takes turns for the machine's cores with the runs of other kernels
            (:class:`~segtutor.train.CpuShare`); None: no turns.

    Python API (what the buttons call): :meth:`start`, :meth:`propose`, :meth:`annotate`, :meth:`compare`,
    :meth:`join`; ``viewer.learner`` holds the rounds, ``viewer.proposals`` the patches outlined.

    Example:
        >>> viewer = AnnotationViewer(TissueDataset(16, 64), TissueDataset(8, 64, seed=1), model="unet", size="tiny")
        >>> viewer.start(); viewer.join(); viewer.annotate(); viewer.join()
    """

    def __init__(
        self,
        train_data: Dataset,
        val_data: Dataset,
        config: TrainConfig | None = None,
        *,
        model: str = "unet",
        size: str = "tiny",
        class_names: Sequence[str] | None = None,
        pool_size: int = 16,
        patch_size: int | None = None,
        patches_per_round: int = 8,
        first_tiles: Sequence[int] = (0, 1),
        cpu_share: CpuShare | None = None,
    ) -> None:
        self.class_names = class_names_of(train_data, class_names)
        self.colors = getattr(train_data, "class_colors", None) or class_colors(self.class_names)
        self.pool_data = Subset(train_data, range(min(pool_size, len(train_data))))
        self.pool_data.class_names = self.class_names
        self.val_data = val_data
        self.config = config if config is not None else TrainConfig(lr=3e-3, max_iters=40, batch_size=8)
        self.model_name, self.size = model, size
        image, _ = train_data[0]
        self.in_channels, tile_side = int(image.shape[0]), int(min(image.shape[-2:]))
        self.patch_size = patch_size if patch_size is not None else tile_side // 4
        self.patches_per_round, self.first_tiles = patches_per_round, list(first_tiles)
        self.proposals: list[Patch] = []
        self.cpu_share = cpu_share  # every round takes turns for the machine's cores with other learners' runs
        self.comparison: dict[str, list[list[ActiveRound]]] | None = None
        self.control = TrainingControl()
        self._thread = None
        self._reset()

        # 1) controls
        button = dict(layout=widgets.Layout(width="auto"))
        self.start_button = widgets.Button(description="▶ 1 · train on 2 annotated tiles", button_style="success",
                                           **button)  # fmt: skip
        self.propose_button = widgets.Button(description="2 · propose where to annotate", disabled=True, **button)
        self.annotate_button = widgets.Button(description="3 · annotate the outlined patches and train on",
                                              disabled=True, **button)  # fmt: skip
        self.compare_button = widgets.Button(description="compare with random patches (3 seeds)", **button)
        self.measure = widgets.ToggleButtons(options=list(UNCERTAINTY_MEASURES), value="entropy",
                                             description="uncertainty", style={"button_width": "auto"})  # fmt: skip
        self.tile = widgets.IntSlider(value=0, min=0, max=len(self.pool) - 1, description="tile",
                                      layout=widgets.Layout(width="360px"))  # fmt: skip
        self.status = widgets.HTML()
        self.status.add_class("segtutor-annotation-status")
        self.verdict = widgets.HTML()
        self.figure = LiveFigure(annotation_figure(np.full((8, 8, 3), 255, np.uint8)))
        self.figure.add_class("segtutor-annotation")
        self.errors = widgets.Output()
        guard = report_errors(self.errors)
        self.start_button.on_click(guard(lambda _: self.start()))
        self.propose_button.on_click(guard(lambda _: self.propose()))
        self.annotate_button.on_click(guard(lambda _: self.annotate()))
        self.compare_button.on_click(guard(lambda _: self.compare()))
        self.tile.observe(guard(lambda _: self.draw()), names="value")
        self.measure.observe(guard(self._on_measure), names="value")
        self.figure.on_click(guard(self._on_click))
        note = widgets.HTML(
            "<div style='font-size:12px;color:#555;max-width:1100px'>The uncertainty is the softmax's entropy (or "
            "margin): a ranking of where the model hesitates, <b>not</b> a calibrated probability of being wrong. A "
            "model can be sure and wrong, and unsure where the truth itself is ambiguous. Click a patch of the left "
            "picture to add it to the proposals or take it out.</div>"
        )
        super().__init__([
            row([self.start_button, self.propose_button, self.annotate_button]),
            row([self.measure, self.tile, self.compare_button]),
            self.status, self.figure, self.verdict, note, self.errors,
        ])  # fmt: skip
        self.draw()

    # ---- the Python API (what the buttons do) ----------------------------------------------------------------
    def start(self) -> None:
        """Start again: a fresh copy of the model, the first tiles annotated, one round of training (in a thread)."""
        self._reset()
        self.pool.label_tiles(self.first_tiles)
        self._run(lambda control: self.learner.train_round(control=control), "training on the first tiles")

    def propose(self) -> None:
        """Outline the patches the model is least sure about (``patches_per_round`` of them); shows the first."""
        if self.busy:
            raise RuntimeError("a round is still training: wait for it to end")
        if not self.learner.rounds:
            raise ValueError("train first (step 1): the model proposes where it is unsure once it has learned a little")
        self.proposals = self.learner.propose(self.patches_per_round, measure=self.measure.value)
        if self.proposals:
            counts = np.bincount([p.tile for p in self.proposals], minlength=len(self.pool))
            self.tile.value = int(counts.argmax())  # the tile with the most proposals
        self.draw()

    def annotate(self) -> None:
        """Reveal the true mask in the outlined patches (proposing first if none are), then train on (in a thread)."""
        if not self.proposals:
            self.propose()
        patches, self.proposals = list(self.proposals), []
        self._run(lambda control: self.learner.train_round(patches, control), f"annotating {len(patches)} patches "
                  "and training on")  # fmt: skip

    def compare(self, seeds: Sequence[int] = (0, 1, 2), rounds: int = 4) -> None:
        """Uncertainty against random patches, ``seeds`` runs each of ``rounds`` rounds from fresh models (a thread)."""
        def work(_control: TrainingControl) -> None:
            self.comparison = compare_strategies(
                self.make_model, self.pool_data, self.val_data, self.config,
                seeds=seeds, rounds=rounds, patches_per_round=self.patches_per_round, patch_size=self.patch_size,
                measure=self.measure.value, cpu_share=self.cpu_share)  # fmt: skip

        self._run(work, f"comparing uncertainty with random patches over {len(seeds)} seeds (a minute or two)")

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the running step to end (at most ``timeout`` seconds); True if none is running."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.busy

    @property
    def busy(self) -> bool:
        """True while a round or a comparison trains."""
        return self._thread is not None and self._thread.is_alive()

    # ---- drawing -------------------------------------------------------------------------------------------------
    def draw(self) -> None:
        """Redraw the tile, its uncertainty and prediction, the outlines, the curves and the status.

        While a round trains, the uncertainty and the prediction keep their last pictures: the model is busy.
        """
        tile = self.tile.value
        image = self.pool.images[tile]
        rgb = image_to_rgb(image)
        labels = self.pool.label_mask()[tile]
        with self.figure.batch():
            self.figure.update_trace("labels", source=png_uri(overlay(rgb, labels, self.colors, 0.5)))
            if self.learner.rounds and not self.busy:
                probs = predict_proba(self.learner.model, image)
                uncertainty = UNCERTAINTY_MEASURES[self.measure.value](probs)
                self.figure.update_trace("uncertainty", source=png_uri(probability_picture(uncertainty)))
                self.figure.update_trace("prediction", source=png_uri(overlay(rgb, probs.argmax(0), self.colors, 0.45)))
            elif not self.learner.rounds:
                for name in ("uncertainty", "prediction"):
                    self.figure.update_trace(name, source=png_uri(np.full_like(rgb, 255)))
            self.figure.set_subplot_title(1, f"uncertainty<br>({self.measure.value};<br>dark: unsure)")
            self.figure.update_layout(shapes=self._outlines(tile))
            self._draw_curves()
        self._render_status()

    def _outlines(self, tile: int) -> list[dict]:
        size = self.patch_size
        shapes = []
        for patch in (p for p in self.proposals if p.tile == tile):
            for axis in ("", "2", "3"):
                shapes.append(dict(type="rect", xref=f"x{axis}", yref=f"y{axis}", x0=patch.col - 0.5,
                                   x1=patch.col + size - 0.5, y0=patch.row - 0.5, y1=patch.row + size - 0.5,
                                   line=dict(color=PROPOSED, width=2), name="proposed"))  # fmt: skip
        return shapes

    @property
    def _tumor(self) -> int:
        """The class the curves follow: "tumor" if there is one, else the last class."""
        return self.class_names.index("tumor") if "tumor" in self.class_names else len(self.class_names) - 1

    def _draw_curves(self) -> None:
        tumor = self._tumor
        rounds = self.learner.rounds
        self.figure.update_trace("your rounds", x=[r.labelled_pixels for r in rounds], y=[r.iou[tumor] for r in rounds])
        self.verdict.value = ""
        if self.comparison is None:
            return
        means = {}
        for strategy, name in (("uncertainty", "uncertainty (3 seeds)"), ("random", "random (3 seeds)")):
            runs = self.comparison[strategy]
            pixels = [r.labelled_pixels for r in runs[0]]
            means[strategy] = [statistics.mean(run[i].iou[tumor] for run in runs) for i in range(len(pixels))]
            self.figure.update_trace(name, x=pixels, y=means[strategy])
        self.verdict.value = verdict_html(self.comparison, tumor, self.class_names[tumor])

    def _render_status(self) -> None:
        rounds = self.learner.rounds
        if self.busy:
            text = f"<b style='color:#238b45'>{html.escape(self._doing)}…</b>"
        elif not rounds:
            text = "Press <b>1</b>: the model trains on two fully annotated tiles."
        else:
            last = rounds[-1]
            text = (f"round {last.round}: {last.labelled_pixels:,} pixels annotated, validation "
                    f"{html.escape(self.class_names[self._tumor])} IoU <b>{last.iou[self._tumor]:.3f}</b> · "
                    f"{len(self.proposals)} patches outlined")  # fmt: skip
        self.status.value = f"<div style='font-size:13px'>{text}</div>"
        self.start_button.disabled = self.compare_button.disabled = self.busy
        self.propose_button.disabled = self.busy or not rounds
        self.annotate_button.disabled = self.busy or not rounds

    # ---- internals -----------------------------------------------------------------------------------------------
    def _reset(self) -> None:
        self.pool = AnnotationPool(self.pool_data, self.patch_size, class_names=self.class_names)
        self.learner = ActiveLearner(self.make_model(0), self.pool, self.val_data, self.config,
                                     cpu_share=self.cpu_share)  # fmt: skip
        self.proposals = []

    def make_model(self, seed: int) -> nn.Module:
        """A fresh model of the chosen architecture, its weights drawn from ``seed``."""
        return create_model(self.model_name, in_channels=self.in_channels, num_classes=len(self.class_names),
                            size=self.size, seed=seed)  # fmt: skip

    def _run(self, step, doing: str) -> None:
        if self.busy:
            raise RuntimeError("a round is still training: wait for it to end")
        self.control = TrainingControl()
        self._doing = doing

        def target() -> None:
            try:
                step(self.control)
            except Exception as error:  # noqa: BLE001 (a worker's error must reach the learner)
                self.errors.append_stderr(f"{type(error).__name__}: {error}\n")
            finally:
                self._thread = None
                self.draw()

        self._thread = run_in_background(target, self.control, name="segtutor-annotation")
        self._render_status()

    def _on_measure(self, _change: dict) -> None:
        if self.learner.rounds and not self.busy:
            self.propose()  # the proposals of the other measure
        else:
            self.draw()

    def _on_click(self, click: Click) -> None:
        if click.trace != 0 or not self.learner.rounds:
            return
        size = self.patch_size
        row, col = int(click.y) // size * size, int(click.x) // size * size
        patch = Patch(self.tile.value, row, col, size)
        if self.pool.labelled[patch.tile, row // size, col // size]:
            return  # labelled already
        if patch in self.proposals:
            self.proposals = [p for p in self.proposals if p != patch]
        else:
            self.proposals = [*self.proposals, patch]
        self.draw()


def verdict_html(comparison: dict[str, list[list[ActiveRound]]], class_index: int, class_name: str) -> str:
    """One honest sentence on a comparison: which strategy ended ahead, by how much, in how many seeds."""
    uncertain, random = comparison["uncertainty"], comparison["random"]
    last_u = [run[-1].iou[class_index] for run in uncertain]
    last_r = [run[-1].iou[class_index] for run in random]
    wins = sum(u > r for u, r in zip(last_u, last_r))
    difference = statistics.mean(last_u) - statistics.mean(last_r)
    spread = statistics.stdev([u - r for u, r in zip(last_u, last_r)]) if len(last_u) > 1 else math.nan
    pixels = uncertain[0][-1].labelled_pixels
    leader = "uncertainty-chosen" if difference > 0 else "randomly chosen"
    return (
        f"<div style='font-size:13px'>At {pixels:,} annotated pixels, {html.escape(class_name)} IoU "
        f"{statistics.mean(last_u):.3f} with uncertainty-chosen patches against {statistics.mean(last_r):.3f} with "
        f"random ones (mean of {len(last_u)} seeds): {leader} patches ahead by {abs(difference):.3f}, uncertainty "
        f"ahead in {wins} of {len(last_u)} seeds (spread of the difference ± {spread:.3f}). With so few seeds and "
        "rounds, a difference smaller than the spread says nothing either way.</div>"
    )

