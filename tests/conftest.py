"""Shared test set-up: the devices to run on, and skips for hardware this machine lacks."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
import torch

# Training sessions take turns for the cores with every run that shares this folder (segtutor.train.CpuShare): the
# tests' runs, and the kernels of the servers they start, share one of their own, not other test runs' or a class's.
os.environ.setdefault("SEGTUTOR_CPU_SHARE_DIR", tempfile.mkdtemp(prefix="segtutor-cpu-share-tests-"))

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def cpu_and_cuda() -> list:
    """``["cpu", "cuda"]`` as pytest params; the cuda case carries the ``cuda`` mark."""
    return ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def pytest_collection_modifyitems(config, items):
    skip_cuda = pytest.mark.skip(reason="no CUDA GPU on this machine")
    skip_browser = pytest.mark.skip(reason="no chromium on PATH: `apt-get install chromium` (see .ci/run)")
    for item in items:
        if "cuda" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_cuda)
        if "browser" in item.keywords and CHROMIUM is None:
            item.add_marker(skip_browser)


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same global seed (library code never relies on it)."""
    torch.manual_seed(0)
    yield


@pytest.fixture
def one_thread():
    """One torch thread: tiny steps gain nothing from two, and lose a lot when the machine is busy.

    Use it per module with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def train_data():
    """Eight generated 32-pixel tissue tiles: enough for a few steps of a tiny model."""
    from segtutor.data import TissueDataset

    return TissueDataset(8, 32, seed=0)


@pytest.fixture(scope="module")
def val_data():
    """Four generated 32-pixel validation tiles (another seed than ``train_data``)."""
    from segtutor.data import TissueDataset

    return TissueDataset(4, 32, seed=1)
