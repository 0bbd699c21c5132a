"""Pretraining an encoder: learn tissue features once, on many tiles from many labs, and keep them.

The recipe (:class:`PretrainRecipe`) is supervised segmentation of stroma, tumor and background on generated
tiles, each from a lab of its own (:class:`~segtutor.data.ManyLabsDataset`: other dyes, staining times,
scanners and pixel sizes), with flips, turns, HED colour jitter and random zoom on top. After training, only
the encoder is kept (:func:`save_encoder`): its features, learned on varied tissue, serve every later task,
the decoder learns anew. ``benchmarks/pretrain.py`` runs this recipe for each small model and writes the files
that ship in ``segtutor/models/pretrained/``; :func:`segtutor.models.load_pretrained_encoder` reads them.

Everything is seeded and counted in steps, not seconds, and the CPU thread count is fixed: running the recipe
again on a CPU gives the same weights, byte for byte (the JSON record holds their sha256 to compare).

Example:
    >>> model, record = pretrain_encoder(PretrainRecipe("unet", steps=2000))
    >>> save_encoder(model, record, PRETRAINED_DIR)
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from segtutor.data import LABS, HEDJitter, ManyLabsDataset, RandomZoom, TissueDataset
from segtutor.models import create_model
from segtutor.models.transfer import ENCODERS, encoder_state
from segtutor.predict import score_dataset
from segtutor.train.config import TrainConfig
from segtutor.train.trainer import fit

LICENSE = (
    "BSD-3-Clause, the licence of segtutor itself: the weights were learned only from tiles that segtutor "
    "generates (no third-party images or weights)"
)


@dataclass(frozen=True)
class PretrainRecipe:
    """Every setting of one pretraining run; the JSON record next to the weights stores them all."""

    model: str = "unet"  # "unet", "fcn8s" or "deeplabv3"
    size: str = "small"  # the model size whose encoder is kept
    num_tiles: int = 2048  # generated tiles, each from its own random lab
    tile_size: int = 96  # pixels per side
    classes: tuple[str, ...] = ("stroma", "tumor", "background")  # three classes: glass and lumen too
    data_seed: int = 20_261_201  # which tiles and labs (no other segtutor data set uses this seed)
    hed_sigma: float = 0.05  # HED jitter on top of the labs' own variety
    zoom: tuple[float, float] = (0.8, 1.25)  # random zoom range (scale augmentation)
    steps: int = 2000  # optimizer steps
    batch_size: int = 8  # tiles per step
    lr: float = 3e-3  # Adam's peak learning rate, cosine decay to 0
    seed: int = 0  # initial weights, data order, augmentation
    num_threads: int = 2  # CPU threads: fixed, so the sums (and the weights) come out the same every run
    channels_last: bool = True  # memory layout (faster for these models on a CPU)
    val_tiles: int = 48  # validation tiles per lab (A, B, C) for the record's scores
    # DeepLabv3 only: the ASPP rates of the network pretrained whole; the shipped encoder was made with the paper's
    # (the small size's default then). The encoder, a ResNet, holds no rate: it loads into a model of any rates.
    aspp_rates: tuple[int, ...] = (12, 24, 36)


def pretraining_data(recipe: PretrainRecipe) -> ManyLabsDataset:
    """The recipe's training tiles: many labs, augmented (flips, turns, jitter, HED jitter, zoom)."""
    return ManyLabsDataset(
        recipe.num_tiles,
        recipe.tile_size,
        seed=recipe.data_seed,
        classes=recipe.classes,
        augment=True,
        augmentations=[HEDJitter(recipe.hed_sigma), RandomZoom(*recipe.zoom)],
    )


def input_statistics(data: ManyLabsDataset) -> dict:
    """Per-channel mean and standard deviation of the pixels of ``data``'s tiles (before augmentation), in [0, 1]."""
    total, squares, count = np.zeros(3), np.zeros(3), 0
    for index in range(len(data)):
        pixels = data.load_sample(index)[0].reshape(-1, 3).astype(np.float64) / 255.0  # (P, 3)
        total += pixels.sum(0)
        squares += (pixels**2).sum(0)
        count += len(pixels)
    mean = total / count
    std = np.sqrt(squares / count - mean**2)
    return {"value_range": [0.0, 1.0], "mean": [round(float(v), 4) for v in mean],
            "std": [round(float(v), 4) for v in std]}  # fmt: skip


def pretrain_encoder(recipe: PretrainRecipe) -> tuple[nn.Module, dict]:
    """Run ``recipe``: train a whole network on many labs' tiles, and describe the run.

    Returns:
        The trained model (on the CPU) and its record: the recipe, the input statistics the encoder expects,
        tumor IoU of the whole pretrained network on labs A, B and C, the seconds it took, and the versions.
    """
    if recipe.model not in ENCODERS:
        raise ValueError(f"unknown model {recipe.model!r}; pretraining knows {', '.join(ENCODERS)}")
    # 1) The data: many labs, augmented; 2) the network, its initial weights drawn from the seed.
    data = pretraining_data(recipe)
    rates = {"aspp_rates": list(recipe.aspp_rates)} if recipe.model == "deeplabv3" else {}
    model = create_model(recipe.model, num_classes=len(recipe.classes), size=recipe.size, seed=recipe.seed, **rates)
    config = TrainConfig(
        lr=recipe.lr,
        batch_size=recipe.batch_size,
        max_iters=recipe.steps,
        loss="cross_entropy",  # the loss the shipped encoders were trained with (these data would choose + Dice)
        seed=recipe.seed,
        device="cpu",
        num_threads=recipe.num_threads,
        channels_last=recipe.channels_last,
    )
    # 3) Train with the course's one loop, counting steps (a busy machine changes the time, not the weights).
    started = time.perf_counter()
    history = fit(model, data, None, config)
    seconds = time.perf_counter() - started
    if history.status != "completed":
        raise RuntimeError(f"pretraining did not complete: {history.message}")
    model = model.to(memory_format=torch.contiguous_format)
    # 4) How good the whole network got, per lab (tumor IoU on tiles it never saw).
    tumor = recipe.classes.index("tumor")
    scores = {}
    for lab in LABS:
        val = TissueDataset(recipe.val_tiles, recipe.tile_size, seed=recipe.data_seed + 1, classes=recipe.classes,
                            lab=lab)  # fmt: skip
        scores[f"tumor IoU, lab {lab}"] = round(score_dataset(model, val).iou[tumor], 4)
    record = {
        "model": recipe.model,
        "size": recipe.size,
        "encoder": list(ENCODERS[recipe.model]),
        "recipe": asdict(recipe),
        "input": input_statistics(data),
        "scores of the whole pretrained network": scores,
        "final training loss": round(float(np.mean(history.losses[-50:])), 4),
        "seconds": round(seconds, 1),
        "steps per second": round(recipe.steps / history.train_seconds, 2),
        "versions": {"torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()},
        "license": LICENSE,
    }
    return model, record


def save_encoder(model: nn.Module, record: dict, folder: str | Path) -> Path:
    """Write ``model``'s encoder (float16) as ``<model>_<size>.pt`` and its record, with the sha256, as ``.json``.

    Returns:
        The path of the weights file.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{record['model']}_{record['size']}"
    state = {key: value.half() if value.is_floating_point() else value
             for key, value in encoder_state(model, record["model"]).items()}  # fmt: skip
    weights = folder / f"{stem}.pt"
    torch.save(state, weights)
    record = dict(record, weights=weights.name, sha256=hashlib.sha256(weights.read_bytes()).hexdigest())
    record["parameters"] = sum(value.numel() for key, value in state.items() if "running" not in key
                               and "num_batches" not in key)  # fmt: skip
    (folder / f"{stem}.json").write_text(json.dumps(record, indent=2) + "\n")
    return weights
