"""What does watching cost? The same training with and without the training dashboard attached.

Run: ``python benchmarks/dashboard_overhead.py`` (about 3 minutes on a 2-core CPU; ``--help`` for options).

Four ways to run the same training (same model, data, seed and number of steps, always in a worker thread):

1. ``no dashboard``: a :class:`~segtutor.train.TrainingSession` with no callback;
2. ``dashboard, no time machine``: a :class:`~segtutor.widgets.TrainingDashboard` with its time machine taken off
   the run: curves and status redrawn at most 5 times a second, the prediction preview at most once a second;
3. ``dashboard + time machine``: the dashboard as it ships, its :class:`~segtutor.train.TimeMachine` predicting the
   preview tile for every snapshot (every step at first, thinned to at most 64 as the run grows);
4. ``dashboard, unthrottled``: the dashboard redrawing after every step and predicting the preview every step:
   what the throttling saves.

No browser is attached, but every widget message is JSON-encoded as the kernel would encode it (the bytes are
counted), so serialising the figure patches is part of the cost. Throughput is wall-clock images per second
from the run's start to its end (evaluations, redraws and previews included); the CPU column is this process's
CPU time per image (all threads), which other processes on a shared machine disturb less than the wall clock;
"in hooks" is the share of the run's wall time spent inside the dashboard's and the time machine's hooks (redraws,
previews, snapshots, encoding the messages): the direct cost of watching, the least noisy of the three.
The variants alternate, and the median over ``--repeats`` runs is reported, with the load average the machine
showed.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import time

import comm
import torch
from comm.base_comm import BaseComm

from segtutor.data import TissueDataset
from segtutor.models import create_model
from segtutor.train import TrainConfig, TrainingSession
from segtutor.widgets import TrainingDashboard


class EncodingComm(BaseComm):
    """A comm without a kernel that JSON-encodes every message, as ipykernel does, and counts the bytes."""

    sent_bytes = 0  # over all comms, since the last reset
    sent_messages = 0

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys) -> None:
        encoded = json.dumps(data, default=str)  # the kernel's session serialises the same dict
        EncodingComm.sent_bytes += len(encoded) + sum(len(buffer) for buffer in buffers or [])
        EncodingComm.sent_messages += 1


def timed(hook, total: list[float]):
    """``hook`` that adds the seconds each call takes to ``total[0]``."""

    @functools.wraps(hook)
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return hook(*args, **kwargs)
        finally:
            total[0] += time.perf_counter() - started

    return wrapper


def run_once(variant: str, model_name: str, size: str, train_data, val_data, config: TrainConfig) -> dict:
    """One training run of ``variant``; returns its throughput and what the dashboard sent."""
    model = create_model(model_name, size=size, seed=0)
    if variant == "no dashboard":
        session = TrainingSession(model, train_data, val_data, warm_up=False)
    else:
        unthrottled = variant == "dashboard, unthrottled"
        dashboard = TrainingDashboard(model, train_data, val_data, config, warm_up=False,
                                      draw_every_s=0.0 if unthrottled else 0.2,
                                      preview_every_s=0.0 if unthrottled else 1.0)  # fmt: skip
        session = dashboard.session
        if variant == "dashboard, no time machine":
            session.callbacks.remove(dashboard.time_machine)
    hook_seconds = [0.0]
    if variant != "no dashboard":
        for callback in session.callbacks:  # the dashboard, and its time machine if it watches
            for hook in ("on_train_start", "on_iteration", "on_evaluate", "on_wait", "on_train_end"):
                setattr(callback, hook, timed(getattr(callback, hook), hook_seconds))  # the trainer calls these
    EncodingComm.sent_bytes = EncodingComm.sent_messages = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    session.start(config)
    if not session.join(timeout=600):
        raise RuntimeError(f"{variant}: the run did not finish within 10 minutes")
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    history = session.history
    if history.status != "completed":
        raise RuntimeError(f"{variant}: the run ended {history.status}: {history.message}\n{session.error_text}")
    return {
        "images_per_s": history.images_seen / seconds,
        "cpu_ms_per_image": 1000 * cpu_seconds / history.images_seen,
        "hook_share": hook_seconds[0] / seconds,
        "kb_per_s": EncodingComm.sent_bytes / 1000 / seconds,
        "messages_per_s": EncodingComm.sent_messages / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="unet", help="unet, fcn8s or deeplabv3")
    parser.add_argument("--size", default="small", help="tiny, small, medium")
    parser.add_argument("--tile-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--iters", type=int, default=60, help="training steps per run")
    parser.add_argument("--eval-every", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="runs per variant (alternating)")
    args = parser.parse_args()

    comm.create_comm = EncodingComm  # every widget created from now on encodes its messages
    train_data = TissueDataset(64, args.tile_size, seed=0, augment=True)
    val_data = TissueDataset(8, args.tile_size, seed=1)
    for index in range(len(train_data)):
        train_data.load_sample(index)  # generate the tiles once, outside the timed runs
    config = TrainConfig(max_iters=args.iters, batch_size=args.batch_size, eval_every=args.eval_every, seed=0)
    variants = ["no dashboard", "dashboard, no time machine", "dashboard + time machine", "dashboard, unthrottled"]

    load_before = os.getloadavg()
    run_once("no dashboard", args.model, args.size, train_data, val_data,
             TrainConfig(max_iters=5, batch_size=args.batch_size))  # warm-up: torch builds its kernels  # fmt: skip
    results: dict[str, list[dict]] = {variant: [] for variant in variants}
    for repeat in range(args.repeats):
        for variant in variants:
            results[variant].append(run_once(variant, args.model, args.size, train_data, val_data, config))
            rate = results[variant][-1]["images_per_s"]
            print(f"  run {repeat + 1}/{args.repeats} {variant:<28} {rate:6.1f} images/s", flush=True)
    load_after = os.getloadavg()

    baseline = statistics.median(r["images_per_s"] for r in results["no dashboard"])
    cpu_baseline = statistics.median(r["cpu_ms_per_image"] for r in results["no dashboard"])
    print(f"\n{args.model} ({args.size}), {args.tile_size}x{args.tile_size} tiles, batch {args.batch_size}, "
          f"{args.iters} steps per run, evaluation every {args.eval_every} steps, torch threads "
          f"{torch.get_num_threads()}, median of {args.repeats} runs")  # fmt: skip
    print(f"{'variant':<28}{'images/s':>10}{'cost':>8}{'CPU ms/image':>14}{'cost':>8}{'in hooks':>10}"
          f"{'messages/s':>12}{'kB/s sent':>11}   runs (images/s)")  # fmt: skip
    for variant in variants:
        rates = [r["images_per_s"] for r in results[variant]]
        median = statistics.median(rates)
        cpu = statistics.median(r["cpu_ms_per_image"] for r in results[variant])
        first = variant == "no dashboard"
        cost = "-" if first else f"{100 * (1 - median / baseline):+.1f}%"  # share of throughput lost
        cpu_cost = "-" if first else f"{100 * (cpu / cpu_baseline - 1):+.1f}%"  # extra CPU per image
        in_hooks = statistics.median(r["hook_share"] for r in results[variant])
        messages = statistics.median(r["messages_per_s"] for r in results[variant])
        kilobytes = statistics.median(r["kb_per_s"] for r in results[variant])
        runs = ", ".join(f"{rate:.1f}" for rate in rates)
        print(f"{variant:<28}{median:>10.1f}{cost:>8}{cpu:>14.1f}{cpu_cost:>8}{in_hooks:>10.1%}{messages:>12.1f}"
              f"{kilobytes:>11.1f}   {runs}")  # fmt: skip
    print(f"load average (1, 5, 15 min): before {tuple(round(x, 2) for x in load_before)}, "
          f"after {tuple(round(x, 2) for x in load_after)} on {os.cpu_count()} CPUs")  # fmt: skip


if __name__ == "__main__":
    main()
