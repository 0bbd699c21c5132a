"""How long the concept explorers take, in Python, to react to the learner.

Issue 4 asks for under 20 ms per step with a 16×16 input. Each row drives an explorer the way its controls do
(Step button, a setting, a click) and times the Python side: the state update, building the patch and
serialising it to JSON as the kernel would (the browser's drawing is not included). Run:

    /work/venv/bin/python benchmarks/explorers.py
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable

import numpy as np

from segtutor.explain import tissue_patch
from segtutor.widgets import (
    ConvolutionExplorer,
    LiveFigure,
    PoolingExplorer,
    ReceptiveFieldExplorer,
    UpsamplingExplorer,
)

REPEATS = 30  # steps timed per row


def serialise_patches(sizes: list[int]) -> None:
    """Make LiveFigure.send serialise each patch to JSON (the kernel's work) and record its size."""

    def send(self, content, buffers=None):
        sizes.append(len(json.dumps(content)))

    LiveFigure.send = send


def time_calls(action: Callable[[], None], repeats: int) -> list[float]:
    """Milliseconds per call of ``action``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    sizes: list[int] = []
    serialise_patches(sizes)
    patch = tissue_patch(16, seed=0)
    convolution = ConvolutionExplorer(patch)
    convolution.input_picker.value = "yours"  # 16×16
    pooling = PoolingExplorer(patch)
    pooling.input_picker.value = "yours"  # 16×16 → 8×8
    upsampling = UpsamplingExplorer(patch)
    upsampling.input_picker.value = "yours"  # 16×16 → 33×33 with kernel 3, stride 2
    receptive = ReceptiveFieldExplorer(tile_size=96)
    rng = np.random.default_rng(0)

    def click_tile() -> None:
        row, col = rng.integers(0, 96, size=2)
        receptive.figure.click(0, x=int(col), y=int(row))

    rows = [
        ("convolution: Step (16×16, 3×3)", lambda: convolution.stepper.step_button.click(), REPEATS),
        ("convolution: change dilation", lambda: setattr(convolution.dilation, "value", 3 - convolution.dilation.value),
         6),  # fmt: skip
        ("pooling: Step (16×16 → 8×8)", lambda: pooling.stepper.step_button.click(), REPEATS),
        ("upsampling: Step (16×16, k3 s2)", lambda: upsampling.stepper.step_button.click(), REPEATS),
        ("receptive field: click (UNet, 96 px)", click_tile, 8),
    ]
    print(f"load average (1, 5, 15 min): {os.getloadavg()}  on {os.cpu_count()} cores")
    print(f"{'action':42s} {'median ms':>10s} {'max ms':>8s} {'patch kB':>9s}")
    for name, action, repeats in rows:
        sizes.clear()
        times = time_calls(action, repeats)
        kilobytes = statistics.median(sizes) / 1000 if sizes else float("nan")
        print(f"{name:42s} {statistics.median(times):10.2f} {max(times):8.2f} {kilobytes:9.1f}")


if __name__ == "__main__":
    main()
