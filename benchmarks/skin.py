"""Does every model learn every layer of the real skin slide with the settings a learner gets?

The measurement of issue 14: ``SkinDataset("train", augment=True)`` (random 128-px crops of the slide's left 75 %,
with flips, turns and colour jitter), ``fit`` with ``TrainConfig(max_seconds=60)`` and every other setting at its
default, on 2 threads; then the right 25 % (never seen in training) is predicted **in one pass** and, for
comparison, with 128-px sliding windows overlapping by 32, and scored by IoU per class against the annotation.

Goal: mean IoU >= 0.80 and every class >= 0.50 for UNet, FCN-8s and DeepLabv3 (small).

    python benchmarks/skin.py                              # the three models, 60 s each
    python benchmarks/skin.py --models deeplabv3 --seconds 30
    python benchmarks/skin.py --models deeplabv3 --crop 256 --seed 1    # training crops of 256 px, another seed

Timings depend on the machine and its load: the steps taken in the budget and the load average are printed with
every row. The small UNet needs its steps here (it learns the thin stratum corneum last): compare runs by steps.
The slide's classes are unbalanced (the corneum has 7.7 % of the training crops' pixels), so ``fit`` adds a Dice term
to the cross-entropy by itself; ``--loss cross_entropy`` measures without it.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from segtutor.data import SKIN_CLASS_NAMES, SkinDataset
from segtutor.metrics import confusion_matrix, iou_per_class
from segtutor.models import create_model
from segtutor.predict import predict_proba, sliding_window_proba
from segtutor.train import TrainConfig, fit


def score(probs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """IoU per class of the argmax of ``probs (K, H, W)`` against ``mask (H, W)``."""
    matrix = confusion_matrix(mask[None], probs.argmax(0)[None], len(SKIN_CLASS_NAMES))
    return iou_per_class(matrix)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["unet", "fcn8s", "deeplabv3"])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--crop", type=int, default=None, help="training crop side; default: SkinDataset's")
    parser.add_argument("--loss", default=None, help="TrainConfig.loss; default: fit's choice for the data")
    args = parser.parse_args()
    torch.set_num_threads(2)
    crop = {} if args.crop is None else {"crop_size": args.crop}
    loss = {} if args.loss is None else {"loss": args.loss}
    train_data = SkinDataset("train", augment=True, seed=args.seed, **crop)
    val_data = SkinDataset("val", num_crops=16, **crop)
    region = torch.from_numpy(val_data.image)  # (H, W, 3) uint8, the right 25 %
    truth = torch.from_numpy(val_data.mask)  # (H, W)
    names = " | ".join(SKIN_CLASS_NAMES)
    print(
        f"skin slide, right 25 % ({tuple(truth.shape)}), after {args.seconds:.0f} s of fit defaults on "
        f"{train_data.crop_size}-px crops; seed {args.seed}"
    )
    print(f"| model (small) | prediction | mean IoU | {names} | steps | load (1 min) |")
    print("|---|---|---|" + "---|" * len(SKIN_CLASS_NAMES) + "---|---|")
    for name in args.models:
        torch.manual_seed(args.seed)
        model = create_model(name, num_classes=len(SKIN_CLASS_NAMES), size="small")
        history = fit(model, train_data, val_data, TrainConfig(max_seconds=args.seconds, seed=args.seed, **loss))
        load = os.getloadavg()[0]
        for how, probs in (
            ("one pass", predict_proba(model, region.numpy())),
            ("windows 128/32", sliding_window_proba(model, region.numpy(), tile_size=128, overlap=32)),
        ):
            iou = score(probs, truth)
            cells = " | ".join(f"{value:.2f}" for value in iou.tolist())
            print(f"| {name} | {how} | {iou.mean():.2f} | {cells} | {len(history.losses)} | {load:.1f} |", flush=True)


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"{time.perf_counter() - start:.0f} s in all")
