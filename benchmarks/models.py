"""How fast do the course's models train here, and how close do they come to the machine's convolution peak?

Run: ``python benchmarks/models.py`` (2-4 minutes on a 2-core CPU; ``--help`` for options).

1) Peak: a dense 3x3 convolution (N=8, 64 -> 64 channels, 128x128), forward + backward, contiguous and
   channels_last, best of several runs: the GFLOP/s this machine reaches on the work these models are made of.
2) Per model and size: parameters, forward GFLOPs per 128x128 image, training FLOPs per image (forward +
   backward, counted by torch's FLOP counter, about 3x forward), training images/s (batch 8, 128x128, Adam,
   3 warm-up steps, then the median step time) in both memory formats, and the achieved GFLOP/s as a fraction
   of the peak. Paper sizes take one step each, without warm-up (FCN-8s's is not timed: about a minute a step).

The machine is shared, so the load average is printed with the table. Wall-clock speed suffers badly from
other processes (two threads wait for each other when one is descheduled). The last column measures the same
ratio in CPU time of this process; with ``--threads 1`` it is close to what a quiet machine gives.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from segtutor.models import count_flops, count_parameters, create_model, list_models, list_sizes

BATCH_SIZE = 8  # images per training step
IMAGE_SIZE = 128  # pixels per side
NUM_CLASSES = 2  # tumor vs stroma
FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


@dataclass
class Timing:
    """Seconds one call took: on the wall clock, and in CPU time of this process (all its threads)."""

    wall: float
    cpu: float


def time_call(fn: Callable[[], object], device: torch.device) -> Timing:
    """Run ``fn`` once and time it (waiting for a GPU to finish)."""
    synchronize(device)
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    synchronize(device)
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so timings measure the computation and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def conv_peak(device: torch.device, repeats: int = 5) -> dict[str, tuple[float, float]]:
    """Best GFLOP/s of a 3x3 conv, N=8, 64->64, 128x128, forward + backward: ``{format: (wall clock, CPU time)}``."""
    # forward: 2*Cin*Cout*9 FLOPs per output pixel; backward twice that (gradients of the input and the weights)
    flops = 3 * 2 * 64 * 64 * 9 * IMAGE_SIZE * IMAGE_SIZE * BATCH_SIZE
    conv = torch.nn.Conv2d(64, 64, kernel_size=3, padding=1, bias=False).to(device)
    peak = {}
    for format_name, memory_format in FORMATS.items():
        layer = conv.to(memory_format=memory_format)
        x = torch.rand(BATCH_SIZE, 64, IMAGE_SIZE, IMAGE_SIZE, device=device).to(memory_format=memory_format)
        x.requires_grad_(True)
        timings = [time_call(lambda: layer(x).sum().backward(), device) for _ in range(repeats + 1)][1:]
        peak[format_name] = (flops / min(t.wall for t in timings) / 1e9, flops / min(t.cpu for t in timings) / 1e9)
    return peak


def training_flops_per_image(model: torch.nn.Module, device: torch.device) -> float:
    """FLOPs of one forward + backward pass per image, counted by torch on one batch."""
    images = torch.rand(BATCH_SIZE, 3, IMAGE_SIZE, IMAGE_SIZE, device=device)
    masks = torch.randint(0, NUM_CLASSES, (BATCH_SIZE, IMAGE_SIZE, IMAGE_SIZE), device=device)
    counter = FlopCounterMode(display=False)
    with counter:
        F.cross_entropy(model(images), masks).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / BATCH_SIZE


def training_step_time(
    name: str, size: str, memory_format: torch.memory_format, device: torch.device, seconds: float, paper: bool
) -> Timing:
    """Median time of an Adam step on a fixed random batch, after 3 warm-up steps (paper sizes: one step only)."""
    generator = torch.Generator().manual_seed(0)
    model = create_model(name, num_classes=NUM_CLASSES, size=size).to(device, memory_format=memory_format).train()
    images = torch.rand(BATCH_SIZE, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator)
    images = images.to(device, memory_format=memory_format)
    masks = torch.randint(0, NUM_CLASSES, (BATCH_SIZE, IMAGE_SIZE, IMAGE_SIZE), generator=generator).to(device)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(images), masks).backward()
        optimizer.step()

    if paper:
        return time_call(step, device)
    for _ in range(3):  # warm-up: oneDNN picks its kernels, the allocator fills its caches
        step()
    # the median step, so a burst of background load does not decide the result
    timings = [time_call(step, device)]
    while sum(t.wall for t in timings) < seconds or len(timings) < 5:
        timings.append(time_call(step, device))
    return Timing(statistics.median(t.wall for t in timings), statistics.median(t.cpu for t in timings))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list_models(), choices=list_models())
    parser.add_argument("--sizes", nargs="+", default=list_sizes(), choices=list_sizes())
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed training per model, size and format")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    print(f"torch {torch.__version__}, {args.threads} threads, device {device}, load average {os.getloadavg()}")
    if os.getloadavg()[0] > 0.5:
        print(f"warning: other processes keep {os.getloadavg()[0]:.1f} CPUs busy: wall-clock numbers will be low")
    peak = conv_peak(device)
    peak_wall = max(wall for wall, _ in peak.values())
    peak_cpu = max(cpu for _, cpu in peak.values())
    print("peak, 3x3 conv N=8 64->64 128x128 forward+backward, GFLOP/s (wall clock / per CPU-second): "
          + ", ".join(f"{fmt} {wall:.1f} / {cpu:.1f}" for fmt, (wall, cpu) in peak.items()))  # fmt: skip

    header = (f"{'model':<10}{'size':<7}{'params':>12}{'GF/img':>8}{'train GF/img':>13}{'img/s contig':>13}"
              f"{'img/s ch_last':>14}{'GFLOP/s':>9}{'of peak':>8}{'of peak (CPU time)':>20}")  # fmt: skip
    print(header)
    rows = []
    for name in args.models:
        for size in args.sizes:
            model = create_model(name, num_classes=NUM_CLASSES, size=size).to(device)
            forward = count_flops(model, (3, IMAGE_SIZE, IMAGE_SIZE)) / 1e9
            row = f"{name:<10}{size:<7}{count_parameters(model):>12,}{forward:>8.3f}"
            if size == "paper" and name == "fcn8s":
                row += "   not timed: fc6 (7x7x512 -> 4096) takes about a minute per step here"
            else:
                train = training_flops_per_image(model, device) / 1e9
                timings = {fmt: training_step_time(name, size, memory_format, device, args.seconds, size == "paper")
                           for fmt, memory_format in FORMATS.items()}  # fmt: skip
                fastest = min(timings.values(), key=lambda t: t.wall)
                achieved_wall = train * BATCH_SIZE / fastest.wall
                achieved_cpu = train * BATCH_SIZE / fastest.cpu
                row += (f"{train:>13.3f}{BATCH_SIZE / timings['contiguous'].wall:>13.1f}"
                        f"{BATCH_SIZE / timings['channels_last'].wall:>14.1f}{achieved_wall:>9.1f}"
                        f"{achieved_wall / peak_wall:>8.0%}{achieved_cpu / peak_cpu:>20.0%}")  # fmt: skip
                row += "  (one step, no warm-up)" if size == "paper" else ""
            rows.append(row)
            print(row, flush=True)

    print("\n" + header + "\n" + "-" * len(header) + "\n" + "\n".join(rows))
    print(f"peak {peak_wall:.1f} GFLOP/s wall clock, {peak_cpu:.1f} GFLOP per CPU-second; "
          f"'of peak' uses the faster memory format; load average {os.getloadavg()}")  # fmt: skip


if __name__ == "__main__":
    main()
