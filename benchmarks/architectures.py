"""The architecture race over several seeds, each model at its own learning rate, and the ablations behind it.

Run: ``python benchmarks/architectures.py`` (about 5 minutes on a 2-core CPU; ``--help`` for options).

1. The race (:func:`segtutor.train.race`) of every model of ``list_models()`` at size small, on the tiles of
   notebook 11 (64 generated training tiles and 16 validation tiles of 96 px), once per seed: the seed draws the
   initial weights and the order of the batches. The learning rate and batch size are each model's own
   recommendation (``TrainConfig(lr=None)``), and DeepLabv3 and DeepLabv3+ get ASPP rates scaled to the 96-pixel
   tile (``aspp_rates_for_tile(96)``: 2, 4, 7), so that their atrous taps do not all land on padding.
2. Ablations on the same data and budget, one design change each: UNet without its skip connections, UNet with
   resize-convolution (nearest ×2, then a 3 × 3 convolution) instead of transposed convolution, and DeepLabv3 with
   the paper's rates (12, 24, 36) on the same tiles.

Every line is mean ± standard deviation over the seeds of the validation mean IoU, the mean boundary F-score
(outline pixels within 2 px) and the milliseconds per training step, with the load average the machine showed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from segtutor.data import TissueDataset
from segtutor.models import SIZES, UNet, aspp_rates_for_tile, create_model, list_models, paper_aspp_rates
from segtutor.train import TrainConfig, evaluate_boundaries, fit, race


def spread(values: list[float], digits: int = 3) -> str:
    """``mean ± sd`` of ``values`` (sd 0 for a single value)."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {sd:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="small")
    parser.add_argument("--tile-size", type=int, default=96)
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-ablations", action="store_true")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    train_data = TissueDataset(num_tiles=64, tile_size=args.tile_size, seed=0, augment=True)
    val_data = TissueDataset(num_tiles=16, tile_size=args.tile_size, seed=1)
    rates = aspp_rates_for_tile(args.tile_size)
    options = {"deeplabv3": {"aspp_rates": rates}, "deeplabv3plus": {"aspp_rates": rates}}
    rows: dict[str, dict[str, list[float]]] = {}
    load_before, started = os.getloadavg(), time.perf_counter()

    def record(label: str, mean_iou: float, boundary_f: float, ms_per_step: float) -> None:
        row = rows.setdefault(label, {"iou": [], "boundary": [], "ms": []})
        for key, value in zip(row, (mean_iou, boundary_f, ms_per_step)):
            row[key].append(value)

    for seed in range(args.seeds):
        config = TrainConfig(lr=None, max_iters=args.iters, eval_every=args.iters // 2, seed=seed)
        for result in race(list_models(), train_data, val_data, config, size=args.size, seed=seed,
                           model_options=options):  # fmt: skip
            scaled = f" (rates {', '.join(map(str, rates))})" if result.model_name in options else ""
            label = result.model_name + scaled
            record(label, result.mean_iou, result.boundary.mean_f_score, result.seconds_per_iteration * 1000)
        if args.no_ablations:
            continue
        ablations: dict[str, Callable[[], nn.Module]] = {
            "unet without skips": lambda: UNet(**SIZES["unet"][args.size], skips=False),
            "unet, resize-convolution": lambda: UNet(**SIZES["unet"][args.size], upsampling="resize"),
            "deeplabv3 (rates 12, 24, 36)": lambda: create_model("deeplabv3", size=args.size,
                                                                 aspp_rates=paper_aspp_rates(output_stride=8)),
        }
        for label, build in ablations.items():
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)  # the same initial weights as create_model(..., seed=seed)
                model = build()
            history = fit(model, train_data, val_data, config)
            boundary = evaluate_boundaries(model, val_data, num_classes=2)
            record(label, history.evaluations[-1].mean_iou, boundary.mean_f_score, history.seconds_per_iteration * 1000)
    seconds, load_after = time.perf_counter() - started, os.getloadavg()

    print(f"\n{args.size} models, {args.iters} steps, 64 training and 16 validation tiles of {args.tile_size} px, "
          f"each model's own learning rate, {args.seeds} seeds, {seconds:.0f} s; load average "
          f"{load_before[0]:.2f} before, {load_after[0]:.2f} after")  # fmt: skip
    with torch.device("meta"):
        lrs = {name: TrainConfig(max_iters=1).resolve(create_model(name, size=args.size)).lr for name in list_models()}
    print("learning rates (each model's own):", ", ".join(f"{name} {lr:g}" for name, lr in lrs.items()))
    print(f"{'model':<30} {'mean IoU':>15} {'boundary F':>15} {'ms per step':>13}   IoU per seed")
    for label, row in rows.items():
        print(f"{label:<30} {spread(row['iou']):>15} {spread(row['boundary']):>15} {spread(row['ms'], 0):>13}   "
              + ", ".join(f"{value:.3f}" for value in row["iou"]))


if __name__ == "__main__":
    main()
