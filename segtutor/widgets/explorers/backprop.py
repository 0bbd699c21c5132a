"""BackpropExplorer and OptimizerExplorer: steps 5 and 6 of training, made visible.

- :class:`BackpropExplorer`: click a pixel of a tile; its loss is backpropagated through the network
  (:func:`segtutor.explain.pixel_gradients`), and the view shows the size of the gradient that reaches each
  layer's weights and the input pixels it reaches (the receptive field, by the chain rule).
- :class:`OptimizerExplorer`: two copies of one network, stepped by SGD and by Adam on the same batch
  (:class:`segtutor.explain.OptimizerRace`): both loss curves, and for a few weights their gradient, Adam's m and
  v, and the *effective step* (step / learning rate): about ±1 for every Adam weight, proportional to the gradient
  for SGD.

The numbers come from :mod:`segtutor.explain`; these classes only draw them.
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from torch import nn
from torch.utils.data import Dataset

from segtutor.data import TissueDataset
from segtutor.explain import OptimizerRace, PixelGradients, pixel_gradients
from segtutor.figures import TEMPLATE
from segtutor.models import create_model
from segtutor.widgets.controls import report_errors, row
from segtutor.widgets.live_figure import Click, LiveFigure

TILE, MARKER, REACH, LAYERS = range(4)  # BackpropExplorer's trace indices
SGD_LOSS, ADAM_LOSS, SGD_STEP, ADAM_STEP = range(4)  # OptimizerExplorer's trace indices
SGD_COLOR, ADAM_COLOR = "#0072b2", "#d55e00"


class BackpropExplorer(widgets.VBox):
    """Backpropagate the loss of the pixel you click, and see the gradient arrive at every layer.

    Args:
        model: the network (default: an untrained tiny UNet); it is not changed.
        dataset: ``(image (3, H, W), mask (H, W))`` tiles (default: 4 generated tiles of 64 pixels).
    """

    def __init__(self, model: nn.Module | None = None, dataset: Dataset | None = None) -> None:
        self.model = model if model is not None else create_model("unet", size="tiny", seed=0)
        self.dataset = dataset if dataset is not None else TissueDataset(4, 64, seed=1)
        height, width = self.dataset[0][1].shape
        slider = dict(continuous_update=False, style={"description_width": "60px"})
        self.tile = widgets.IntSlider(value=0, min=0, max=len(self.dataset) - 1, description="tile", **slider)
        self.row = widgets.IntSlider(value=height // 2, min=0, max=height - 1, description="row", **slider)
        self.col = widgets.IntSlider(value=width // 2, min=0, max=width - 1, description="column", **slider)
        self.summary = widgets.HTML()
        self.figure = LiveFigure(self._figure())
        self.errors = widgets.Output()
        guard = report_errors(self.errors)
        for control in (self.tile, self.row, self.col):
            control.observe(guard(lambda _change: self._draw()), names="value")
        self.figure.on_click(guard(self._on_click))
        hint = widgets.HTML("<span style='font-size:12px;color:#555'>click a pixel of the tile</span>")
        super().__init__([row([self.tile, self.row, self.col, hint]), self.summary, self.figure, self.errors])
        self.result: PixelGradients
        self._draw()

    def _on_click(self, click: Click) -> None:
        if click.trace in (TILE, REACH):
            with self.hold_sync():
                self.row.value, self.col.value = int(round(click.y)), int(round(click.x))

    def _figure(self) -> go.Figure:
        # spacing 0.1: room for the bars' ticks and axis title between the pictures and the bars, also at 592 px
        figure = make_subplots(rows=1, cols=3, column_widths=[0.28, 0.28, 0.44], horizontal_spacing=0.1,
                               subplot_titles=["the tile<br>and its pixel", "input pixels<br>the gradient reaches",
                                               "gradient size at<br>each layer's weights (RMS)"])  # fmt: skip
        blank = np.zeros((8, 8))
        figure.add_trace(go.Image(z=np.zeros((8, 8, 3), dtype=np.uint8), name="tile"), 1, 1)
        figure.add_trace(go.Scatter(x=[0], y=[0], mode="markers", name="pixel", hoverinfo="skip",
                                    marker=dict(symbol="x-thin", size=16, line=dict(width=3, color="#00ff00"))),
                         1, 1)  # fmt: skip
        figure.add_trace(go.Heatmap(z=blank, colorscale="Magma", showscale=False, name="reach",
                                    hovertemplate="row %{y}, col %{x}<br>|∂loss/∂pixel| %{z:.2e}<extra></extra>"),
                         1, 2)  # fmt: skip
        figure.add_trace(go.Bar(x=["—"], y=[1.0], marker_color="#4b6fa5", name="layers",
                                hovertemplate="%{x}<br>RMS gradient %{y:.2e}<extra></extra>"), 1, 3)  # fmt: skip
        for suffix in ("", "2"):
            figure.update_layout({f"xaxis{suffix}": dict(visible=False, constrain="domain"),
                                  f"yaxis{suffix}": dict(visible=False, autorange="reversed", constrain="domain",
                                                         scaleanchor=f"x{suffix}")})  # fmt: skip
        figure.update_layout(yaxis3=dict(type="log", title_text="RMS of ∂loss/∂weight",
                                         minorloglabels="none"),  # plotly writes its 2s and 5s at 8 px: leave them
                             xaxis3=dict(tickangle=-60),
                             template=TEMPLATE, width=1100, height=430, showlegend=False,
                             margin=dict(l=10, r=10, t=50, b=110))  # fmt: skip
        for annotation in figure.layout.annotations:  # on two lines: three titles fit a 592 px output
            annotation.font.size = 13
        return figure

    def _draw(self) -> None:
        image, mask = self.dataset[self.tile.value]
        self.result = result = pixel_gradients(self.model, image, mask, (self.row.value, self.col.value))
        picture = (image[:3].permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()  # (H, W, 3)
        names = [layer.name for layer in result.layers]
        with self.figure.batch():
            self.figure.update_trace(TILE, z=picture.tolist())
            self.figure.update_trace(MARKER, x=[self.col.value], y=[self.row.value])
            self.figure.update_trace(REACH, z=np.log10(result.input_gradient + 1e-12).round(3),
                                     zmin=-12, zmax=float(np.log10(result.input_gradient.max() + 1e-12)))  # fmt: skip
            self.figure.update_trace(LAYERS, x=names, y=[max(layer.rms, 1e-30) for layer in result.layers])
        names_of = getattr(self.dataset, "class_names", None) or [str(k) for k in range(len(result.probabilities))]
        true = names_of[result.true_class]
        gradient = ", ".join(f"{name} {value:+.3f}" for name, value in zip(names_of, result.logit_gradient))
        height, width = result.reach
        self.summary.value = (
            f"<div style='font-size:14px'>pixel ({self.row.value}, {self.col.value}), true class <b>{true}</b>: "
            f"p({true}) = {result.probabilities[result.true_class]:.3f}, loss −log p = <b>{result.loss:.3f}</b>. "
            f"Gradient at its logits (p − 1 for the true class, p for the others): {gradient}. It reaches a "
            f"{height} × {width} box of input pixels (the map is log₁₀ of |∂loss/∂pixel|; black is 0: pixels "
            "outside the receptive field get no gradient at all).</div>"
        )


class OptimizerExplorer(widgets.VBox):
    """SGD and Adam side by side on the same batch: loss curves, and the effective step of a few weights.

    Args:
        model: the network both optimizers start from (default: a tiny UNet); it is not changed.
        images, masks: the batch ``(N, 3, H, W)``, ``(N, H, W)`` (default: 8 generated tiles of 48 pixels).
        sgd_lr, adam_lr: the starting learning rates (each optimizer's usual one).
    """

    def __init__(
        self,
        model: nn.Module | None = None,
        images: torch.Tensor | None = None,
        masks: torch.Tensor | None = None,
        *,
        sgd_lr: float = 1e-2,
        adam_lr: float = 1e-3,
    ) -> None:
        self.model = model if model is not None else create_model("unet", size="tiny", seed=0)
        if images is None or masks is None:
            data = TissueDataset(8, 48, seed=0)
            images = torch.stack([data[i][0] for i in range(len(data))])  # (8, 3, 48, 48)
            masks = torch.stack([data[i][1] for i in range(len(data))])  # (8, 48, 48)
        self.images, self.masks = images, masks
        log = dict(min=-5, max=0, step=0.5, continuous_update=False, readout_format=".0e",
                   style={"description_width": "70px"})  # fmt: skip
        self.sgd_lr = widgets.FloatLogSlider(value=sgd_lr, description="SGD lr", **log)
        self.adam_lr = widgets.FloatLogSlider(value=adam_lr, description="Adam lr", **log)
        self.step_button = widgets.Button(description="1 step", icon="step-forward",
                                          layout=widgets.Layout(width="auto"))  # as wide as its label
        self.ten_button = widgets.Button(description="10 steps", icon="forward",
                                         layout=widgets.Layout(width="auto"))  # as wide as its label
        self.reset_button = widgets.Button(description="start again", icon="undo",
                                           layout=widgets.Layout(width="auto"))  # as wide as its label
        self.table = widgets.HTML()
        self.figure = LiveFigure(self._figure())
        self.errors = widgets.Output()
        guard = report_errors(self.errors)
        self.step_button.on_click(guard(lambda _: self.step(1)))
        self.ten_button.on_click(guard(lambda _: self.step(10)))
        self.reset_button.on_click(guard(lambda _: self.reset()))
        for slider in (self.sgd_lr, self.adam_lr):
            slider.observe(guard(lambda _change: self.reset()), names="value")
        controls = row([self.sgd_lr, self.adam_lr, self.step_button, self.ten_button, self.reset_button])
        super().__init__([controls, self.figure, self.table, self.errors])
        self.reset()

    def reset(self) -> None:
        """Both optimizers start again from the model's weights, at the sliders' learning rates."""
        self.race = OptimizerRace(self.model, self.images, self.masks, sgd_lr=self.sgd_lr.value,
                                  adam_lr=self.adam_lr.value)  # fmt: skip
        self._draw()

    def step(self, steps: int = 1) -> None:
        """Take ``steps`` steps with both optimizers and redraw."""
        self.race.step(steps)
        self._draw()

    def _figure(self) -> go.Figure:
        figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                               subplot_titles=["loss on the batch", "effective step of the last step: step / lr"])
        figure.add_trace(go.Scatter(x=[], y=[], name="SGD", mode="lines+markers", line_color=SGD_COLOR), 1, 1)
        figure.add_trace(go.Scatter(x=[], y=[], name="Adam", mode="lines+markers", line_color=ADAM_COLOR), 1, 1)
        figure.add_trace(go.Bar(x=[], y=[], name="SGD step / lr", marker_color=SGD_COLOR), 1, 2)
        figure.add_trace(go.Bar(x=[], y=[], name="Adam step / lr", marker_color=ADAM_COLOR), 1, 2)
        figure.update_layout(xaxis_title="step", yaxis_title="cross-entropy", yaxis2_title="step / learning rate",
                             barmode="group", template=TEMPLATE, width=1000, height=380,
                             margin=dict(l=10, r=10, t=40, b=10))  # fmt: skip
        return figure

    def _draw(self) -> None:
        race = self.race
        labels = [weight.label for weight in race.watch]
        with self.figure.batch():
            for trace, name in ((SGD_LOSS, "SGD"), (ADAM_LOSS, "Adam")):
                losses = race.losses(name)
                self.figure.update_trace(trace, x=list(range(len(losses))), y=losses)
            for trace, name in ((SGD_STEP, "SGD"), (ADAM_STEP, "Adam")):
                effective = race.effective_steps(name)
                self.figure.update_trace(trace, x=labels, y=(effective[-1] if len(effective) else [0.0] * len(labels)))
        self.table.value = self._table()

    def _table(self) -> str:
        race = self.race
        if not race.history["Adam"]:
            return ("<div style='font-size:13px'>Press <b>1 step</b>: both optimizers take a step on the same batch. "
                    f"Watched weights: {', '.join(w.label for w in race.watch)}.</div>")  # fmt: skip
        sgd, adam = race.history["SGD"][-1], race.history["Adam"][-1]
        t = adam.iteration
        (beta1, beta2), eps = race.optimizers["Adam"].defaults["betas"], race.optimizers["Adam"].defaults["eps"]
        rows = []
        for index, weight in enumerate(race.watch):
            m_hat, v_hat = adam.m[index] / (1 - beta1**t), adam.v[index] / (1 - beta2**t)
            rows.append(
                f"<tr><td>{weight.label}</td><td>{sgd.grad[index]:+.2e}</td><td>{sgd.update[index]:+.2e}</td>"
                f"<td>{adam.grad[index]:+.2e}</td><td>{adam.m[index]:+.2e}</td><td>{adam.v[index]:.2e}</td>"
                f"<td>{m_hat / (np.sqrt(v_hat) + eps):+.3f}</td><td>{adam.update[index]:+.2e}</td></tr>"
            )
        head = ("<tr><th>weight</th><th>SGD: gradient</th><th>SGD: step = −lr·g</th><th>Adam: gradient</th>"
                "<th>m</th><th>v</th><th>m̂ / (√v̂ + ε)</th><th>Adam: step</th></tr>")  # fmt: skip
        return (f"<div style='font-size:13px'>after step {t}: SGD loss {sgd.loss:.4f}, Adam loss {adam.loss:.4f} "
                f"(before the step)<table style='font-family:monospace'>{head}{''.join(rows)}</table>"
                "Adam's step is −lr · m̂ / (√v̂ + ε): −lr times the column before it. Its size stays near lr for "
                "every weight, however small the gradient; SGD's step shrinks with the gradient.</div>")  # fmt: skip
