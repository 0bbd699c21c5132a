"""Another lab, another scanner: how much tumor IoU a model trained on lab A loses on labs B and C, and what wins
it back.

Trains a small UNet on lab A's generated tiles (256 tiles of 96², 300 steps of batch 4), with the standard
augmentation (flips, turns, mild RGB jitter) and with HED colour jitter on top (Tellez et al. 2018; ``--zoom``
adds a random zoom). Each model is scored on validation tiles of labs A, B and C (``segtutor.data.LABS``), as
they come and after stain normalisation to lab A (Macenko, Reinhard). Also the expected calibration error (ECE,
15 bins) of the standard model, before and after temperature scaling fitted on lab A's validation tiles.
Steps, not seconds, set the budget, so that a busy machine changes the time and not the numbers.

    python benchmarks/domain_shift.py                      # one seed, about 1-2 minutes on 2 idle cores
    python benchmarks/domain_shift.py --seeds 0 1 2 --zoom

One seed's numbers move by a few hundredths between seeds; use several for a spread.

Measured (seed 0, torch 2.13 CPU, 2 threads), tumor IoU on 48 validation tiles per lab:

| trained on lab A with | lab A | lab B | lab C |
|---|---|---|---|
| standard augmentation | 0.903 | 0.769 | 0.668 |
| standard augmentation, Macenko→A | 0.904 | 0.818 | 0.850 |
| standard augmentation, Reinhard→A | 0.847 | 0.546 | 0.596 |
| + HED jitter 0.2 | 0.879 | 0.751 | 0.765 |
| + HED jitter 0.2, Macenko→A | 0.877 | 0.848 | 0.824 |
| + HED jitter 0.2, Reinhard→A | 0.834 | 0.624 | 0.667 |

Macenko wins back most of lab C (its dyes' colours) but less of lab B, whose blur no colour fix can undo.
Reinhard matches each tile's mean colour, and a tile's mean colour depends on how much tumor it holds: it hurts
here. Temperature scaling fitted on lab A (T = 0.75: this short run is underconfident) lowers A's ECE from 0.017
to 0.007 but raises B's (0.029 → 0.051) and C's (0.098 → 0.124): calibration fitted in one lab does not travel.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from torch.utils.data import DataLoader

from segtutor.data import LABS, HEDJitter, MacenkoNormalizer, RandomZoom, ReinhardNormalizer, TissueDataset
from segtutor.metrics import ConfusionMatrix, expected_calibration_error, fit_temperature
from segtutor.models import create_model
from segtutor.train import TrainConfig, fit

TUMOR = 1  # label of tumor in two-class tiles (stroma 0, tumor 1)


@torch.no_grad()
def predict_logits(model: torch.nn.Module, data: TissueDataset) -> tuple[torch.Tensor, torch.Tensor]:
    """All logits ``(N, 2, H, W)`` and masks ``(N, H, W)`` of a dataset, in eval mode."""
    model.eval()
    logits, masks = [], []
    for images, batch_masks in DataLoader(data, batch_size=32):
        logits.append(model(images))
        masks.append(batch_masks)
    return torch.cat(logits), torch.cat(masks)


def tumor_iou(logits: torch.Tensor, masks: torch.Tensor) -> float:
    scores = ConfusionMatrix(2, class_names=["stroma", "tumor"])
    scores.update(masks, logits)
    return float(scores.compute().iou[TUMOR])


def train(augmentations: list, seed: int, args) -> torch.nn.Module:
    """A small UNet trained on lab A with the standard augmentation plus ``augmentations``."""
    torch.manual_seed(seed)
    train_data = TissueDataset(args.train_tiles, args.tile_size, seed=seed, augment=True, augmentations=augmentations)
    model = create_model("unet", size="small")
    config = TrainConfig(lr=3e-3, batch_size=4, max_iters=args.iters, seed=seed, device="cpu", num_threads=args.threads)
    history = fit(model, train_data, None, config)
    print(f"  trained: {history.message}", flush=True)
    return model


def evaluate(model: torch.nn.Module, seed: int, args, *, normalizers: bool) -> tuple[dict, list]:
    """Tumor IoU per lab (``{row name: [IoU of A, B, C]}``), and ECE per lab before and after temperature scaling.

    Validation tiles: the same tissue (seed ``1000 + seed``) stained and scanned in each lab. With
    ``normalizers``, also the IoU after Macenko and Reinhard normalisation to 8 other lab-A tiles.
    """
    val_seed = 1000 + seed
    reference = np.stack([TissueDataset(8, args.tile_size, seed=val_seed + 1).load_sample(i)[0] for i in range(8)])
    choices = {"": None}
    if normalizers:
        choices.update({"Macenko→A": MacenkoNormalizer(reference), "Reinhard→A": ReinhardNormalizer(reference)})
    rows, calibration = {}, []
    for name, normalize in choices.items():
        scores = []
        for lab in LABS:
            data = TissueDataset(args.val_tiles, args.tile_size, seed=val_seed, lab=lab, normalize=normalize)
            logits, masks = predict_logits(model, data)
            scores.append(tumor_iou(logits, masks))
            if normalize is None:
                if lab == "A":  # fitted on the training lab's validation tiles, used on every lab
                    temperature = fit_temperature(logits, masks)
                before = expected_calibration_error(logits, masks)
                calibration.append([temperature, before, expected_calibration_error(logits / temperature, masks)])
        rows[name] = scores
    return rows, calibration


def print_tables(rows: dict[str, list[list[float]]], calibration: list[list[float]]) -> None:
    """Markdown tables: tumor IoU per recipe and lab (mean ± std over seeds), and the standard model's ECE."""
    print("\nTumor IoU on validation tiles of each lab (mean ± std over seeds where more than one)")
    print("| trained on lab A with | " + " | ".join(f"lab {name}" for name in LABS) + " |")
    print("|---|" + "---|" * len(LABS))
    for recipe, scores in rows.items():
        scores = np.array(scores)  # (seeds, labs)
        spread = len(scores) > 1
        cells = [f"{m:.3f}" + (f" ± {s:.3f}" if spread else "") for m, s in zip(scores.mean(0), scores.std(0))]
        print(f"| {recipe} | " + " | ".join(cells) + " |")
    print("\nCalibration of the standard model: ECE (15 bins) per lab, before and after temperature scaling (fit on A)")
    print("| lab | T (fitted on A) | ECE | ECE after T |")
    print("|---|---|---|---|")
    values = np.array(calibration).reshape(-1, len(LABS), 3).mean(0)
    for name, (temperature, before, after) in zip(LABS, values):
        print(f"| {name} | {temperature:.2f} | {before:.3f} | {after:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=300, help="training steps per model (batch 4)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--train-tiles", type=int, default=256)
    parser.add_argument("--val-tiles", type=int, default=48)
    parser.add_argument("--tile-size", type=int, default=96)
    parser.add_argument("--hed-sigma", type=float, default=0.2, help="HED jitter half-width (0.2: 'HED-strong')")
    parser.add_argument("--zoom", action="store_true", help="also train with HED jitter and RandomZoom(0.8, 1.25)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"load average {os.getloadavg()[0]:.1f}; {args.iters} steps of batch 4 per model, tiles {args.tile_size}²")
    for lab in LABS.values():
        print(f"  {lab.description}")

    recipes = {"standard augmentation": [], f"+ HED jitter {args.hed_sigma:g}": [HEDJitter(args.hed_sigma)]}
    if args.zoom:
        recipes[f"+ HED jitter {args.hed_sigma:g} + zoom"] = [HEDJitter(args.hed_sigma), RandomZoom(0.8, 1.25)]
    rows: dict[str, list[list[float]]] = {}
    calibration: list[list[float]] = []
    for seed in args.seeds:
        for recipe, augmentations in recipes.items():
            started = time.perf_counter()
            print(f"seed {seed}, {recipe}", flush=True)
            model = train(augmentations, seed, args)
            scores, ece = evaluate(model, seed, args, normalizers=True)
            for name, values in scores.items():
                rows.setdefault(f"{recipe}, {name}" if name else recipe, []).append(values)
            if not augmentations:
                calibration += ece
            print(f"  {time.perf_counter() - started:.0f} s with evaluation", flush=True)
    print_tables(rows, calibration)


if __name__ == "__main__":
    main()
