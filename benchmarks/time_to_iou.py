"""How fast does each model learn to find tumor? Validation tumor IoU against training time, on the CPU.

Trains each model (small size) on generated H&E tiles (256 training tiles at 128², validation tiles from other
seeds) and prints, every few seconds of training, the validation tumor IoU. The clock is the training time:
steps only; each evaluation is timed separately (column "eval s") and not counted. Goals: UNet reaches tumor
IoU >= 0.90 within 20 s, every model >= 0.85 within 60 s.

    python benchmarks/time_to_iou.py                          # every model, 60 s each, 2 threads
    python benchmarks/time_to_iou.py --models unet --seconds 20
    python benchmarks/time_to_iou.py --profile unet           # where one model's step time goes

Timings depend on the machine's load: the load average is printed with every table.
"""

from __future__ import annotations

import argparse
import copy
import os
import time

import numpy as np
import torch
from torch.utils.data import TensorDataset

from segtutor.data import TissueDataset
from segtutor.models import count_parameters, create_model, list_models
from segtutor.train import Trainer, TrainConfig

TUMOR = 1  # label of tumor in the two-class tiles (stroma 0, tumor 1)
# Adam's peak learning rate per model, from runs measured in images seen (batch 8, cosine over the run): UNet
# learned fastest at 3e-3 to 5e-3 (tumor IoU 0.907 after 880 images; 0.878 at 1e-3), DeepLabv3 reached 0.891
# after 2000 images at 3e-3 (0.861 at 1e-3), FCN-8s wobbled at 3e-3 (0.19 after 800 images), steady at 1e-3.
LEARNING_RATES = {"unet": 3e-3, "fcn8s": 1e-3, "deeplabv3": 3e-3}
# Batch 4 beat batch 8 per image seen (UNet 0.909 vs 0.888 after 720 images, FCN-8s 0.88 vs 0.86 after
# 640-800, DeepLabv3 0.871 after 960 vs 0.872 after 1200) at about the same images per second on a CPU.
BATCH_SIZE = 4


def make_tiles(count: int, seed: int, tile_size: int) -> TensorDataset:
    """``count`` generated tiles, made once, as tensors: ``images (N, 3, H, W)`` float32, ``masks (N, H, W)``."""
    tiles = TissueDataset(count, tile_size, seed=seed)
    images, masks = zip(*(tiles[i] for i in range(count)))
    return TensorDataset(torch.stack(images), torch.stack(masks))


def train_and_report(name: str, train_data, val_data, args) -> dict:
    """Train one model for ``args.seconds`` of training time; print a row every ``args.report_every`` seconds."""
    torch.manual_seed(args.seed)
    model = create_model(name, size=args.size)
    config = TrainConfig(
        lr=args.lr or LEARNING_RATES[name],
        batch_size=args.batch_size,
        max_seconds=args.seconds,
        seed=args.seed,
        device="cpu",
        num_threads=args.threads,
        channels_last=args.channels_last,
    )
    trainer = Trainer(model, train_data, val_data, config, class_names=["stroma", "tumor"])
    warm_up(model, train_data, args)
    print(f"\n{name} ({args.size}, {count_parameters(model) / 1e6:.2f} M parameters, lr {config.lr:g}), load {_load()}")
    header = ("train s", 8), ("wall s", 7), ("steps", 6), ("img/s", 6), ("loss", 7), ("tumor IoU", 9), ("mIoU", 6)
    print(" ".join(f"{title:>{width}}" for title, width in header), f"{'eval s':>6}")
    reached = {0.85: None, 0.90: None}
    started, next_report = time.perf_counter(), args.report_every
    while not trainer.finished:
        trainer.step()
        if trainer.history.train_seconds >= next_report or trainer.finished:
            next_report += args.report_every
            evaluation = trainer.evaluate()
            history, tumor_iou = trainer.history, evaluation.iou[TUMOR]
            for goal in reached:
                if reached[goal] is None and tumor_iou >= goal:
                    reached[goal] = evaluation.seconds
            recent = np.mean(history.losses[-10:])
            print(
                f"{evaluation.seconds:8.1f} {time.perf_counter() - started:7.1f} {trainer.iteration:6d} "
                f"{history.images_per_second:6.1f} {recent:7.4f} {tumor_iou:9.3f} {evaluation.mean_iou:6.3f} "
                f"{evaluation.eval_seconds:6.2f}",
                flush=True,
            )
    trainer.end()
    final = trainer.history.evaluations[-1]
    return {
        "model": name,
        "final_iou": final.iou[TUMOR],
        "reached_085": reached[0.85],
        "reached_090": reached[0.90],
        "images_per_second": trainer.history.images_per_second,
    }


def warm_up(model: torch.nn.Module, train_data: TensorDataset, args) -> None:
    """One forward and backward pass on a copy of the model: torch's first pass at a shape is slow (about 2 s
    here), and a dashboard does it before the learner presses Train. The model itself is not changed."""
    torch.set_num_threads(args.threads)
    images = train_data.tensors[0][: args.batch_size]
    copy.deepcopy(model).train()(images).sum().backward()


def profile_step(name: str, train_data, args) -> None:
    """Print torch.profiler's table of the operators that take a training step's time."""
    torch.manual_seed(args.seed)
    model = create_model(name, size=args.size)
    config = TrainConfig(
        lr=args.lr or LEARNING_RATES[name],
        batch_size=args.batch_size,
        max_iters=10**6,
        device="cpu",
        num_threads=args.threads,
        channels_last=args.channels_last,
    )
    trainer = Trainer(model, train_data, None, config)
    for _ in range(3):  # warm up
        trainer.step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        for _ in range(10):
            trainer.step()
    print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


def _load() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list_models(), choices=list_models())
    parser.add_argument("--seconds", type=float, default=60.0, help="training time per model")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--report-every", type=float, default=2.0, help="seconds of training between evaluations")
    parser.add_argument("--size", default="small", help="model size for create_model")
    parser.add_argument("--lr", type=float, help="peak learning rate (default: per model, see LEARNING_RATES)")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--train-tiles", type=int, default=256)
    parser.add_argument("--val-tiles", type=int, default=64)
    parser.add_argument("--tile-size", type=int, default=128)
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                        help="NHWC layout (default: the TrainConfig default, off on the CPU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", choices=list_models(), help="profile this model's training step and exit")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    train_data = make_tiles(args.train_tiles, seed=args.seed, tile_size=args.tile_size)
    val_data = make_tiles(args.val_tiles, seed=args.seed + 1, tile_size=args.tile_size)  # other tiles
    tumor_share = float((train_data.tensors[1] == TUMOR).float().mean())
    print(
        f"{args.train_tiles} training + {args.val_tiles} validation tiles of {args.tile_size}² generated in "
        f"{time.perf_counter() - started:.1f} s (tumor share {tumor_share:.0%}); torch {torch.__version__}, "
        f"{args.threads} threads, load {_load()}"
    )
    if args.profile:
        profile_step(args.profile, train_data, args)
        return

    results = [train_and_report(name, train_data, val_data, args) for name in args.models]
    print(f"\nSummary ({args.seconds:g} s of training each, batch {args.batch_size}, Adam, cosine), load {_load()}")
    print(f"{'model':<10} {'img/s':>6} {'IoU>=0.85 at':>13} {'IoU>=0.90 at':>13} {'final tumor IoU':>16}")
    for row in results:
        first = {key: f"{row[key]:.1f} s" if row[key] is not None else "-" for key in ("reached_085", "reached_090")}
        print(f"{row['model']:<10} {row['images_per_second']:6.1f} {first['reached_085']:>13} "
              f"{first['reached_090']:>13} {row['final_iou']:16.3f}")


if __name__ == "__main__":
    main()
