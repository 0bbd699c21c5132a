"""Another lab, another scanner: how much tumor IoU a model trained in one lab loses in others, and what wins it
back, over several seeds.

For each seed and training recipe, a small UNet is trained on one lab's generated tiles (256 tiles of 96², 300
steps of batch 4, Adam 3e-3 with cosine decay) and scored on validation tiles of labs A, B and C (the same
tissue, stained and scanned in each lab; ``segtutor.data.LABS``), as they come and after stain normalisation to
the training lab (Macenko, Reinhard). The recipes:

- ``none``: the standard augmentation (flips, quarter turns, mild RGB jitter);
- ``HED jitter``: plus HED colour augmentation (Tellez et al. 2018, sigma 0.2: "HED-strong");
- ``zoom``: plus scale augmentation (``RandomZoom(0.8, 1.25)``), for lab C's smaller pixels;
- ``HED jitter + zoom``;
- ``pretrained``: standard augmentation, the encoder starting from segtutor's pretrained weights (pretrained on
  many *random* labs, not B or C themselves; ``segtutor.models.transfer``);
- ``pretrained + HED jitter + zoom``.

Calibration: the expected calibration error (ECE, 15 bins) of each model on each lab, before temperature
scaling, after a temperature fitted on the training lab's validation tiles (other tiles than those scored), and
after one fitted on the scored lab's own validation tiles (which needs labelled tiles from there).

``--skin`` adds the real skin slide as a second domain: a small UNet fine-tuned on 16 crops of the slide's left
part (150 steps), from scratch, from the pretrained encoder (all layers learn), or with the pretrained encoder
frozen, each on the slide as it is and after Macenko normalisation toward the generated tiles' look (the slide's
stains estimated once from the whole slide); mean IoU of the four layers on the right part.

Results go to a JSON file (``--results``), one entry per (part, recipe, seed): a rerun skips what is there, so
the work can be split into runs of a few minutes. The tables are printed from everything in the file.

    python benchmarks/domain_shift.py --seeds 0 1 2                  # about 2 minutes per seed on 2 idle cores
    python benchmarks/domain_shift.py --seeds 0 1 2 --skin --recipes none
    python benchmarks/domain_shift.py --seeds 0 1 2 --train-labs B --recipes none "HED jitter"
    python benchmarks/domain_shift.py --table-only                  # print the tables of the results file

Measured: see the "Measured" section of README.md (the tables as this script prints them).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from segtutor.data import (
    LABS,
    SKIN_CLASS_NAMES,
    HEDJitter,
    MacenkoNormalizer,
    RandomZoom,
    ReinhardNormalizer,
    SkinDataset,
    TissueDataset,
    load_skin,
)
from segtutor.metrics import ConfusionMatrix, expected_calibration_error, fit_temperature
from segtutor.models import create_model, freeze_encoder
from segtutor.predict import predict_dataset
from segtutor.train import TrainConfig, fit

STROMA, TUMOR = 0, 1  # labels of two-class tiles
RECIPES = {  # name: (extra augmentation steps, pretrained encoder)
    "none": ([], False),
    "HED jitter": ([HEDJitter(0.2)], False),
    "zoom": ([RandomZoom(0.8, 1.25)], False),
    "HED jitter + zoom": ([HEDJitter(0.2), RandomZoom(0.8, 1.25)], False),
    "pretrained": ([], True),
    "pretrained + HED jitter + zoom": ([HEDJitter(0.2), RandomZoom(0.8, 1.25)], True),
}
NORMALIZERS = ("as is", "Macenko", "Reinhard")
SKIN_VARIANTS = ("from scratch", "pretrained, fine-tuned", "pretrained, encoder frozen")


# ---- one run ----------------------------------------------------------------------------------------------------
def scores_of(logits: torch.Tensor, masks: torch.Tensor, class_names: list[str]) -> list[float]:
    """Per-class IoU of all pixels together."""
    matrix = ConfusionMatrix(len(class_names), class_names=class_names)
    matrix.update(masks, logits)
    return [round(float(v), 4) for v in matrix.compute().iou]


def shift_run(train_lab: str, recipe: str, seed: int, args) -> dict:
    """Train on ``train_lab`` with ``recipe``; IoU per test lab and normaliser, ECE per test lab."""
    augmentations, pretrained = RECIPES[recipe]
    train = TissueDataset(args.train_tiles, args.tile_size, seed=seed, lab=train_lab, augment=True,
                          augmentations=augmentations)  # fmt: skip
    model = create_model("unet", seed=seed, pretrained=pretrained)
    config = TrainConfig(lr=3e-3, batch_size=4, max_iters=args.iters, seed=seed, device="cpu",
                         num_threads=args.threads)  # fmt: skip
    started = time.perf_counter()
    history = fit(model, train, None, config)
    train_seconds = time.perf_counter() - started
    # Tiles: scored (seed 1000 + s), for fitting temperatures (2000 + s), the normalisers' reference (3000 + s).
    reference = np.stack([TissueDataset(8, args.tile_size, seed=3000 + seed, lab=train_lab).load_sample(i)[0]
                          for i in range(8)])  # fmt: skip
    normalizers = {"as is": None, "Macenko": MacenkoNormalizer(reference), "Reinhard": ReinhardNormalizer(reference)}
    fit_logits, fit_masks = predict_dataset(model, TissueDataset(args.val_tiles, args.tile_size, seed=2000 + seed,
                                                                  lab=train_lab))  # fmt: skip
    temperature = fit_temperature(fit_logits, fit_masks)
    iou, calibration = {}, {}
    for lab in LABS:
        for name, normalize in normalizers.items():
            data = TissueDataset(args.val_tiles, args.tile_size, seed=1000 + seed, lab=lab, normalize=normalize)
            logits, masks = predict_dataset(model, data)
            iou[f"{lab} {name}"] = scores_of(logits, masks, ["stroma", "tumor"])
            if name == "as is":
                own_logits, own_masks = predict_dataset(model, TissueDataset(args.val_tiles, args.tile_size,
                                                                             seed=2000 + seed, lab=lab))  # fmt: skip
                own = fit_temperature(own_logits, own_masks)
                calibration[lab] = {
                    "ece": expected_calibration_error(logits, masks),
                    "ece, T from the training lab": expected_calibration_error(logits / temperature, masks),
                    "ece, T from this lab": expected_calibration_error(logits / own, masks),
                    "T from this lab": own,
                }
    return {"iou": iou, "temperature": temperature, "calibration": calibration, "train seconds": train_seconds,
            "status": history.status}  # fmt: skip


def skin_run(variant: str, normalized: bool, seed: int, args, reference: np.ndarray, slide: np.ndarray) -> dict:
    """Fine-tune a small UNet on a handful of skin crops; mean and per-class IoU on the slide's right part."""
    normalize = MacenkoNormalizer(reference, source=slide) if normalized else None
    train = SkinDataset("train", crop_size=128, num_crops=args.skin_crops, seed=seed, augment=True,
                        normalize=normalize)  # fmt: skip
    val = SkinDataset("val", crop_size=128, num_crops=32, seed=100 + seed, normalize=normalize)
    model = create_model(args.skin_model, num_classes=4, seed=seed, pretrained=variant != "from scratch")
    if variant == "pretrained, encoder frozen":
        freeze_encoder(model)
    config = TrainConfig(lr=3e-3, batch_size=4, max_iters=args.skin_iters, seed=seed, device="cpu",
                         num_threads=args.threads)  # fmt: skip
    started = time.perf_counter()
    fit(model, train, None, config)
    seconds = time.perf_counter() - started
    logits, masks = predict_dataset(model, val)
    iou = scores_of(logits, masks, list(SKIN_CLASS_NAMES))
    return {"iou": iou, "mean iou": float(np.nanmean(iou)), "train seconds": seconds}


# ---- tables -----------------------------------------------------------------------------------------------------
def spread(values: list[float]) -> str:
    """``mean ± sd (min–max)`` over seeds (just the value for one seed)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{values.mean():.3f} ± {values.std(ddof=1):.3f} ({values.min():.2f}–{values.max():.2f})"


def print_tables(results: dict) -> None:
    shift = [entry for entry in results.values() if entry["part"] == "shift"]
    for train_lab in sorted({entry["train lab"] for entry in shift}):
        runs = [entry for entry in shift if entry["train lab"] == train_lab]
        recipes = [name for name in RECIPES if any(entry["recipe"] == name for entry in runs)]
        seeds = sorted({entry["seed"] for entry in runs})
        loads = [entry["load"] for entry in runs]
        seconds = [entry["result"]["train seconds"] for entry in runs]
        print(f"\n### Trained on lab {train_lab} → tumor IoU per test lab (seeds {seeds}: mean ± sd (min–max))\n")
        print(f"{len(runs)} runs of {runs[0]['iters']} steps, {np.mean(seconds):.0f} s of training each on average; "
              f"load average after each run {min(loads):.1f}–{max(loads):.1f}\n")
        print("| recipe | test-time | " + " | ".join(f"lab {lab}" for lab in LABS) + " | won back on "
              + " / ".join(lab for lab in LABS if lab != train_lab) + " |")  # fmt: skip
        print("|---|---|" + "---|" * len(LABS) + "---|")
        base = {lab: np.mean([e["result"]["iou"][f"{lab} as is"][TUMOR] for e in runs if e["recipe"] == "none"])
                for lab in LABS}  # fmt: skip
        for recipe in recipes:
            for normalizer in NORMALIZERS:
                chosen = [entry for entry in runs if entry["recipe"] == recipe]
                cells, won = [], []
                for lab in LABS:
                    values = [entry["result"]["iou"][f"{lab} {normalizer}"][TUMOR] for entry in chosen]
                    cells.append(spread(values))
                    if lab != train_lab:
                        lost = base[train_lab] - base[lab]
                        won.append(f"{(np.mean(values) - base[lab]) / lost:+.0%}" if lost > 0 else "–")
                name = normalizer if normalizer == "as is" else f"{normalizer}→{train_lab}"
                print(f"| {recipe} (n={len(chosen)}) | {name} | " + " | ".join(cells) + " | " + " / ".join(won) + " |")
        print(f"\nDrop per class, recipe 'none' (IoU, mean over seeds): lab {train_lab} → each lab")
        print("| class | " + " | ".join(f"lab {lab}" for lab in LABS) + " |")
        print("|---|" + "---|" * len(LABS))
        for label, name in ((STROMA, "stroma"), (TUMOR, "tumor")):
            means = [np.mean([e["result"]["iou"][f"{lab} as is"][label] for e in runs if e["recipe"] == "none"])
                     for lab in LABS]  # fmt: skip
            print(f"| {name} | " + " | ".join(f"{m:.3f}" for m in means) + " |")
        print(f"\nCalibration, trained on lab {train_lab}: ECE (15 bins), mean ± sd over seeds")
        print("| recipe | lab | T (from lab " + train_lab + ") | ECE | ECE, T from lab " + train_lab
              + " | ECE, T from this lab (its T) |")  # fmt: skip
        print("|---|---|---|---|---|---|")
        for recipe in recipes:
            chosen = [entry["result"] for entry in runs if entry["recipe"] == recipe]
            for lab in LABS:
                cal = [r["calibration"][lab] for r in chosen]
                cells = [spread([r["temperature"] for r in chosen])]
                cells += [spread([c[key] for c in cal]) for key in ("ece", "ece, T from the training lab",
                                                                     "ece, T from this lab")]  # fmt: skip
                cells[-1] += f" (T {np.mean([c['T from this lab'] for c in cal]):.2f})"
                print(f"| {recipe} | {lab} | " + " | ".join(cells) + " |")
    skin = [entry for entry in results.values() if entry["part"] == "skin"]
    for model_name in sorted({entry["model"] for entry in skin}):
        runs = [entry for entry in skin if entry["model"] == model_name]
        print(f"\n### Real skin slide, {model_name} small fine-tuned on {runs[0]['crops']} crops "
              f"({runs[0]['iters']} steps): IoU on the slide's right part\n")  # fmt: skip
        print("| start | skin slide | mean IoU | " + " | ".join(SKIN_CLASS_NAMES) + " | train s |")
        print("|---|---|---|" + "---|" * len(SKIN_CLASS_NAMES) + "---|")
        for variant in SKIN_VARIANTS:
            for normalized in (False, True):
                chosen = [e["result"] for e in runs if e["variant"] == variant and e["normalized"] == normalized]
                if not chosen:
                    continue
                cells = [spread([r["mean iou"] for r in chosen])]
                cells += [spread([r["iou"][c] for r in chosen]) for c in range(len(SKIN_CLASS_NAMES))]
                seconds = np.mean([r["train seconds"] for r in chosen])
                how = "Macenko→generated" if normalized else "as is"
                print(f"| {variant} (n={len(chosen)}) | {how} | " + " | ".join(cells) + f" | {seconds:.0f} |")


# ---- main -------------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--train-labs", nargs="+", default=["A"], choices=list(LABS))
    parser.add_argument("--iters", type=int, default=300, help="training steps per model (batch 4)")
    parser.add_argument("--train-tiles", type=int, default=256)
    parser.add_argument("--val-tiles", type=int, default=48)
    parser.add_argument("--tile-size", type=int, default=96)
    parser.add_argument("--skin", action="store_true", help="also the skin slide: scratch vs pretrained")
    parser.add_argument("--skin-only", action="store_true", help="only the skin slide")
    parser.add_argument("--skin-model", default="unet", choices=["unet", "fcn8s", "deeplabv3"])
    parser.add_argument("--skin-crops", type=int, default=16, help="training crops of 128² (a handful)")
    parser.add_argument("--skin-iters", type=int, default=150)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--results", type=Path, default=Path("domain_shift_results.json"))
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--max-minutes", type=float, default=9.0, help="stop starting new runs after this long")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = json.loads(args.results.read_text()) if args.results.is_file() else {}
    started = time.perf_counter()

    def save(key: str, entry: dict) -> None:
        results[key] = entry
        args.results.write_text(json.dumps(results, indent=1) + "\n")

    def out_of_time() -> bool:
        return time.perf_counter() - started > 60 * args.max_minutes

    if not args.table_only:
        print(f"load average {os.getloadavg()[0]:.1f} at the start; results in {args.results}", flush=True)
        for seed in args.seeds:
            for train_lab in args.train_labs if not args.skin_only else []:
                for recipe in args.recipes:
                    key = f"shift|{train_lab}|{recipe}|{seed}"
                    if key in results or out_of_time():
                        continue
                    result = shift_run(train_lab, recipe, seed, args)
                    print(f"  {key}: tumor IoU {[result['iou'][f'{lab} as is'][TUMOR] for lab in LABS]} "
                          f"({result['train seconds']:.0f} s, load {os.getloadavg()[0]:.1f})", flush=True)
                    save(key, {"part": "shift", "train lab": train_lab, "recipe": recipe, "seed": seed,
                               "iters": args.iters, "load": os.getloadavg()[0], "result": result})  # fmt: skip
            if args.skin or args.skin_only:
                slide = load_skin()[0]
                reference = np.stack([TissueDataset(8, 96, seed=3000).load_sample(i)[0] for i in range(8)])
                for variant in SKIN_VARIANTS:
                    for normalized in (False, True):
                        key = f"skin|{args.skin_model}|{variant}|{normalized}|{seed}"
                        if key in results or out_of_time():
                            continue
                        result = skin_run(variant, normalized, seed, args, reference, slide)
                        print(f"  {key}: mean IoU {result['mean iou']:.3f} {result['iou']} "
                              f"({result['train seconds']:.0f} s)", flush=True)
                        save(key, {"part": "skin", "model": args.skin_model, "variant": variant,
                                   "normalized": normalized, "seed": seed, "crops": args.skin_crops,
                                   "iters": args.skin_iters, "result": result})  # fmt: skip
        print(f"load average {os.getloadavg()[0]:.1f} at the end, {time.perf_counter() - started:.0f} s", flush=True)
    print_tables(results)


if __name__ == "__main__":
    main()
