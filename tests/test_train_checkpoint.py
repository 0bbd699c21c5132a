"""Checkpoints: a save and a load give back the model, its settings and its history; other files are refused."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import blob_dataset, tiny_net

from segtutor.models import create_model, list_models
from segtutor.train import TrainConfig, fit, infer_create_args, load_checkpoint, save_checkpoint


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


# ---- checkpoints ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list_models())
def test_infer_create_args_finds_the_factory_call(name):
    model = create_model(name, in_channels=1, num_classes=3, size="tiny")
    assert infer_create_args(model) == (name, {"in_channels": 1, "num_classes": 3, "size": "tiny"})


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = create_model("unet", size="tiny")
    data = blob_dataset(count=8, size=32)
    config = TrainConfig(batch_size=4, max_iters=4, lr=1e-2)
    history = fit(model, data, data, config, class_names=["background", "disc"])
    path = tmp_path / "unet.pt"
    save_checkpoint(path, model, config=config, history=history)

    loaded = load_checkpoint(path)
    assert (loaded.model_name, loaded.model_kwargs["size"]) == ("unet", "tiny")
    assert loaded.class_names == ["background", "disc"] and loaded.config == config
    assert json.dumps(loaded.history.to_dict()) == json.dumps(history.to_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key
    model.eval()
    images = data.tensors[0][:2]
    with torch.no_grad():
        assert torch.equal(loaded.model(images), model(images))
    assert not loaded.model.training


def test_load_checkpoint_rejects_other_files(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="not a segtutor checkpoint"):
        load_checkpoint(path)
    with pytest.raises(ValueError, match="model_name"):
        save_checkpoint(tmp_path / "x.pt", tiny_net())
