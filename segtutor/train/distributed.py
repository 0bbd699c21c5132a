"""Training over several processes (one per GPU, or several on a CPU machine) with torch's DistributedDataParallel.

Each process holds a copy of the model, starting from the same weights. Every step, each process (1) takes its
share of the batch, (2) computes the loss and the gradients on that share, (3) averages the gradients with every
other process (DDP's all-reduce, overlapped with the backward pass), and (4) takes the same optimizer step, so the
copies stay identical. ``TrainConfig.batch_size`` is the batch of all processes together: 4 processes with
``batch_size=32`` take 8 images each, and a step averages the gradients of all 32, as one process would.

``torchrun`` starts the processes and tells each where it stands through environment variables (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``); :func:`init_distributed` reads them::

    torchrun --nproc_per_node=4 -m segtutor.train --model unet --data my_folder --max-seconds 600 --out runs/unet

:class:`~segtutor.train.Trainer` takes the :class:`Distributed` it returns and stays the one training loop: the
processes agree on each step's loss, on the clock (so a time budget ends them all on the same step) and on the
validation scores (each process scores its share of the validation data, and the counts are added up).
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset, Subset

from segtutor.device import default_device

ENVIRONMENT = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")  # what torchrun sets for every process


@dataclass(frozen=True)
class Distributed:
    """This process's place in a run over several processes, and the few collective operations training needs.

    Every process must call the same operations in the same order: each one waits for all the others.

    Args:
        rank: this process's number, 0 to ``world_size - 1``; process 0 writes the files and prints.
        world_size: how many processes train together.
        device: this process's device: ``cuda:LOCAL_RANK`` (the nccl backend) or ``cpu`` (gloo).

    Example:
        >>> distributed = init_distributed()  # None outside torchrun
        >>> history = Trainer(model, train_data, val_data, config, distributed=distributed).run()
    """

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """True in process 0, the one that writes checkpoints and histories."""
        return self.rank == 0

    def local_batch_size(self, batch_size: int) -> int:
        """This process's share of a batch of ``batch_size`` images (the batch of all processes together)."""
        if batch_size % self.world_size != 0:
            multiple = max(self.world_size, batch_size // self.world_size * self.world_size)
            raise ValueError(
                f"batch_size={batch_size} does not split evenly over {self.world_size} processes: batch_size is the "
                f"batch of all processes together; give a multiple of {self.world_size}, e.g. {multiple}"
            )
        return batch_size // self.world_size

    def shard(self, dataset: Dataset) -> Subset:
        """This process's share of ``dataset``: samples ``rank, rank + world_size, ...`` (every sample once)."""
        if len(dataset) < self.world_size:
            raise ValueError(
                f"the validation data has {len(dataset)} samples, fewer than the {self.world_size} processes that "
                f"share it; give at least {self.world_size} validation samples"
            )
        return Subset(dataset, range(self.rank, len(dataset), self.world_size))

    def wrap(self, model: nn.Module) -> DistributedDataParallel:
        """``model`` (on this process's device) in DDP: its gradients are averaged over the processes in backward.

        DDP copies process 0's weights and buffers to the others when it starts, and (its default) process 0's
        batch-norm running statistics before every forward pass: the model every process evaluates and saves is
        process 0's. Batch norm normalises each process's share of the batch with the
        share's own statistics; ``nn.SyncBatchNorm`` (CUDA only) would use the whole batch's.
        """
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def sum(self, *values: float) -> list[float]:
        """Each value added up over all processes; every process gets the same sums."""
        totals = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(totals, op=dist.ReduceOp.SUM)
        return totals.tolist()

    def mean(self, *values: float) -> list[float]:
        """Each value averaged over all processes; every process gets the same means."""
        return [total / self.world_size for total in self.sum(*values)]

    def sum_(self, tensor: torch.Tensor) -> None:
        """Replace ``tensor`` (e.g. a confusion matrix's counts) by its sum over all processes, in place."""
        on_device = tensor.to(self.device)
        dist.all_reduce(on_device, op=dist.ReduceOp.SUM)
        tensor.copy_(on_device)

    def agree(self, loss: float, problem: str | None) -> tuple[float, str | None]:
        """One decision for every process after a backward pass: the whole batch's loss, and anyone's problem.

        Args:
            loss: this process's loss on its share of the batch.
            problem: why this process's step must not be taken (a non-finite loss or gradient), or None.

        Returns:
            The mean loss over the processes (the batch's cross-entropy when every share has as many labelled
            pixels), and this process's problem, or a sentence about another process's, or None if there is none.
        """
        mean_loss, share_with_problems = self.mean(loss, problem is not None)
        if problem is None and share_with_problems > 0:
            problem = "the loss, the gradients or the batch-norm statistics became inf or nan in another process"
        return mean_loss, problem

    def broadcast_buffers(self, model: nn.Module) -> None:
        """Copy process 0's buffers (batch-norm running statistics) into ``model`` in every process."""
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)

    def close(self, *, wait_for_others: bool = True) -> None:
        """Leave the run (destroy the process group); call it once training and writing are done.

        Every process waits here for the others first, so none tears the group down while process 0 still writes,
        and DDP wrappers no longer referenced are freed before the group (not while Python shuts down).

        Args:
            wait_for_others: False after an error: leave at once, and the others' next collective fails.
        """
        if dist.is_initialized():
            if wait_for_others:
                dist.barrier()
            gc.collect()
            dist.destroy_process_group()


def init_distributed(device: str | torch.device | None = None, *, timeout_s: float = 1800.0) -> Distributed | None:
    """Join the run that ``torchrun`` started, or return None when this process runs alone.

    Reads ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` from the environment and joins the other processes at
    ``MASTER_ADDR:MASTER_PORT``: with nccl on CUDA (process ``LOCAL_RANK`` on GPU ``LOCAL_RANK``), gloo on the CPU.

    Args:
        device: ``"cuda"`` or ``"cpu"``; None: ``segtutor.default_device()``.
        timeout_s: how long a collective operation waits for the slowest process before it fails.

    Returns:
        This process's :class:`Distributed`, or None if the environment names no run (started without torchrun).

    Example:
        >>> distributed = init_distributed()  # under `torchrun --nproc_per_node=2 ...`
        >>> distributed.rank, distributed.world_size
        (0, 2)
    """
    missing = [name for name in ENVIRONMENT if name not in os.environ]
    if len(missing) == len(ENVIRONMENT):
        return None
    if missing:
        raise ValueError(
            f"the environment names a distributed run but lacks {', '.join(missing)}: start the processes with "
            "torchrun (e.g. `torchrun --nproc_per_node=2 -m segtutor.train ...`), which sets them all"
        )
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    chosen = torch.device(device) if device is not None else default_device()
    # 1) one device per process: GPU LOCAL_RANK with nccl, or the CPU with gloo
    if chosen.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"process {rank} has LOCAL_RANK={local_rank} but this machine has {torch.cuda.device_count()} "
                "GPUs: start at most one process per GPU (torchrun --nproc_per_node=<number of GPUs>)"
            )
        chosen = torch.device("cuda", local_rank)
        torch.cuda.set_device(chosen)
        backend = "nccl"
    elif chosen.type == "cpu":
        backend = "gloo"
    else:
        raise ValueError(
            f"training over several processes runs on CUDA GPUs (nccl) or on the CPU (gloo), not on {chosen.type}; "
            "pass device='cpu' (--device cpu)"
        )
    # 2) meet the other processes (torchrun's MASTER_ADDR:MASTER_PORT)
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=rank, world_size=world_size, timeout=timedelta(seconds=timeout_s))
    return Distributed(rank=rank, world_size=world_size, device=chosen)
