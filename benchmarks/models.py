"""How fast do the course's models train here, and how close do they come to the machine's convolution peak?

Run: ``python benchmarks/models.py`` (about 2-3 minutes on a 2-core CPU; ``--help`` for options).

1) Peak: a dense 3x3 convolution (N=8, 64 -> 64 channels, 128x128), forward + backward, contiguous and
   channels_last, best of several runs: the GFLOP/s this machine reaches on the work these models are made of.
2) Per model and size: parameters, forward GFLOPs per 128x128 image, training FLOPs per image (forward +
   backward, counted by torch's FLOP counter, about 3x forward), training images/s (batch 8, 128x128, Adam,
   warm-up steps first, median step time) in both memory formats, and the achieved GFLOP/s as a fraction of the
   peak. Paper sizes take one step each, without warm-up (FCN-8s's is not timed: about a minute per step).

The machine is shared: the load average is printed with the table, and numbers move 10-20 % between runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from segtutor.models import count_flops, count_parameters, create_model, list_models, list_sizes

BATCH_SIZE = 8  # images per training step
IMAGE_SIZE = 128  # pixels per side
NUM_CLASSES = 2  # tumor vs stroma


def conv_peak(device: torch.device, repeats: int = 5) -> dict[str, float]:
    """Best GFLOP/s of a 3x3 convolution, N=8, 64->64, 128x128, forward + backward, per memory format."""
    conv = torch.nn.Conv2d(64, 64, kernel_size=3, padding=1, bias=False).to(device)
    x = torch.rand(BATCH_SIZE, 64, IMAGE_SIZE, IMAGE_SIZE, device=device, requires_grad=True)
    # forward 2*Cin*Cout*9 FLOPs per output pixel; backward twice that (gradients of input and of weights)
    flops = 3 * 2 * 64 * 64 * 9 * IMAGE_SIZE * IMAGE_SIZE * BATCH_SIZE
    peak = {}
    for memory_format in (torch.contiguous_format, torch.channels_last):
        layer = conv.to(memory_format=memory_format)
        inputs = x.detach().to(memory_format=memory_format).requires_grad_(True)
        best = float("inf")
        for _ in range(repeats + 1):  # the first run sets up oneDNN and is not counted
            start = time.perf_counter()
            layer(inputs).sum().backward()
            synchronize(device)
            best = min(best, time.perf_counter() - start)
        peak[format_name(memory_format)] = flops / best / 1e9
    return peak


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so timings measure the computation and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def format_name(memory_format: torch.memory_format) -> str:
    return "channels_last" if memory_format is torch.channels_last else "contiguous"


def training_step_flops(model: torch.nn.Module, images: torch.Tensor, masks: torch.Tensor) -> int:
    """FLOPs of one forward + backward pass on the batch, counted by torch."""
    counter = FlopCounterMode(display=False)
    with counter:
        F.cross_entropy(model(images), masks).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def images_per_second(
    name: str, size: str, memory_format: torch.memory_format, device: torch.device, seconds: float, max_steps: int | None
) -> float:
    """Training throughput: Adam steps on a fixed random batch after 3 warm-up steps, from the median step time."""
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

    warmup = 0 if max_steps is not None and max_steps <= 1 else 3
    for _ in range(warmup):
        step()
    # the median step time, so a burst of background load does not decide the result
    step_seconds: list[float] = []
    while (sum(step_seconds) < seconds or len(step_seconds) < 3) and (max_steps is None or len(step_seconds) < max_steps):
        synchronize(device)
        start = time.perf_counter()
        step()
        synchronize(device)
        step_seconds.append(time.perf_counter() - start)
    return BATCH_SIZE / statistics.median(step_seconds)


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

    print(f"torch {torch.__version__}, {args.threads} threads, device {device}, load average before: {os.getloadavg()}")
    peak = conv_peak(device)
    best_peak = max(peak.values())
    print("peak: 3x3 conv N=8 64->64 128x128 forward+backward: "
          + ", ".join(f"{fmt} {gflops:.1f} GFLOP/s" for fmt, gflops in peak.items()))  # fmt: skip

    header = (f"{'model':<10}{'size':<8}{'params':>12}{'GFLOPs/img':>12}{'train GF/img':>14}"
              f"{'img/s contig':>14}{'img/s ch_last':>15}{'GFLOP/s':>10}{'of peak':>9}")  # fmt: skip
    rows = []
    for name in args.models:
        for size in args.sizes:
            model = create_model(name, num_classes=NUM_CLASSES, size=size)
            params = count_parameters(model)
            forward = count_flops(model, (3, IMAGE_SIZE, IMAGE_SIZE)) / 1e9
            line = f"{name:<10}{size:<8}{params:>12,}{forward:>12.3f}"
            if size == "paper" and name == "fcn8s":
                rows.append(line + "   not timed: fc6 (7x7x512x4096) takes about a minute per step here")
                continue
            images = torch.rand(BATCH_SIZE, 3, IMAGE_SIZE, IMAGE_SIZE)
            masks = torch.randint(0, NUM_CLASSES, (BATCH_SIZE, IMAGE_SIZE, IMAGE_SIZE))
            train = training_step_flops(model.to(device), images.to(device), masks.to(device)) / BATCH_SIZE / 1e9
            max_steps = 1 if size == "paper" else None  # paper sizes: one step without warm-up, for scale only
            speeds = [images_per_second(name, size, fmt, device, args.seconds, max_steps)
                      for fmt in (torch.contiguous_format, torch.channels_last)]  # fmt: skip
            achieved = train * max(speeds)
            note = "  (1 step, no warm-up)" if size == "paper" else ""
            rows.append(line + f"{train:>14.3f}{speeds[0]:>14.1f}{speeds[1]:>15.1f}{achieved:>10.1f}"
                        f"{achieved / best_peak:>9.0%}{note}")  # fmt: skip
            print(rows[-1], flush=True)

    print()
    print(header)
    print("-" * len(header))
    print("\n".join(rows))
    print(f"\npeak {best_peak:.1f} GFLOP/s ({max(peak, key=peak.get)}); 'of peak' uses the faster memory format; "
          f"load average after: {os.getloadavg()}")  # fmt: skip


if __name__ == "__main__":
    main()
