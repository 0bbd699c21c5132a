"""Pretrained encoders: shipped with their records, loaded into the encoder only, frozen on request, and the
first batch of a fit checked against the input they were pretrained on."""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from segtutor.data import LABS, TissueDataset
from segtutor.models import (
    check_input_statistics,
    create_model,
    freeze_encoder,
    list_pretrained,
    load_pretrained_encoder,
)
from segtutor.models import transfer as transfer_module
from segtutor.models.transfer import ENCODERS, PRETRAINED_DIR, encoder_state, pretraining_record
from segtutor.train import TrainConfig, fit

pytestmark = pytest.mark.usefixtures("one_thread")
NAMES = list(ENCODERS)


class Scaled(Dataset):
    """A dataset's images times ``factor`` plus ``shift``: 0–255 pixels, standardised ones, or dark ones."""

    def __init__(self, data: Dataset, factor: float, shift: float = 0.0):
        self.data, self.factor, self.shift = data, factor, shift
        self.class_names = data.class_names

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        image, mask = self.data[index]
        return image * self.factor + self.shift, mask


def test_every_small_model_ships_an_encoder_with_its_record():
    assert sorted(list_pretrained()) == sorted((name, "small") for name in NAMES)
    total = 0
    for name in NAMES:
        record = json.loads((PRETRAINED_DIR / f"{name}_small.json").read_text())
        weights = PRETRAINED_DIR / record["weights"]
        total += weights.stat().st_size
        assert hashlib.sha256(weights.read_bytes()).hexdigest() == record["sha256"]
        assert "BSD-3-Clause" in record["license"] and record["recipe"]["model"] == name
        assert record["recipe"]["seed"] == 0 and record["recipe"]["num_threads"] >= 1 and record["recipe"]["steps"] > 0
        assert set(record["encoder"]) == set(ENCODERS[name])
        mean, std = np.array(record["input"]["mean"]), np.array(record["input"]["std"])
        assert record["input"]["value_range"] == [0.0, 1.0] and ((0.3 < mean) & (mean < 0.95)).all() and (std > 0).all()
    assert total < 5_000_000  # they travel inside the wheel: a few MB in all


@pytest.mark.parametrize("name", NAMES)
def test_only_the_encoder_is_loaded_and_the_rest_keeps_its_fresh_weights(name):
    model = create_model(name, num_classes=4, seed=3, pretrained=True)
    fresh = create_model(name, num_classes=4, seed=3)
    stored = torch.load(PRETRAINED_DIR / f"{name}_small.pt", weights_only=True)
    own, fresh_state = model.state_dict(), fresh.state_dict()
    assert set(stored) == set(encoder_state(model, name)) and len(stored) > 0
    for key, value in own.items():
        if key in stored:
            assert torch.equal(value, stored[key].to(value.dtype)), key
        else:
            assert torch.equal(value, fresh_state[key]), key  # decoder, classifier: as create_model drew them
    changed = [key for key in stored if stored[key].is_floating_point() and not torch.equal(own[key], fresh_state[key])]
    assert len(changed) > len(stored) // 2
    assert model.pretraining.name == name and model.pretraining == pretraining_record(name)
    assert model(torch.rand(2, 3, 48, 48)).shape == (2, 4, 48, 48)


def test_pretrained_needs_rgb_a_shipped_size_and_a_known_class():
    with pytest.raises(ValueError, match="RGB images"):
        create_model("unet", in_channels=1, pretrained=True)
    with pytest.raises(ValueError, match="no pretrained encoder for 'unet' size 'tiny'; segtutor ships: .*'unet' size"):
        create_model("unet", size="tiny", pretrained=True)
    with pytest.raises(TypeError, match="not for Linear"):
        load_pretrained_encoder(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="does not have the encoder"):
        load_pretrained_encoder(create_model("unet", size="tiny"), "small")  # a tiny model, small weights


def test_a_changed_weights_file_is_refused(tmp_path, monkeypatch):
    for path in PRETRAINED_DIR.glob("unet_small.*"):
        shutil.copy(path, tmp_path / path.name)
    content = bytearray((tmp_path / "unet_small.pt").read_bytes())
    content[-100] ^= 0xFF
    (tmp_path / "unet_small.pt").write_bytes(bytes(content))
    monkeypatch.setattr(transfer_module, "PRETRAINED_DIR", tmp_path)
    with pytest.raises(ValueError, match="does not match its record's sha256"):
        create_model("unet", pretrained=True)


def test_a_frozen_encoder_keeps_its_weights_while_the_decoder_learns():
    model = freeze_encoder(create_model("unet", seed=0, pretrained=True))
    learning = {key for key, p in model.named_parameters() if p.requires_grad}
    assert learning == {key for key, _ in model.named_parameters() if not key.startswith("encoder.")}
    before = {key: value.clone() for key, value in model.state_dict().items()}
    fit(model, TissueDataset(4, 32, seed=0), None, TrainConfig(max_iters=2, batch_size=2, device="cpu"))
    after = model.state_dict()
    for key, p in model.named_parameters():
        assert torch.equal(after[key], before[key]) == key.startswith("encoder."), key
    assert freeze_encoder(model, frozen=False) is model and all(p.requires_grad for p in model.parameters())


def test_input_statistics_scale_is_an_error_and_colour_a_warning():
    model = create_model("unet", pretrained=True)
    tiles = torch.stack([TissueDataset(4, 48, seed=2, lab=lab)[i][0] for lab in LABS for i in range(4)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # labs A, B and C look like the pretraining tiles: no warning
        check_input_statistics(model, tiles)
        check_input_statistics(create_model("unet"), tiles * 255)  # not pretrained: nothing to check
    with pytest.raises(ValueError, match=r"values up to 2\d\d.*0–255 pixels. Divide the images by 255"):
        check_input_statistics(model, tiles * 255)
    standardised = (tiles - tiles.mean((0, 2, 3), keepdim=True)) / tiles.std((0, 2, 3), keepdim=True)
    with pytest.raises(ValueError, match="looks standardised"):
        check_input_statistics(model, standardised)
    with pytest.warns(UserWarning, match=r"far from those of unet's pretraining tiles .* standard deviations in"):
        check_input_statistics(model, tiles * 0.3)  # dark: in range, but not H&E-like


def test_fit_checks_the_first_batch_against_the_pretraining_input():
    data = TissueDataset(4, 32, seed=0)
    config = TrainConfig(max_iters=1, batch_size=2, device="cpu")
    with pytest.raises(ValueError, match="Divide the images by 255"):
        fit(create_model("unet", pretrained=True), Scaled(data, 255.0), None, config)
    with pytest.warns(UserWarning, match="stain-normalise"):
        history = fit(create_model("unet", pretrained=True), Scaled(data, 0.3), None, config)
    assert history.status == "completed"
    with pytest.raises(ValueError, match="0-255 pixel values"):  # from scratch too: the networks take [0, 1]
        fit(create_model("unet"), Scaled(data, 255.0), None, config)
