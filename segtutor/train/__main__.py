"""Train a model from the command line, in one process or, under torchrun, in several: ``python -m segtutor.train``.

One process (this machine's default device)::

    python -m segtutor.train --model unet --size small --data my_folder --max-seconds 600 --out runs/unet

Four processes, one per GPU (``torchrun`` starts them; see :mod:`segtutor.train.distributed`)::

    torchrun --nproc_per_node=4 -m segtutor.train --model unet --data my_folder --max-seconds 600 --out runs/unet

``--data FOLDER`` reads ``FOLDER/images`` and ``FOLDER/masks`` (a :class:`~segtutor.data.FolderDataset`, checked by
``preflight`` first); ``--generated N`` trains on N generated tissue tiles instead. ``--batch-size`` is the batch of
all processes together, so the same command trains the same way on 1 or 4 GPUs. The run writes
``OUT/checkpoint.pt`` (read it with ``load_checkpoint``) and ``OUT/history.json`` (``History.from_dict``), from
process 0 only. Run ``python -m segtutor.train --help`` for every option.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from torch import nn
from torch.utils.data import Dataset

from segtutor.data import FolderDataset, TissueDataset
from segtutor.models import SIZES, create_model, list_models
from segtutor.train.callbacks import Callback, PrintProgress
from segtutor.train.checkpoint import save_checkpoint
from segtutor.train.config import LOSSES, OPTIMIZERS, SCHEDULES, TrainConfig
from segtutor.train.distributed import Distributed, init_distributed
from segtutor.train.trainer import Trainer

# TrainConfig fields the command sets when given; the others keep TrainConfig's defaults
CONFIG_OPTIONS = (
    "lr", "optimizer", "weight_decay", "batch_size", "max_iters", "num_epochs", "max_seconds", "loss", "schedule",
    "eval_every", "seed", "device", "num_threads", "num_workers",
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The command's options; ``python -m segtutor.train --help`` prints them."""
    parser = argparse.ArgumentParser(
        prog="python -m segtutor.train",
        description="Train a segmentation model on a folder of images and masks or on generated tissue tiles; "
        "under torchrun, in several processes with DistributedDataParallel.",
    )
    model = parser.add_argument_group("model")
    model.add_argument("--model", choices=list_models(), default="unet", help="architecture (default: unet)")
    sizes = sorted({size for by_size in SIZES.values() for size in by_size})
    model.add_argument("--size", choices=sizes, default="small", help="model size (default: small)")
    model.add_argument(
        "--sync-batch-norm",
        action="store_true",
        help="under torchrun on GPUs: batch norm over the whole batch (nn.SyncBatchNorm), not each process's share",
    )

    data = parser.add_argument_group("data")
    source = data.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, metavar="FOLDER", help="train on FOLDER/images and FOLDER/masks")
    source.add_argument("--generated", type=int, metavar="N", help="train on N generated tissue tiles")
    data.add_argument("--val-data", type=Path, metavar="FOLDER", help="validate on FOLDER/images and FOLDER/masks")
    data.add_argument("--val-generated", type=int, metavar="M", help="validate on M other generated tiles (N // 4)")
    data.add_argument("--tile-size", type=int, default=128, help="generated tiles' side, or --data crops' (128)")
    data.add_argument("--crops-per-image", type=int, default=1, help="random crops per --data image (default: 1)")
    data.add_argument("--class-names", nargs="+", metavar="NAME", help="a name per class, e.g. stroma tumor")
    data.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="flips, quarter turns and colour jitter on the training data (default: on)",
    )

    training = parser.add_argument_group("training (TrainConfig; options not given keep its defaults)")
    training.add_argument("--max-seconds", type=float, help="budget in seconds of training")
    training.add_argument("--max-iters", type=int, help="budget in optimizer steps")
    training.add_argument("--num-epochs", type=int, help="budget in passes over the training data")
    training.add_argument("--lr", type=float, help="peak learning rate")
    training.add_argument("--batch-size", type=int, help="images per step of all processes together")
    training.add_argument("--optimizer", choices=OPTIMIZERS)
    training.add_argument("--weight-decay", type=float)
    training.add_argument("--loss", choices=LOSSES)
    training.add_argument("--schedule", choices=SCHEDULES)
    training.add_argument("--eval-every", type=int, help="evaluate every this many steps (default: once per epoch)")
    training.add_argument("--seed", type=int, help="seeds the weights, the data order and the augmentation")
    training.add_argument("--device", help="cpu, cuda or mps (default: the fastest; under torchrun cuda:LOCAL_RANK)")
    training.add_argument("--num-threads", type=int, help="torch CPU threads per process")
    training.add_argument("--num-workers", type=int, help="DataLoader worker processes per process")

    output = parser.add_argument_group("output")
    output.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for checkpoint.pt, history.json")
    output.add_argument("--print-every", type=float, default=5.0, help="seconds between progress lines (default: 5)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with ``argv`` (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 if the run completed, 1 if it diverged or failed.

    Example:
        >>> main(["--generated", "64", "--tile-size", "64", "--max-seconds", "30", "--out", "runs/try"])
        0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    # 1) this process's place: alone, or one of the processes torchrun started
    try:
        distributed = init_distributed(args.device)
    except ValueError as error:
        parser.error(str(error))
    completed = False
    try:
        status = train(parser, args, distributed)
        completed = True
        return status
    finally:
        if distributed is not None:
            distributed.close(wait_for_others=completed)


def train(parser: argparse.ArgumentParser, args: argparse.Namespace, distributed: Distributed | None) -> int:
    """Steps 2 to 5 of :func:`main`: the settings, the data and the model, the run, the files."""
    # 2) the settings: the options given, TrainConfig's defaults for the rest
    settings = {name: getattr(args, name) for name in CONFIG_OPTIONS if getattr(args, name) is not None}
    if distributed is not None:
        settings["device"] = str(distributed.device)
    try:
        config = TrainConfig(**settings)
    except ValueError as error:
        parser.error(str(error))
    if args.sync_batch_norm and (distributed is None or distributed.device.type != "cuda"):
        parser.error("--sync-batch-norm needs several processes on CUDA GPUs (torchrun --nproc_per_node=<GPUs>)")
    is_main = distributed is None or distributed.is_main
    if is_main:
        args.out.mkdir(parents=True, exist_ok=True)  # before training: a folder that cannot be made fails now

    # 3) the data and the model, the same initial weights in every process (DDP also copies process 0's)
    world_size = distributed.world_size if distributed is not None else 1
    train_data, val_data = make_data(parser, args, config.seed, world_size)
    model_kwargs = {"in_channels": 3, "num_classes": train_data.num_classes, "size": args.size}
    model = create_model(args.model, **model_kwargs, seed=config.seed)
    if args.sync_batch_norm:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)

    # 4) the run: the Trainer's loop, in every process
    callbacks: list[Callback] = [PrintProgress(every_seconds=args.print_every)] if is_main else []
    if is_main:
        processes = f"{world_size} processes on {config.device}" if distributed is not None else "one process"
        print(f"training {args.model} ({args.size}) on {len(train_data)} samples, {processes}: {config}", flush=True)
    history = Trainer(model, train_data, val_data, config, callbacks=callbacks, distributed=distributed).run()

    # 5) the files, written once, by process 0
    if is_main:
        checkpoint, history_file = args.out / "checkpoint.pt", args.out / "history.json"
        save_checkpoint(
            checkpoint, model, config=config, history=history, model_name=args.model, model_kwargs=model_kwargs
        )
        history_file.write_text(json.dumps(history.to_dict(), indent=1))  # NaN (an absent class) as NaN
        print(f"wrote {checkpoint} and {history_file}", flush=True)
    return 0 if history.status == "completed" else 1


def make_data(
    parser: argparse.ArgumentParser, args: argparse.Namespace, seed: int, world_size: int
) -> tuple[Dataset, Dataset | None]:
    """The training data and the validation data (or None) the options ask for."""
    class_names = args.class_names
    if args.generated is not None:
        if args.val_data is not None:
            parser.error("--val-data goes with --data; with --generated, give --val-generated M")
        classes = class_names if class_names is not None else ("stroma", "tumor")
        num_val = args.val_generated if args.val_generated is not None else max(args.generated // 4, world_size)
        try:
            train_data = TissueDataset(args.generated, args.tile_size, seed=seed, classes=classes, augment=args.augment)
            val_data = TissueDataset(num_val, args.tile_size, seed=seed + 1, classes=classes) if num_val else None
        except ValueError as error:
            parser.error(str(error))
        return train_data, val_data
    if args.val_generated is not None:
        parser.error("--val-generated goes with --generated; with --data, give --val-data FOLDER")
    crops = dict(crop_size=args.tile_size, crops_per_image=args.crops_per_image, seed=seed)
    try:
        train_data = FolderDataset(
            args.data / "images", args.data / "masks", class_names=class_names, augment=args.augment, **crops
        )
        val_data = None
        if args.val_data is not None:
            names = train_data.class_names
            val_data = FolderDataset(args.val_data / "images", args.val_data / "masks", class_names=names, **crops)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    return train_data, val_data


if __name__ == "__main__":
    sys.exit(main())
