"""Helpers the tests share: waiting for a worker thread, tiny test images, and reading figures back."""

from __future__ import annotations

import io
import math
import time

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import TensorDataset

from segtutor.train import Callback

JOIN_S = 60  # bound on every wait for a worker thread


def wait_until(condition, timeout: float = JOIN_S) -> None:
    """Poll ``condition()`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.02)

def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()

def blobs(seed: int, size: int = 14, num_classes: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, num_classes, (size // 2, size // 2))
    return np.kron(coarse, np.ones((2, 2), dtype=np.int64))  # 2x2 blocks: real regions with outlines


def cell_centres(shapes: list[dict], name: str) -> set[tuple[int, int]]:
    """``(row, col)`` of every one-cell outline called ``name`` in a figure's shapes."""
    return {
        (round((s["y0"] + s["y1"]) / 2), round((s["x0"] + s["x1"]) / 2)) for s in shapes if s.get("name") == name
    }


class Broken(nn.Module):
    """A model whose forward pass fails: the error must reach the session, not vanish in the thread."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)

    def forward(self, images):
        raise RuntimeError("this layer is broken")


# ---- tiny data, models and callbacks for the training tests ---------------------------------------------------
def blob_dataset(count: int = 16, size: int = 32, seed: int = 0) -> TensorDataset:
    """Images whose red channel is high on a random disc; the mask is the disc (class 1)."""
    generator = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    images, masks = [], []
    for _ in range(count):
        cy, cx = torch.randint(8, size - 8, (2,), generator=generator)
        radius = torch.randint(4, 9, (1,), generator=generator)
        disc = (ys - cy) ** 2 + (xs - cx) ** 2 <= radius**2
        image = 0.3 * torch.rand(3, size, size, generator=generator) + 0.2
        image[0] += 0.4 * disc
        images.append(image)
        masks.append(disc.long())
    return TensorDataset(torch.stack(images), torch.stack(masks))


def tiny_net(num_classes: int = 2, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, num_classes, 1)
    )


class NanAtStep(nn.Module):
    """Wraps a model; its output turns NaN on the forward pass number ``step`` (training mode only)."""

    def __init__(self, model: nn.Module, step: int):
        super().__init__()
        self.model, self.step, self.calls = model, step, 0

    def forward(self, images):
        logits = self.model(images)
        if self.training:
            self.calls += 1
            if self.calls == self.step:
                return logits * math.nan
        return logits


class TilePasses(nn.Module):
    """Wraps a model; counts the forward passes of one image in eval mode (the time machine's) and their threads."""

    def __init__(self, model):
        super().__init__()
        self.model, self.passes, self.threads = model, 0, set()

    def forward(self, images):
        if not self.training and len(images) == 1:
            self.passes += 1
            self.threads.add(torch.get_num_threads())
        return self.model(images)


class AtStep(Callback):
    """Calls ``action(state)`` after step ``step``."""

    def __init__(self, step, action):
        self.step, self.action = step, action

    def on_iteration(self, state):
        if state.iteration == self.step:
            self.action(state)


class Recorder(Callback):
    def __init__(self):
        self.events, self.progress = [], []

    def on_train_start(self, state):
        self.events.append(("start", state.iteration))

    def on_iteration(self, state):
        self.events.append(("iteration", state.iteration))
        self.progress.append(state.progress)

    def on_evaluate(self, state):
        self.events.append(("evaluate", state.evaluation.iteration))

    def on_train_end(self, state):
        self.events.append(("end", state.history.status))
