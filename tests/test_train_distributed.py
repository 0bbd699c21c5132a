"""Training over several processes: 2 gloo processes on this CPU train the weights 1 process trains on the same batches.

Also the command line (``python -m segtutor.train``), alone and in 2 processes with a time budget, and the errors.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from helpers import png_bytes

from segtutor.data import TissueDataset
from segtutor.models import UNet, create_model
from segtutor.train import History, TrainConfig, Trainer, load_checkpoint
from segtutor.train.__main__ import build_parser, main
from segtutor.train.distributed import Distributed, init_distributed

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py

JOIN_S = 120  # bound on the whole 2-process run; a process waiting for a partner that never comes fails after it
# Batch norm normalises each process's half of the batch with the half's own statistics, so only a model without it
# trains exactly the weights of one process; Adam, a cosine schedule, 2 epochs and 2 evaluations, all the same.
CONFIG = dict(lr=1e-2, batch_size=4, max_iters=4, eval_every=2, device="cpu", num_threads=1)


def plain_unet() -> UNet:
    """A tiny UNet without batch norm (and without dropout): nothing in it depends on how the batch is split."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return UNet(3, 2, channels=[4, 8, 16, 32, 64], batch_norm=False)


def tiles() -> tuple[TissueDataset, TissueDataset]:
    return TissueDataset(8, 32, seed=0, augment=True), TissueDataset(4, 32, seed=1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _train_in_process(rank: int, world_size: int, port: int, folder: str) -> None:
    """One of the processes torchrun would start: (1) 4 steps of the plain UNet, (2) the command, a 1 s budget."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
    )  # fmt: skip
    with open(f"{folder}/stderr-{rank}.txt", "w") as log:  # what C++ prints before an abort, for the failure report
        os.dup2(log.fileno(), 2)
    torch.set_num_threads(1)
    distributed = init_distributed("cpu", timeout_s=JOIN_S)
    # 1) the library: a Trainer given this process's place
    model = plain_unet()
    train_data, val_data = tiles()
    history = Trainer(model, train_data, val_data, TrainConfig(**CONFIG), distributed=distributed).run()
    torch.save({"state_dict": model.state_dict(), "history": history.to_dict()}, f"{folder}/steps-{rank}.pt")
    # 2) the command under "torchrun": a small UNet with batch norm, a time budget every process must end together
    main([
        "--model", "unet", "--size", "tiny", "--generated", "8", "--tile-size", "32", "--batch-size", "4",
        "--max-seconds", "1", "--device", "cpu", "--num-threads", "1", "--out", f"{folder}/command",
    ])  # fmt: skip
    # main() ended the run: it closes the process group, as after a command torchrun started


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """Run :func:`_train_in_process` in 2 processes; the folder holds what they wrote."""
    folder = tmp_path_factory.mktemp("ddp")
    context = mp.start_processes(
        _train_in_process, args=(2, free_port(), str(folder)), nprocs=2, join=False, start_method="spawn"
    )
    deadline = time.monotonic() + JOIN_S
    try:
        while not context.join(timeout=1):  # raises if a process failed (and ends the other)
            if time.monotonic() > deadline:
                pytest.fail(f"the 2 training processes did not finish within {JOIN_S} s (waiting for each other?)")
    except (mp.ProcessExitedException, mp.ProcessRaisedException) as error:
        logs = "\n".join(f"--- process {rank}:\n{(folder / f'stderr-{rank}.txt').read_text()[-3000:]}" for rank in (0, 1))
        pytest.fail(f"{error}\n{logs}")
    finally:
        for process in context.processes:
            if process.is_alive():
                process.terminate()
    return folder


def test_two_processes_train_the_weights_of_one_process_on_the_same_global_batch(two_processes):
    ranks = [torch.load(two_processes / f"steps-{rank}.pt", weights_only=True) for rank in (0, 1)]
    model = plain_unet()
    train_data, val_data = tiles()
    alone = Trainer(model, train_data, val_data, TrainConfig(**CONFIG)).run()
    # the two copies are one model: the same averaged gradients, the same steps
    for key, value in ranks[0]["state_dict"].items():
        assert torch.equal(ranks[1]["state_dict"][key], value), key
    # ... the model one process trains with the whole batch of 4 (each process took 2)
    weights = ranks[0]["state_dict"]
    difference = max((weights[key] - value).abs().max().item() for key, value in model.state_dict().items())
    print(f"max |2 processes - 1 process| over the weights after 4 steps: {difference:.2e}")
    assert difference < 1e-6
    assert max(value.abs().max().item() for value in model.state_dict().values()) > 0.1  # real weights compared
    assert not torch.equal(weights["classifier.weight"], plain_unet().state_dict()["classifier.weight"])  # trained
    # the histories agree: losses of the whole batch, the same lrs, one clock, the same scores in both processes
    histories = [History.from_dict(rank["history"]) for rank in ranks]
    for history in histories:
        assert history.status == "completed" and history.images_seen == 16
        assert history.losses == pytest.approx(alone.losses, rel=1e-5) and history.lrs == pytest.approx(alone.lrs)
        assert history.val_iterations == alone.val_iterations == [2, 4]
        assert history.val_losses == pytest.approx(alone.val_losses, rel=1e-5)
        assert np.allclose(history.evaluations[-1].iou, alone.evaluations[-1].iou, atol=1e-4)
    assert histories[0].losses == histories[1].losses and histories[0].seconds == histories[1].seconds
    assert histories[0].evaluations[-1].iou == histories[1].evaluations[-1].iou


def test_the_command_in_two_processes_ends_together_and_process_0_writes(two_processes):
    folder = two_processes / "command"
    assert sorted(path.name for path in folder.iterdir()) == ["checkpoint.pt", "history.json"]
    history = History.from_dict(json.loads((folder / "history.json").read_text()))
    assert history.status == "completed" and history.train_seconds >= 1  # both processes reached the time budget
    assert history.images_seen == 4 * len(history.losses)  # every step a batch of 4, 2 from each process
    checkpoint = load_checkpoint(folder / "checkpoint.pt")
    assert checkpoint.config.batch_size == 4 and checkpoint.config.max_seconds == 1
    assert checkpoint.history.losses == history.losses
    assert (checkpoint.model_name, checkpoint.model_kwargs["size"]) == ("unet", "tiny")


# ---- the command in one process ----------------------------------------------------------------------------
def test_the_command_alone_writes_a_checkpoint_and_a_history(tmp_path, capsys):
    out = tmp_path / "run"
    status = main([
        "--model", "unet", "--size", "tiny", "--generated", "8", "--val-generated", "4", "--tile-size", "32",
        "--batch-size", "4", "--max-iters", "3", "--lr", "0.01", "--seed", "2", "--out", str(out),
    ])  # fmt: skip
    assert status == 0
    history = History.from_dict(json.loads((out / "history.json").read_text()))
    assert history.status == "completed" and len(history.losses) == 3 and history.val_iterations == [2, 3]
    checkpoint = load_checkpoint(out / "checkpoint.pt")
    assert checkpoint.class_names == ["stroma", "tumor"] and checkpoint.history.losses == history.losses
    assert (checkpoint.config.lr, checkpoint.config.seed, checkpoint.config.max_iters) == (0.01, 2, 3)
    untrained = create_model("unet", size="tiny", seed=2)  # the command's initial weights, from the seed
    trained = checkpoint.model.state_dict()
    assert not all(torch.equal(trained[key], value) for key, value in untrained.state_dict().items())
    assert checkpoint.model(torch.rand(1, 3, 32, 32)).shape == (1, 2, 32, 32)
    assert f"wrote {out / 'checkpoint.pt'}" in capsys.readouterr().out


def test_the_command_trains_on_a_folder_for_a_time_budget(tmp_path):
    rng = np.random.default_rng(0)
    for folder in ("images", "masks"):
        (tmp_path / "data" / folder).mkdir(parents=True)
    for index in range(4):
        mask = np.zeros((40, 48), dtype=np.uint8)
        mask[10:30, 5 + index : 25 + index] = 1
        image = rng.integers(0, 100, (40, 48, 3), dtype=np.uint8) + 120 * mask[..., None].astype(np.uint8)
        (tmp_path / "data" / "images" / f"tile{index}.png").write_bytes(png_bytes(image))
        (tmp_path / "data" / "masks" / f"tile{index}.png").write_bytes(png_bytes(mask))
    data, out = str(tmp_path / "data"), tmp_path / "run"
    status = main([
        "--model", "fcn8s", "--size", "tiny", "--data", data, "--val-data", data, "--tile-size", "32",
        "--crops-per-image", "2", "--class-names", "background", "blob", "--batch-size", "4", "--max-seconds", "0.5",
        "--out", str(out),
    ])  # fmt: skip
    assert status == 0
    checkpoint = load_checkpoint(out / "checkpoint.pt")
    assert checkpoint.class_names == ["background", "blob"] and checkpoint.model_name == "fcn8s"
    assert checkpoint.history.status == "completed" and checkpoint.history.train_seconds >= 0.5
    assert checkpoint.history.evaluations  # scored on the validation folder


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--generated", "8"], "TrainConfig needs a budget"),
        (["--max-iters", "2"], "one of the arguments --data --generated is required"),
        (["--generated", "8", "--max-iters", "2", "--val-data", "x"], "--val-data goes with --data"),
        (["--generated", "8", "--max-iters", "2", "--sync-batch-norm"], "--sync-batch-norm needs several processes"),
        (["--data", "nowhere", "--max-iters", "2"], "nowhere"),
    ],
)
def test_the_command_explains_bad_options(tmp_path, capsys, arguments, message):
    with pytest.raises(SystemExit) as stopped:
        main([*arguments, "--out", str(tmp_path / "run")])
    assert stopped.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_the_readmes_torchrun_commands_parse():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    joined = readme.replace("\\\n", " ")  # a command continued on the next line, in one line
    commands = re.findall(r"^torchrun (.*-m segtutor\.train .*)$", joined, re.M)
    assert len(commands) >= 2  # one for GPUs, one for the CPU
    for command in commands:
        launcher, arguments = command.split("-m segtutor.train")
        options = build_parser().parse_args(shlex.split(arguments.split("#")[0]))
        assert options.max_seconds == 600 and options.data == Path("my_folder") and "--nproc_per_node" in launcher


# ---- where a process stands ---------------------------------------------------------------------------------
def test_alone_without_torchrun_and_a_clear_error_for_half_an_environment(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert init_distributed() is None
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="lacks MASTER_ADDR, MASTER_PORT: start the processes with torchrun"):
        init_distributed("cpu")


def test_batch_and_validation_shares():
    second = Distributed(rank=1, world_size=2, device=torch.device("cpu"))
    assert second.local_batch_size(8) == 4 and not second.is_main
    with pytest.raises(ValueError, match="batch_size=3 does not split evenly over 2 processes.*e.g. 2"):
        second.local_batch_size(3)
    assert list(second.shard(TissueDataset(5, 32)).indices) == [1, 3]  # every sample in one process, none twice
    with pytest.raises(ValueError, match="1 samples, fewer than the 2 processes"):
        second.shard(TissueDataset(1, 32))
