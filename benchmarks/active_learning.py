"""Does asking the model where to annotate pay off? Uncertainty-chosen against randomly chosen patches.

Run: ``python benchmarks/active_learning.py`` (about 3 minutes on a 2-core CPU; ``--help`` for options).

For each seed, a fresh model is trained on two fully annotated generated tiles (round 0), then each round reveals
``--patches`` patches of 16 × 16 pixels of the pool's true mask, chosen either where the model's entropy is highest
(``uncertainty``) or at random (``random``), and trains on from the same weights
(:func:`segtutor.train.active.compare_strategies`). Both strategies of a seed share the model, the first tiles and
every training setting: only the choice of patches differs. The table is the tumor IoU on held-out tiles against
the pixels annotated so far, mean ± standard deviation over the seeds, with the load average the machine showed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from segtutor.data import TissueDataset
from segtutor.models import create_model
from segtutor.train import TrainConfig
from segtutor.train.active import compare_strategies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="unet")
    parser.add_argument("--size", default="small")
    parser.add_argument("--tiles", type=int, default=16, help="tiles in the pool to annotate")
    parser.add_argument("--tile-size", type=int, default=64)
    parser.add_argument("--val-tiles", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--patches", type=int, default=8, help="patches revealed per round")
    parser.add_argument("--iters", type=int, default=40, help="training steps per round")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--schedule", default="cosine", help="per round: cosine or constant")
    parser.add_argument("--measure", default="entropy", help="entropy or margin")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    pool = TissueDataset(args.tiles, args.tile_size, seed=0)
    val = TissueDataset(args.val_tiles, args.tile_size, seed=1)
    config = TrainConfig(lr=args.lr, max_iters=args.iters, batch_size=8, schedule=args.schedule)
    load_before, started = os.getloadavg(), time.perf_counter()
    results = compare_strategies(lambda seed: create_model(args.model, size=args.size, seed=seed), pool, val, config,
                                 seeds=range(args.seeds), rounds=args.rounds, patches_per_round=args.patches,
                                 measure=args.measure)  # fmt: skip
    seconds, load_after = time.perf_counter() - started, os.getloadavg()

    tumor = pool.class_names.index("tumor")
    print(f"\n{args.model} ({args.size}), pool of {args.tiles} tiles of {args.tile_size} px, {args.val_tiles} "
          f"validation tiles, {args.patches} patches of 16 px per round, {args.iters} steps per round (lr {args.lr:g}, "
          f"{args.schedule}), {args.measure}, {args.seeds} seeds, {seconds:.0f} s")  # fmt: skip
    print(f"{'round':>5} {'pixels':>7}  " + "  ".join(f"{name + ' IoU':>18}" for name in results) + "   per seed")
    for index in range(args.rounds + 1):
        pixels = results["uncertainty"][0][index].labelled_pixels
        cells, per_seed = [], []
        for name, runs in results.items():
            values = [run[index].iou[tumor] for run in runs]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):>10.3f} ± {spread:.3f}")
            per_seed.append(f"{name[:4]} " + " ".join(f"{v:.2f}" for v in values))
        print(f"{index:>5} {pixels:>7}  " + "  ".join(f"{cell:>18}" for cell in cells) + "   " + "; ".join(per_seed))
    wins = sum(u[-1].iou[tumor] > r[-1].iou[tumor] for u, r in zip(results["uncertainty"], results["random"]))
    print(f"last round: uncertainty ahead of random in {wins} of {args.seeds} seeds")
    print(f"load average (1, 5, 15 min): before {tuple(round(x, 2) for x in load_before)}, "
          f"after {tuple(round(x, 2) for x in load_after)} on {os.cpu_count()} CPUs")  # fmt: skip


if __name__ == "__main__":
    main()
