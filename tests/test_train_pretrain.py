"""The pretraining recipe: the same weights every run on a CPU, saved as the encoder only, loaded back."""

from __future__ import annotations

import json

import numpy as np
import torch

from segtutor.models import create_model
from segtutor.models import transfer as transfer_module
from segtutor.train.pretrain import PretrainRecipe, input_statistics, pretrain_encoder, pretraining_data, save_encoder

TINY = PretrainRecipe("unet", num_tiles=8, tile_size=32, steps=3, batch_size=4, val_tiles=2, num_threads=1)


def test_the_recipe_gives_the_same_weights_twice_and_records_itself(tmp_path):
    first, record = pretrain_encoder(TINY)
    second, _ = pretrain_encoder(TINY)
    paths = [save_encoder(model, record, tmp_path / name) for model, name in ((first, "a"), (second, "b"))]
    assert paths[0].read_bytes() == paths[1].read_bytes()
    written = json.loads(paths[0].with_suffix(".json").read_text())
    assert written["recipe"]["steps"] == 3 and written["recipe"]["seed"] == 0 and written["weights"] == "unet_small.pt"
    assert set(written["scores of the whole pretrained network"]) == {f"tumor IoU, lab {lab}" for lab in "ABC"}
    assert written["versions"]["torch"] == torch.__version__ and "BSD-3-Clause" in written["license"]
    stored = torch.load(paths[0], weights_only=True)
    assert all(key.startswith("encoder.") for key in stored) and stored["encoder.0.0.weight"].dtype == torch.float16
    # Another seed, other weights.
    other, _ = pretrain_encoder(PretrainRecipe(**{**TINY.__dict__, "seed": 1}))
    assert not torch.equal(other.state_dict()["encoder.0.0.weight"], first.state_dict()["encoder.0.0.weight"])


def test_saved_encoder_loads_back_into_a_new_model(tmp_path, monkeypatch):
    model, record = pretrain_encoder(TINY)
    save_encoder(model, record, tmp_path)
    monkeypatch.setattr(transfer_module, "PRETRAINED_DIR", tmp_path)
    loaded = create_model("unet", num_classes=5, pretrained=True)
    trained = model.state_dict()
    for key, value in loaded.state_dict().items():
        if key.startswith("encoder.") and value.is_floating_point():
            assert torch.equal(value, trained[key].half().float()), key
    assert loaded.pretraining.mean == tuple(record["input"]["mean"])


def test_input_statistics_against_numpy():
    data = pretraining_data(TINY)
    pixels = np.concatenate([data.load_sample(i)[0].reshape(-1, 3) for i in range(len(data))]) / 255.0
    statistics = input_statistics(data)
    assert np.allclose(statistics["mean"], pixels.mean(0), atol=1e-4)
    assert np.allclose(statistics["std"], pixels.std(0), atol=1e-4)
