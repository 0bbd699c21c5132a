"""How fast the data side runs, on one thread: tile generation, dataset reads, skin crops, tiling.

Also prints how hard the generated task is: the tumor IoU of the best single hematoxylin threshold (a trained
network should beat it clearly). Run: ``python benchmarks/data.py``. The goal is at least 50 tiles/s at 128x128.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy and torch start their thread pools

import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from segtutor.data import SkinDataset, TissueDataset, generate_tile, stitch, tile_image  # noqa: E402
from segtutor.data.tissue import EOSIN_OD, HEMATOXYLIN_OD  # noqa: E402


def rate(step: Callable[[int], object], count: int) -> tuple[float, float]:
    """Calls of ``step(i)`` per wall-clock second and per CPU second, for i in range(count), after a warm-up.

    On a busy machine the wall-clock rate drops with the load; the CPU-time rate shows what one free core does.
    """
    step(0)
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(count):
        step(i)
    return count / (time.perf_counter() - wall), count / (time.process_time() - cpu)


def threshold_iou(num_tiles: int = 64, tile_size: int = 128) -> float:
    """Tumor IoU of the best single threshold on the hematoxylin channel (colour deconvolution), pooled."""
    stains = np.array([HEMATOXYLIN_OD, EOSIN_OD, np.cross(HEMATOXYLIN_OD, EOSIN_OD)])
    unmix = np.linalg.inv(stains / np.linalg.norm(stains, axis=1, keepdims=True))
    tiles = [generate_tile(tile_size, seed=10_000 + i) for i in range(num_tiles)]
    hematoxylin = np.stack([(-np.log((image + 1.0) / 256.0) @ unmix)[..., 0] for image, _ in tiles])
    tumor = np.stack([mask == 1 for _, mask in tiles])
    return max(((hematoxylin > t) & tumor).sum() / ((hematoxylin > t) | tumor).sum() for t in np.linspace(0, 1, 101))


def main() -> None:
    torch.set_num_threads(1)
    rows: list[tuple[str, tuple[float, float], str]] = []
    for size, count in ((128, 200), (256, 50)):
        for classes in (("stroma", "tumor"), ("stroma", "tumor", "background")):
            per_second = rate(lambda i: generate_tile(size, seed=i, classes=classes), count)
            rows.append((f"generate_tile {size}x{size}, {len(classes)} classes", per_second, "tiles/s"))

    uncached = TissueDataset(200, 128, cache=False, augment=True)
    rows.append(("TissueDataset[i] 128, augment, no cache", rate(lambda i: uncached[i], 200), "items/s"))
    cached = TissueDataset(200, 128, augment=True)
    for i in range(len(cached)):
        cached.load_sample(i)  # fill the cache
    rows.append(("TissueDataset[i] 128, augment, cached", rate(lambda i: cached[i % 200], 2000), "items/s"))
    skin = SkinDataset("train", num_crops=500, augment=True)
    rows.append(("SkinDataset[i] 128 crop, augment", rate(lambda i: skin[i], 500), "items/s"))
    slide = np.zeros((2048, 2048, 3), dtype=np.uint8)
    rows.append(
        ("tile_image + stitch 2048x2048x3, 256/32", rate(lambda i: stitch(*tile_image(slide, 256, 32), slide.shape), 3),
         "round trips/s")
    )

    print(f"load average (1, 5, 15 min) at the start: {os.getloadavg()}; torch threads: {torch.get_num_threads()}")
    print(f"{'what':<42} {'per s':>10} {'per CPU s':>10}  unit")
    for name, (per_second, per_cpu_second), unit in rows:
        print(f"{name:<42} {per_second:>10.1f} {per_cpu_second:>10.1f}  {unit}")
    print(f"best hematoxylin-threshold tumor IoU on 64 tiles of 128x128: {threshold_iou():.3f}")
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
