"""Checkpoints: a save and a load give back the model, its settings and its history; other files are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import blob_dataset, tiny_net

from segtutor.models import COURSE_ASPP_RATES, create_model, list_models
from segtutor.train import TrainConfig, fit, infer_create_args, load_checkpoint, save_checkpoint


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


# ---- checkpoints ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list_models())
def test_infer_create_args_finds_the_factory_call(name):
    model = create_model(name, in_channels=1, num_classes=3, size="tiny")
    rates = {"aspp_rates": list(COURSE_ASPP_RATES)} if name.startswith("deeplab") else {}  # always named
    assert infer_create_args(model) == (name, {"in_channels": 1, "num_classes": 3, "size": "tiny", **rates})


def test_aspp_rates_are_found_saved_and_loaded_though_they_hold_no_weight(tmp_path):
    model = create_model("deeplabv3", size="tiny", seed=0, aspp_rates=[2, 4, 7])
    assert infer_create_args(model) == ("deeplabv3", {"in_channels": 3, "num_classes": 2, "size": "tiny",
                                                      "aspp_rates": [2, 4, 7]})  # fmt: skip
    save_checkpoint(tmp_path / "scaled.pt", model)
    assert load_checkpoint(tmp_path / "scaled.pt").model.aspp_rates == [2, 4, 7]
    with pytest.raises(ValueError, match="aspp_rates=\\[2, 4, 7\\]"):  # the paper's rates would load silently
        save_checkpoint(tmp_path / "wrong.pt", model, model_name="deeplabv3", model_kwargs={"size": "tiny"})


def test_a_checkpoint_names_its_aspp_rates_and_one_from_before_the_course_rates_loads_the_papers(tmp_path):
    model = create_model("deeplabv3", size="tiny", seed=0)
    save_checkpoint(tmp_path / "now.pt", model, model_name="deeplabv3", model_kwargs={"size": "tiny"})
    contents = torch.load(tmp_path / "now.pt", weights_only=True)
    assert contents["model_kwargs"]["aspp_rates"] == list(COURSE_ASPP_RATES)
    del contents["model_kwargs"]["aspp_rates"]  # as segtutor wrote DeepLab files when its sizes took the paper's rates
    torch.save(contents, tmp_path / "before.pt")
    loaded = load_checkpoint(tmp_path / "before.pt")
    assert loaded.model.aspp_rates == [12, 24, 36] == loaded.model_kwargs["aspp_rates"]  # the network it was trained as
    assert torch.equal(loaded.model.state_dict()["head.aspp.convs.1.0.weight"], model.state_dict()["head.aspp.convs.1.0.weight"])


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
        # the same weights; fit may have left the model channels_last, whose convolutions round differently
        torch.testing.assert_close(loaded.model(images), model(images), rtol=1e-5, atol=1e-6)
    assert not loaded.model.training


def test_load_checkpoint_rejects_other_files(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="not a segtutor checkpoint"):
        load_checkpoint(path)
    with pytest.raises(ValueError, match="model_name"):
        save_checkpoint(tmp_path / "x.pt", tiny_net())


# ---- a save never destroys work, a load never hides a problem ----------------------------------------------------
def test_damaged_weights_fail_the_checksum(tmp_path):
    model = create_model("unet", size="tiny")
    path = tmp_path / "unet.pt"
    save_checkpoint(path, model)
    content = bytearray(path.read_bytes())
    weight = model.state_dict()["classifier.weight"].numpy().tobytes()
    start = content.find(weight)
    assert start > 0  # torch stores tensors uncompressed: the weight's bytes are in the file as they are
    content[start + 4 : start + 8] = b"\x00\x00\x80\x7f"  # one float of the weight overwritten
    path.write_bytes(bytes(content))
    with pytest.raises(ValueError, match="unet.pt: the weights are damaged: their checksum differs"):
        load_checkpoint(path)


def test_save_refuses_create_args_that_cannot_rebuild_the_model(tmp_path):
    model = create_model("unet", size="tiny")
    path = tmp_path / "unet.pt"
    with pytest.raises(ValueError, match="create_model\\('unet', \\*\\*\\{\\}\\) builds a model with .* so the "
                       "checkpoint could never be loaded.*model_kwargs=\\{'in_channels': 3, 'num_classes': 2, "
                       "'size': 'tiny'\\}"):  # fmt: skip
        save_checkpoint(path, model, model_name="unet", model_kwargs={})
    assert not path.exists()
    save_checkpoint(path, model, model_name="unet")  # the name alone: its size is found
    assert load_checkpoint(path).model_kwargs == {"in_channels": 3, "num_classes": 2, "size": "tiny"}


def test_numpy_numbers_in_the_settings_round_trip_and_other_objects_are_refused(tmp_path):
    config = TrainConfig(lr=np.float64(3e-3), max_iters=np.int64(4), class_weights=[np.float32(1.0), 2.0])
    path = tmp_path / "unet.pt"
    save_checkpoint(path, create_model("unet", size="tiny"), config=config, class_names=[np.str_("a"), "b"])
    loaded = load_checkpoint(path)
    assert loaded.config == config and type(loaded.config.lr) is float and loaded.class_names == ["a", "b"]
    with pytest.raises(ValueError, match="class_names\\[1\\] holds a pathlib.PosixPath .* convert it"):
        save_checkpoint(path, create_model("unet", size="tiny"), class_names=["a", tmp_path])


def test_a_save_that_fails_midway_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "unet.pt"
    first = create_model("unet", size="tiny", seed=1)
    save_checkpoint(path, first)
    before = path.read_bytes()

    def full_disk(contents, target):
        with open(target, "wb") as file:
            file.write(b"PK\x03\x04 half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, create_model("unet", size="tiny", seed=2))
    monkeypatch.undo()
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["unet.pt"]
    loaded = load_checkpoint(path).model
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), first.state_dict().values()))


def test_empty_and_text_files_are_named_for_what_they_are(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="empty.pt is empty \\(0 bytes\\): the save that wrote it did not finish"):
        load_checkpoint(tmp_path / "empty.pt")
    (tmp_path / "notes.pt").write_text("trained on 12 slides, lr 1e-3\n")
    with pytest.raises(ValueError, match="notes.pt is not a file torch wrote: it looks like a text file"):
        load_checkpoint(tmp_path / "notes.pt")
    torch.save({"weight": np.float64(1.0)}, tmp_path / "pickled.pt")  # objects a safe load refuses
    with pytest.raises(ValueError, match="pickled.pt asks to rebuild Python objects that a safe load"):
        load_checkpoint(tmp_path / "pickled.pt")


def test_unknown_settings_are_skipped_with_a_warning_and_the_weights_load(tmp_path):
    model = create_model("unet", size="tiny")
    path = tmp_path / "unet.pt"
    data = blob_dataset(count=8)
    config = TrainConfig(batch_size=4, max_iters=2)
    history = fit(model, data, blob_dataset(count=4, seed=1), config)
    save_checkpoint(path, model, config=config, history=history)
    contents = torch.load(path, weights_only=True)
    contents["config"]["warmup_steps"] = 100  # a field a newer segtutor added
    contents["history"]["evaluations"][0]["boundary_f"] = 0.5
    torch.save(contents, path)
    with pytest.warns(UserWarning, match="the weights are loaded, but this segtutor skipped config field\\(s\\) "
                      "'warmup_steps'; evaluation field\\(s\\) 'boundary_f'"):  # fmt: skip
        loaded = load_checkpoint(path)
    assert loaded.config == config and loaded.history.losses == history.losses
    assert loaded.skipped == ["config field(s) 'warmup_steps'", "evaluation field(s) 'boundary_f'"]
    assert all(torch.equal(a, b) for a, b in zip(loaded.model.state_dict().values(), model.state_dict().values()))


def test_the_torch_floor_is_one_whose_safe_loading_has_no_known_holes():
    from pathlib import Path

    import segtutor.train.checkpoint as checkpoint

    root = Path(__file__).resolve().parents[1]
    for name in ("requirements.txt", "pyproject.toml"):
        assert "torch>=2.10,<2.14" in (root / name).read_text(), name
    assert tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2]) >= (2, 10)
    doc = " ".join(checkpoint.__doc__.split())
    assert "CVE-2025-32434" in doc and "It is not a guarantee" in doc and "sources you trust" in doc
