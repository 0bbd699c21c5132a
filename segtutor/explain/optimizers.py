"""SGD and Adam side by side: the same network, the same batch, step by step, with Adam's m and v on view.

:class:`OptimizerRace` keeps two identical copies of a network and steps one with plain SGD, the other with
Adam (Kingma & Ba 2014, Algorithm 1), always on the same batch. For a few *watched* weights it records, at every
step, the gradient, Adam's running averages ``m`` (of the gradients) and ``v`` (of their squares), and the step
each optimizer actually took. What to look for:

1. SGD's step is ``−lr · gradient``: weights with small gradients hardly move;
2. Adam's step is ``−lr · m̂ / (√v̂ + ε)``, with ``m̂ = m / (1 − β1^t)`` and ``v̂ = v / (1 − β2^t)``: about ``lr``
   in size whatever the gradient's scale, so the *effective step*, step / lr, is near ±1 for every weight.

The numbers come from ``torch.optim.SGD`` and ``torch.optim.Adam`` themselves (``m`` and ``v`` are Adam's own
``exp_avg`` and ``exp_avg_sq``); nothing is re-implemented here.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from segtutor.train import cross_entropy_loss


@dataclass(frozen=True)
class WatchedWeight:
    """One weight whose journey is recorded: ``parameter`` is its name in the model, ``index`` its flat index."""

    parameter: str  # e.g. "encoder.0.0.weight"
    index: int

    @property
    def label(self) -> str:
        return f"{self.parameter}[{self.index}]"


@dataclass(frozen=True)
class OptimizerStep:
    """One step of one optimizer, for the watched weights (arrays of one value per watched weight)."""

    iteration: int  # 1 for the first step
    loss: float  # the batch's loss before the step
    grad: np.ndarray  # (W,) ∂loss/∂weight
    update: np.ndarray  # (W,) the change of each weight: new − old
    m: np.ndarray | None  # (W,) Adam's running average of the gradients (None for SGD)
    v: np.ndarray | None  # (W,) Adam's running average of the squared gradients (None for SGD)


class OptimizerRace:
    """Two copies of ``model``, one stepped by SGD and one by Adam, on the same batch.

    Args:
        model: the network to copy (it is not changed; the copies compute in float64);
            ``(N, C, H, W) -> (N, K, H, W)`` logits.
        images: ``(N, C, H, W)`` the batch both train on, every step.
        masks: ``(N, H, W)`` class indices.
        sgd_lr, adam_lr: the learning rates (each optimizer's usual one by default).
        betas, eps: Adam's settings (the paper's defaults).
        watch: the weights to record; default the weight with the largest gradient of the first, the middle and
            the last layer, and the first layer's weight with the smallest gradient that is not 0.

    Example:
        >>> race = OptimizerRace(create_model("unet", size="tiny", seed=0), images, masks)
        >>> race.step(5)
        >>> race.history["Adam"][-1].update / race.lr["Adam"]  # effective steps, near ±1
    """

    NAMES = ("SGD", "Adam")

    def __init__(
        self,
        model: nn.Module,
        images: torch.Tensor,
        masks: torch.Tensor,
        *,
        sgd_lr: float = 1e-2,
        adam_lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        watch: list[WatchedWeight] | None = None,
    ) -> None:
        if images.ndim != 4 or masks.ndim != 3 or images.shape[0] != masks.shape[0]:
            raise ValueError(f"images must be (N, C, H, W) and masks (N, H, W) of the same N, got "
                             f"{tuple(images.shape)} and {tuple(masks.shape)}")  # fmt: skip
        if not (sgd_lr > 0 and adam_lr > 0):
            raise ValueError(f"learning rates must be > 0, got sgd_lr={sgd_lr}, adam_lr={adam_lr}")
        self.images, self.masks = images.detach().cpu().double(), masks.detach().cpu().long()
        # float64 copies: a step of 1e-7 on a weight of 0.3 is then measured exactly, not rounded away
        self.models = {name: copy.deepcopy(model).cpu().double().train() for name in self.NAMES}
        self.lr = {"SGD": float(sgd_lr), "Adam": float(adam_lr)}
        self.optimizers = {
            "SGD": torch.optim.SGD(self.models["SGD"].parameters(), lr=sgd_lr),  # w <- w − lr·g
            "Adam": torch.optim.Adam(self.models["Adam"].parameters(), lr=adam_lr, betas=betas, eps=eps),
        }
        self.watch = watch if watch is not None else self._default_watch()
        self.history: dict[str, list[OptimizerStep]] = {name: [] for name in self.NAMES}

    def _default_watch(self) -> list[WatchedWeight]:
        weights = [(name, p) for name, p in self.models["SGD"].named_parameters() if p.ndim > 1 and p.requires_grad]
        if not weights:
            raise ValueError("the model has no trainable weight tensors to watch")
        grads = self._gradients(copy.deepcopy(self.models["SGD"]))  # on a copy: the start stays untouched
        chosen = [weights[0][0], weights[len(weights) // 2][0], weights[-1][0]]
        watch = [WatchedWeight(name, int(grads[name].abs().argmax())) for name in chosen]  # the largest gradients
        # and the first layer's smallest gradient that is not 0: Adam moves that weight as far as the others
        first = grads[chosen[0]].flatten().abs()
        watch.append(WatchedWeight(chosen[0], int(torch.argmin(torch.where(first > 0, first, math.inf)))))
        return watch

    def _gradients(self, model: nn.Module) -> dict[str, torch.Tensor]:
        model.zero_grad()
        cross_entropy_loss(model(self.images), self.masks).backward()
        grads = {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}
        model.zero_grad()
        return grads

    def _values(self, model: nn.Module) -> dict[str, torch.Tensor]:
        return dict(model.named_parameters())

    def step(self, steps: int = 1) -> None:
        """Take ``steps`` steps with both optimizers, on the same batch, and record them."""
        for _ in range(steps):
            for name in self.NAMES:
                model, optimizer = self.models[name], self.optimizers[name]
                parameters = self._values(model)
                before = np.array([float(parameters[w.parameter].detach().flatten()[w.index]) for w in self.watch])
                optimizer.zero_grad()
                loss = cross_entropy_loss(model(self.images), self.masks)  # (1) the same batch for both
                loss.backward()
                grad = np.array([float(parameters[w.parameter].grad.flatten()[w.index]) for w in self.watch])
                optimizer.step()  # (2) each optimizer's own rule
                after = np.array([float(parameters[w.parameter].detach().flatten()[w.index]) for w in self.watch])
                m = v = None
                if name == "Adam":  # Adam's own running averages, read from its state
                    state = [optimizer.state[parameters[w.parameter]] for w in self.watch]
                    m = np.array([float(s["exp_avg"].flatten()[w.index]) for s, w in zip(state, self.watch)])
                    v = np.array([float(s["exp_avg_sq"].flatten()[w.index]) for s, w in zip(state, self.watch)])
                self.history[name].append(OptimizerStep(len(self.history[name]) + 1, float(loss.detach()), grad,
                                                        after - before, m, v))  # fmt: skip

    def effective_steps(self, name: str) -> np.ndarray:
        """``(steps, W)``: each recorded step of the watched weights divided by the learning rate."""
        return np.array([record.update for record in self.history[name]]) / self.lr[name]

    def losses(self, name: str) -> list[float]:
        """The batch loss before each recorded step of optimizer ``name``."""
        return [record.loss for record in self.history[name]]
