"""What the package's loop costs per step over a bare torch loop with the same settings, and where it goes.

``Trainer.step`` does more than forward, loss, backward and update: it draws the batch through a DataLoader with a
seeded sampler, checks the batch (types and shapes, NaN and 0-255 pixels, labels the model cannot predict), keeps
the batch-norm statistics and the weights of the step before (to go back to if the loss diverges), checks that
the gradients are finite and records the history. This benchmark times both loops on the same model, the model's
recommended settings (its ``training_defaults``: lr, batch size, memory layout) and the same data, alternating
them so that background load hits both alike, and times each extra piece on its own.

    python benchmarks/step_overhead.py                  # the three course models, 40 steps per loop and round
    python benchmarks/step_overhead.py --models unet --steps 20

The load average is printed with the table: on a busy machine every number grows, the ratios less so.
"""

from __future__ import annotations

import argparse
import collections
import math
import os
import statistics
import time
from collections.abc import Callable

import torch
from torch.utils.data import DataLoader

import segtutor.train.trainer as trainer_module
from segtutor.data import TissueDataset
from segtutor.models import create_model
from segtutor.train import Trainer, TrainConfig

CHECKS = ("check_batch", "check_values", "loss_problem")  # functions of the trainer module, timed per call


def bare_loop(name: str, data, steps: int, seed: int) -> list[float]:
    """Seconds per step of the loop a tutorial writes, with the model's recommended settings."""
    torch.manual_seed(seed)
    model = create_model(name, seed=seed)
    defaults = model.training_defaults
    layout = torch.channels_last if defaults.channels_last_on_cpu else torch.contiguous_format
    model = model.to(memory_format=layout).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=defaults.lr, fused=True)
    loader = DataLoader(data, batch_size=defaults.batch_size, shuffle=True, drop_last=True)
    batches, times = iter(loader), []
    for step in range(steps + 3):  # 3 warm-up steps, not timed
        started = time.perf_counter()
        try:
            images, masks = next(batches)
        except StopIteration:
            batches = iter(loader)
            images, masks = next(batches)
        for group in optimizer.param_groups:
            group["lr"] = defaults.lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        loss = torch.nn.functional.cross_entropy(model(images.contiguous(memory_format=layout)), masks)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss.item()
        times.append(time.perf_counter() - started)
    return times[3:]


def package_loop(name: str, data, steps: int, seed: int, spent: dict[str, float]) -> list[float]:
    """Seconds per ``Trainer.step`` with every TrainConfig default; ``spent`` gets the seconds of each extra piece."""
    trainer = Trainer(create_model(name, seed=seed), data, None, TrainConfig(max_iters=10**6, seed=seed))
    pieces = {"data (DataLoader)": (trainer, "_next_batch"), "finite gradients": (trainer, "_non_finite"),
              "weights kept": (trainer._good_weights, "save")}  # fmt: skip
    for label, (owner, attribute) in pieces.items():
        setattr(owner, attribute, _timed(getattr(owner, attribute), label, spent))
    times = []
    for step in range(steps + 3):
        if step == 3:
            spent.clear()  # the warm-up steps do not count
        started = time.perf_counter()
        trainer.step()
        times.append(time.perf_counter() - started)
    return times[3:]


def _timed(function: Callable, label: str, spent: dict[str, float]) -> Callable:
    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[label] += time.perf_counter() - started

    return timed


def _load() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["unet", "fcn8s", "deeplabv3"])
    parser.add_argument("--steps", type=int, default=40, help="timed steps per loop and round")
    parser.add_argument("--rounds", type=int, default=2, help="bare, package, bare, package, ...")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = TissueDataset(256, 128, seed=args.seed)  # the course's tiles, generated once and cached
    for index in range(len(data)):
        data[index]
    print(f"torch {torch.__version__}, {args.threads} threads, 256 cached TissueDataset tiles of 128², load {_load()}")

    rows = []
    original = {name: getattr(trainer_module, name) for name in CHECKS}
    spent: dict[str, float] = collections.defaultdict(float)
    for name in CHECKS:  # the checks the Trainer calls, timed where it calls them
        setattr(trainer_module, name, _timed(original[name], name, spent))
    try:
        for name in args.models:
            bare, package = [], []
            for _ in range(args.rounds):
                bare += bare_loop(name, data, args.steps, args.seed)
                package += package_loop(name, data, args.steps, args.seed, spent)
            per_step = {label: seconds / (args.steps * args.rounds) for label, seconds in spent.items()}
            spent.clear()
            rows.append((name, statistics.median(bare), statistics.median(package), per_step, _load()))
            print(f"{name}: bare {rows[-1][1] * 1e3:.1f} ms, Trainer.step {rows[-1][2] * 1e3:.1f} ms", flush=True)
    finally:
        for name, function in original.items():
            setattr(trainer_module, name, function)

    pieces = sorted({label for row in rows for label in row[3]})
    print(f"\nMedian ms per step (batch and layout: each model's training_defaults); load average now {_load()}")
    print(f"{'model':<10} {'bare loop':>9} {'Trainer':>8} {'extra':>7} " + " ".join(f"{p:>17}" for p in pieces)
          + "  load after")  # fmt: skip
    for name, bare, package, per_step, load in rows:
        print(f"{name:<10} {bare * 1e3:9.1f} {package * 1e3:8.1f} {(package / bare - 1):+7.1%} "
              + " ".join(f"{per_step.get(p, 0.0) * 1e3:17.2f}" for p in pieces) + f"  {load}")  # fmt: skip
    print("(the pieces are mean ms per step, measured inside Trainer.step; 'extra' is the median's difference)")


if __name__ == "__main__":
    main()
