"""How fast does each model learn to find tumor with the settings a learner gets? Tumor IoU against training time.

Each row trains one model on generated H&E tiles (256 training tiles at 128², validation tiles from another seed)
and is scored, every few seconds of training, by the same tumor IoU on the validation tiles. The clock counts
training steps only (as ``TrainConfig.max_seconds`` does); scoring is not counted. Rows:

- ``fit defaults``: each course model through the package's loop (:class:`segtutor.train.Trainer`, what ``fit``
  runs) with **every TrainConfig field at its default** except the budget: ``TrainConfig(max_seconds=...)``.
- ``plain loop``: a 30-line torch loop, the baseline any tutorial would write: UNet small (base 8), Adam 1e-3,
  batch 8, cosine over the budget, contiguous memory, no checks.
- ``smp Unet(resnet18)``: segmentation_models_pytorch's UNet, no pretrained weights, in the same plain loop; only
  where that optional package is installed.

Goals (issue 12): UNet tumor IoU >= 0.90 within 10 s, FCN-8s and DeepLabv3 within 30 s.

    python benchmarks/time_to_iou.py                          # the three models and the baselines, 30 s each
    python benchmarks/time_to_iou.py --models unet --seconds 10 --no-baselines
    python benchmarks/time_to_iou.py --profile unet           # where one model's step time goes (torch.profiler)

Timings depend on the machine's load: the load average is printed with every row and table.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from segtutor.data import TissueDataset
from segtutor.models import count_parameters, create_model
from segtutor.train import Trainer, TrainConfig

TUMOR = 1  # label of tumor in the two-class tiles (stroma 0, tumor 1)
GOALS = {"unet": 10.0, "fcn8s": 30.0, "deeplabv3": 30.0}  # seconds of training to tumor IoU >= 0.90
MARKS = (5.0, 10.0, 20.0, 30.0, 60.0)  # seconds of training at which the summary shows the IoU


def make_tiles(count: int, seed: int, tile_size: int) -> TensorDataset:
    """``count`` generated tiles, made once, as tensors: ``images (N, 3, H, W)`` float32, ``masks (N, H, W)``."""
    tiles = TissueDataset(count, tile_size, seed=seed)
    images, masks = zip(*(tiles[i] for i in range(count)))
    return TensorDataset(torch.stack(images), torch.stack(masks))


@torch.no_grad()
def tumor_iou(model: nn.Module, val_data: TensorDataset) -> float:
    """Tumor IoU pooled over all validation pixels, batch norm in eval mode; the same scorer for every row."""
    model.eval()
    intersection = union = 0
    for images, masks in DataLoader(val_data, batch_size=16):
        tumor = model(images).argmax(1) == TUMOR  # (N, H, W)
        truth = masks == TUMOR
        intersection += int((tumor & truth).sum())
        union += int((tumor | truth).sum())
    model.train()
    return intersection / union if union else math.nan


@dataclass
class Row:
    """One training run's scores, ``(training seconds, tumor IoU, CPU clock)`` triples, and its throughput.

    Each score is filed under its mark (2.5 s, 5 s, ...): it is taken after the first step that ends past the mark,
    so the run has trained up to one step longer. The CPU clock is the process's CPU time spent in training steps
    divided by the thread count: the training time the run would have taken had its threads had the cores to
    themselves (only roughly: waiting threads spin too).
    """

    name: str
    settings: str
    marks: list[tuple[float, float, float]] = field(default_factory=list)
    images_per_second: float = math.nan
    images_per_cpu_second: float = math.nan  # images per second of the CPU clock
    load: str = ""

    def iou_at(self, seconds: float) -> float:
        """The last score taken at or before ``seconds`` of training (NaN if none)."""
        scores = [iou for at, iou, _ in self.marks if at <= seconds + 1e-9]
        return scores[-1] if scores else math.nan

    def reached(self, goal: float, clock: int = 0) -> float | None:
        """Seconds of training (``clock=0``) or of the CPU clock (``clock=2``) of the first score >= ``goal``."""
        return next((mark[clock] for mark in self.marks if mark[1] >= goal), None)


def race_the_clock(row: Row, step: Callable[[float], int], model: nn.Module, val_data, args) -> Row:
    """Call ``step(progress)`` (one optimizer step; progress: share of the training time used; returns its batch
    size) until ``args.seconds`` of training; score at every ``args.report_every`` seconds and at :data:`MARKS`."""
    marks = sorted({*MARKS, *(args.report_every * k for k in range(1, int(args.seconds / args.report_every) + 1))})
    marks = [mark for mark in marks if mark <= args.seconds] or [args.seconds]
    print(f"\n{row.name}: {row.settings}; load {_load()}")
    print(f"{'train s':>8} {'steps':>6} {'img/s':>6} {'tumor IoU':>9} {'CPU clock s':>7}")
    seconds, cpu_seconds, steps, images = 0.0, 0.0, 0, 0
    while marks:
        started, cpu_started = time.perf_counter(), time.process_time()
        images += step(min(seconds / args.seconds, 1.0))
        seconds += time.perf_counter() - started
        cpu_seconds += (time.process_time() - cpu_started) / args.threads
        steps += 1
        if seconds >= marks[0]:
            while marks and seconds >= marks[0]:
                mark = marks.pop(0)  # the score of the first step that ends past a mark is the mark's score
            row.marks.append((mark, tumor_iou(model, val_data), cpu_seconds))
            print(f"{seconds:8.1f} {steps:6d} {images / seconds:6.1f} {row.marks[-1][1]:9.3f} {cpu_seconds:7.1f}",
                  flush=True)  # fmt: skip
    row.images_per_second, row.images_per_cpu_second, row.load = images / seconds, images / cpu_seconds, _load()
    return row


def warm_up(model: nn.Module, images: torch.Tensor, memory_format: torch.memory_format) -> None:
    """One forward and backward pass on a copy: torch's first pass at a shape is slow (oneDNN builds its kernels);
    a dashboard does it before the learner presses Train. The model itself is not changed."""
    twin = copy.deepcopy(model).to(memory_format=memory_format).train()
    twin(images.contiguous(memory_format=memory_format)).sum().backward()


def fit_defaults(name: str, train_data, val_data, args) -> Row:
    """The package's loop with every TrainConfig field at its default except the budget."""
    model = create_model(name, size=args.size, seed=args.seed)
    overrides = {key: value for key, value in (("lr", args.lr), ("batch_size", args.batch_size)) if value is not None}
    trainer = Trainer(model, train_data, None, TrainConfig(max_seconds=args.seconds, **overrides))
    config = trainer.config  # the resolved settings: what the model recommends
    warm_up(model, train_data.tensors[0][: config.batch_size], trainer._memory_format)
    settings = (f"TrainConfig(max_seconds={args.seconds:g}{''.join(f', {k}={v}' for k, v in overrides.items())}) -> "
                f"lr {config.lr:g}, batch {config.batch_size}, channels_last {config.channels_last}, "
                f"{count_parameters(model) / 1e6:.2f} M parameters")  # fmt: skip

    def step(progress: float) -> int:  # the Trainer keeps its own clock for the schedule
        trainer.step()
        return config.batch_size

    row = race_the_clock(Row(f"{name} fit defaults", settings), step, model, val_data, args)
    trainer.end()
    return row


def plain_loop(label: str, model: nn.Module, train_data, val_data, args) -> Row:
    """The baseline: the training loop a tutorial writes, with Adam's usual 1e-3 and batch 8."""
    lr, batch_size = 1e-3, 8
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loader = DataLoader(train_data, batch_size=batch_size, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(args.seed))  # fmt: skip
    batches = iter(loader)

    def step(progress: float) -> int:
        nonlocal batches
        try:
            images, masks = next(batches)
        except StopIteration:  # the next epoch
            batches = iter(loader)
            images, masks = next(batches)
        for group in optimizer.param_groups:  # cosine from lr to 0 over the training time
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * progress))
        loss = nn.functional.cross_entropy(model(images), masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return batch_size

    warm_up(model, train_data.tensors[0][:batch_size], torch.contiguous_format)
    settings = f"Adam {lr:g}, batch {batch_size}, cosine, contiguous, {count_parameters(model) / 1e6:.2f} M parameters"
    return race_the_clock(Row(label, settings), step, model, val_data, args)


def baselines(train_data, val_data, args) -> list[Row]:
    """The plain loop on UNet small, and on smp's Unet(resnet18) where segmentation_models_pytorch is installed."""
    rows = [plain_loop("plain loop, UNet small", create_model("unet", size="small", seed=args.seed), train_data,
                       val_data, args)]  # fmt: skip
    try:
        import segmentation_models_pytorch as smp
    except ImportError:
        print("\nsegmentation_models_pytorch is not installed: no smp row (pip install segmentation-models-pytorch)")
        return rows
    torch.manual_seed(args.seed)
    model = smp.Unet("resnet18", encoder_weights=None, classes=2)
    rows.append(plain_loop("plain loop, smp Unet(resnet18)", model, train_data, val_data, args))
    return rows


def profile_step(name: str, train_data, args) -> None:
    """Print torch.profiler's table of the operators that take a default training step's time."""
    model = create_model(name, size=args.size, seed=args.seed)
    trainer = Trainer(model, train_data, None, TrainConfig(max_iters=10**6))
    for _ in range(3):  # warm up
        trainer.step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        for _ in range(10):
            trainer.step()
    print(f"{name}: 10 steps, {trainer.config}")
    print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


def summary(rows: list[Row], args) -> None:
    marks = [mark for mark in MARKS if mark <= args.seconds]
    print(f"\nSummary: tumor IoU on {args.val_tiles} held-out tiles (seed {args.seed + 1}) after t s of training, "
          f"{args.threads} threads, torch {torch.__version__}; load average now {_load()}")  # fmt: skip
    print("(CPU clock: CPU time of the training steps / threads, what a machine without other load would take)")
    header = f"{'run':<32} {'img/s':>6} {'CPU':>5} " + " ".join(f"{f'{m:g} s':>6}" for m in marks)
    header += f" {'>=0.85 at':>9} {'>=0.90 at':>9} {'(CPU clock)':>11}  {'goal':<22} load after the run"
    print(header)
    for row in rows:
        reached = [row.reached(0.85), row.reached(0.90), row.reached(0.90, clock=2)]
        model = row.name.split()[0]
        goal = ""
        if model in GOALS and "fit defaults" in row.name:
            met = {clock: at is not None and at <= GOALS[model] for clock, at in (("wall", reached[1]),
                                                                               ("CPU", reached[2]))}  # fmt: skip
            goal = f"0.90 by {GOALS[model]:g} s: " + ("met" if met["wall"] else "MISSED")
            goal += " (met on CPU clock)" if met["CPU"] and not met["wall"] else ""  # a loaded machine's excuse
        print(f"{row.name:<32} {row.images_per_second:6.1f} {row.images_per_cpu_second:5.0f} "
              + " ".join(f"{row.iou_at(m):6.3f}" for m in marks)
              + "".join(f" {f'{at:.1f} s' if at is not None else '-':>9}" for at in reached[:2])
              + f" {f'{reached[2]:.1f} s' if reached[2] is not None else '-':>11}"
              + f"  {goal:<22} {row.load}")  # fmt: skip


def _load() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(GOALS), help="course models (create_model names)")
    parser.add_argument("--seconds", type=float, default=30.0, help="training time per run")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--report-every", type=float, default=2.5, help="seconds of training between scores")
    parser.add_argument("--size", default="small", help="model size for create_model")
    parser.add_argument("--lr", type=float, help="override the model's recommended lr (default: none)")
    parser.add_argument("--batch-size", type=int, help="override the model's recommended batch size (default: none)")
    parser.add_argument("--baselines", action=argparse.BooleanOptionalAction, default=True,
                        help="also train the plain-loop baselines")  # fmt: skip
    parser.add_argument("--train-tiles", type=int, default=256)
    parser.add_argument("--val-tiles", type=int, default=64)
    parser.add_argument("--tile-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", help="profile this model's default training step and exit")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    train_data = make_tiles(args.train_tiles, seed=args.seed, tile_size=args.tile_size)
    val_data = make_tiles(args.val_tiles, seed=args.seed + 1, tile_size=args.tile_size)  # other tiles
    tumor_share = float((train_data.tensors[1] == TUMOR).float().mean())
    print(f"{args.train_tiles} training + {args.val_tiles} validation tiles of {args.tile_size}² generated in "
          f"{time.perf_counter() - started:.1f} s (tumor share {tumor_share:.0%}); torch {torch.__version__}, "
          f"{args.threads} threads, load {_load()}")  # fmt: skip
    if args.profile:
        profile_step(args.profile, train_data, args)
        return
    rows = [fit_defaults(name, train_data, val_data, args) for name in args.models]
    if args.baselines:
        rows += baselines(train_data, val_data, args)
    summary(rows, args)


if __name__ == "__main__":
    main()
