"""What does watching cost? The same training with and without the training dashboard attached.

Run: ``python benchmarks/dashboard_overhead.py`` (about 3 minutes on a 2-core CPU; ``--help`` for options).

Four ways to run the same training (same model, data, seed and number of steps, always in a worker thread):

1. ``no dashboard``: a :class:`~segtutor.train.TrainingSession` with no callback;
2. ``dashboard, no time machine``: a :class:`~segtutor.widgets.TrainingDashboard` with its time machine taken off
   the run: curves and status redrawn at most 5 times a second, the prediction preview at most once a second;
3. ``dashboard + time machine``: the dashboard as it ships, its :class:`~segtutor.train.TimeMachine` predicting the
   preview tile for every snapshot (every step at first, thinned to at most 64 as the run grows, and while its
   passes cost more than 3 % of the training time), one pass per step on one CPU thread, shared with the preview;
4. ``dashboard, unthrottled``: the dashboard redrawing after every step and predicting the preview every step:
   what the throttling saves.

No browser is attached, but every widget message is JSON-encoded as the kernel would encode it (the bytes are
counted), so serialising the figure patches is part of the cost. Throughput is wall-clock images per second
from the run's start to its end (evaluations, redraws and previews included); the CPU column is this process's
CPU time per image (all threads), which other processes on a shared machine disturb less than the wall clock;
"in hooks" is the share of the run's wall time spent inside the dashboard's and the time machine's hooks (redraws,
previews, snapshots, encoding the messages), and "hooks CPU" the share of the run's CPU time spent there: the
direct cost of watching, the least noisy numbers ("TM" is the time machine's part of the CPU share). "step ms" is
the median time of one training step (the hooks not included): if watching slowed the steps themselves (caches,
threads), it would show there.
The variants alternate, and the median over ``--repeats`` runs is reported. The machine may be shared: each run
records the 1-minute load average at its end and "others", the CPU cores that *other* processes used meanwhile
(from ``/proc/stat``, less this process's CPU time); with others above ~1.5 cores the wall-clock columns mostly
measure them.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
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
    """``hook`` that adds the seconds each call takes to ``total[0]`` (wall clock) and ``total[1]`` (process CPU)."""

    @functools.wraps(hook)
    def wrapper(*args, **kwargs):
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            return hook(*args, **kwargs)
        finally:
            total[0] += time.perf_counter() - started
            total[1] += time.process_time() - cpu_started

    return wrapper


def busy_cpu_seconds() -> float | None:
    """CPU seconds all processes of the machine have used since boot (``/proc/stat``), None where there is none."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + fields[4]  # idle and iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # user … steal


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
    hook_seconds, machine_seconds = [0.0, 0.0], [0.0, 0.0]  # (wall, CPU) in all hooks, in the time machine's
    if variant != "no dashboard":
        for callback in session.callbacks:  # the dashboard, and its time machine if it watches
            for hook in ("on_train_start", "on_iteration", "on_evaluate", "on_wait", "on_train_end"):
                wrapped = timed(getattr(callback, hook), hook_seconds)  # the trainer calls these
                if callback is dashboard.time_machine:
                    wrapped = timed(wrapped, machine_seconds)
                setattr(callback, hook, wrapped)
    EncodingComm.sent_bytes = EncodingComm.sent_messages = 0
    busy_started = busy_cpu_seconds()
    started, cpu_started = time.perf_counter(), time.process_time()
    session.start(config)
    if not session.join(timeout=600):
        raise RuntimeError(f"{variant}: the run did not finish within 10 minutes")
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    busy = busy_cpu_seconds()
    others = (busy - busy_started - cpu_seconds) / seconds if busy is not None else math.nan  # cores used by others
    history = session.history
    if history.status != "completed":
        raise RuntimeError(f"{variant}: the run ended {history.status}: {history.message}\n{session.error_text}")
    return {
        "images_per_s": history.images_seen / seconds,
        "cpu_ms_per_image": 1000 * cpu_seconds / history.images_seen,
        "step_ms": 1000 * statistics.median(b - a for a, b in zip([0.0, *history.seconds], history.seconds)),
        "hook_share": hook_seconds[0] / seconds,
        "hook_cpu_share": hook_seconds[1] / cpu_seconds,
        "machine_cpu_share": machine_seconds[1] / cpu_seconds,
        "load": os.getloadavg()[0],
        "others": max(others, 0.0),
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
    parser.add_argument("--json", help="also write every run's numbers to this file (to combine several runs, e.g. "
                        "of two versions of segtutor taking turns)")  # fmt: skip
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
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump({"args": vars(args), "results": results, "load_before": load_before, "load_after": load_after},
                      file, indent=1)  # fmt: skip

    baseline = statistics.median(r["images_per_s"] for r in results["no dashboard"])
    cpu_baseline = statistics.median(r["cpu_ms_per_image"] for r in results["no dashboard"])
    print(f"\n{args.model} ({args.size}), {args.tile_size}x{args.tile_size} tiles, batch {args.batch_size}, "
          f"{args.iters} steps per run, evaluation every {args.eval_every} steps, torch threads "
          f"{torch.get_num_threads()}, median of {args.repeats} runs")  # fmt: skip
    print(f"{'variant':<28}{'images/s':>9}{'cost':>8}{'CPU ms/img':>11}{'cost':>8}{'step ms':>8}{'in hooks':>9}"
          f"{'hooks CPU':>10}{'TM CPU':>8}{'msg/s':>7}{'kB/s':>7}{'load':>6}{'others':>7}   runs (images/s; others)")
    for variant in variants:
        runs = results[variant]
        median = statistics.median(r["images_per_s"] for r in runs)
        cpu = statistics.median(r["cpu_ms_per_image"] for r in runs)
        first = variant == "no dashboard"
        cost = "-" if first else f"{100 * (1 - median / baseline):+.1f}%"  # share of throughput lost
        cpu_cost = "-" if first else f"{100 * (cpu / cpu_baseline - 1):+.1f}%"  # extra CPU per image
        column = {key: statistics.median(r[key] for r in runs)
                  for key in ("step_ms", "hook_share", "hook_cpu_share", "machine_cpu_share", "messages_per_s",
                              "kb_per_s", "load", "others")}  # fmt: skip
        listed = ", ".join(f"{r['images_per_s']:.1f}; {r['others']:.1f}" for r in runs)
        print(f"{variant:<28}{median:>9.1f}{cost:>8}{cpu:>11.1f}{cpu_cost:>8}{column['step_ms']:>8.1f}"
              f"{column['hook_share']:>9.1%}"
              f"{column['hook_cpu_share']:>10.1%}{column['machine_cpu_share']:>8.1%}{column['messages_per_s']:>7.1f}"
              f"{column['kb_per_s']:>7.1f}{column['load']:>6.2f}{column['others']:>7.2f}   {listed}")  # fmt: skip
    print(f"load average (1, 5, 15 min): before {tuple(round(x, 2) for x in load_before)}, "
          f"after {tuple(round(x, 2) for x in load_after)} on {os.cpu_count()} CPUs; 'load' counts this benchmark's "
          f"own {torch.get_num_threads()} threads, 'others' (CPU cores used by other processes) does not")  # fmt: skip
    busiest = max(r["others"] for runs in results.values() for r in runs)
    if busiest > 1.5:
        print(f"note: other processes used up to {busiest:.1f} of the {os.cpu_count()} cores during a run: the "
              "wall-clock columns (images/s, cost) measure them as much as the dashboard; the hooks' shares less so")


if __name__ == "__main__":
    main()
