"""TrainConfig's defaults: settings left at None become the model's recommendation, everywhere a run starts."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import blob_dataset, tiny_net

from segtutor.models import GENERIC_DEFAULTS, MODELS, TrainingDefaults, create_model, list_models, training_defaults
from segtutor.train import Trainer, TrainConfig, race

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


@pytest.mark.parametrize("name", list_models())
def test_every_segtutor_model_recommends_its_settings_and_resolve_uses_them(name):
    model = create_model(name, size="tiny")
    recommended = training_defaults(model)
    assert isinstance(MODELS[name].training_defaults, TrainingDefaults) and recommended is MODELS[name].training_defaults
    resolved = TrainConfig(max_iters=5, device="cpu").resolve(model)
    assert (resolved.lr, resolved.batch_size) == (recommended.lr, recommended.batch_size)
    assert resolved.channels_last is recommended.channels_last_on_cpu
    assert TrainConfig(max_iters=5, optimizer="sgd").resolve(model).lr == recommended.sgd_lr
    assert TrainConfig(max_iters=5, device="cuda").resolve(model).channels_last is True  # GPUs: always NHWC


def test_given_settings_are_kept_and_a_foreign_model_gets_the_generic_defaults():
    model = create_model("unet", size="tiny")
    given = TrainConfig(max_iters=5, lr=0.05, batch_size=3, channels_last=False, device="cpu")
    assert given.resolve(model) == given
    generic = TrainConfig(max_iters=5, device="cpu").resolve(tiny_net())  # an nn.Sequential recommends nothing
    assert (generic.lr, generic.batch_size, generic.channels_last) == (1e-3, 8, False) == (
        GENERIC_DEFAULTS.lr, GENERIC_DEFAULTS.batch_size, GENERIC_DEFAULTS.channels_last_on_cpu)  # fmt: skip
    assert TrainConfig(max_iters=5, device="mps").resolve(model).channels_last is False
    unresolved = TrainConfig(max_iters=5)
    assert (unresolved.lr, unresolved.batch_size, unresolved.channels_last) == (None, None, None)
    assert TrainConfig.from_dict(json.loads(json.dumps(unresolved.to_dict()))) == unresolved
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        TrainConfig(max_iters=5, batch_size=0)


def test_a_run_trains_with_the_resolved_settings():
    model = create_model("unet", size="tiny")
    trainer = Trainer(model, blob_dataset(count=8), None, TrainConfig(max_iters=2, device="cpu"))
    recommended = training_defaults(model)
    weights = trainer.config.class_weights  # the discs are rare: + Dice, and weights (tests/test_train_trainer.py)
    chosen = TrainConfig(max_iters=2, device="cpu", loss="cross_entropy+dice", class_weights=weights)
    assert trainer.config == chosen.resolve(model)  # what the state and checkpoint see
    assert trainer.train_loader.batch_size == recommended.batch_size
    assert trainer.optimizer.param_groups[0]["lr"] == recommended.lr
    trainer.step()
    assert trainer.history.lrs == [recommended.lr] and trainer.history.images_seen == recommended.batch_size
    conv = next(m for m in trainer.model.modules() if m.__class__.__name__ == "Conv2d")
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) is recommended.channels_last_on_cpu
    with pytest.raises(ValueError, match=f"fewer than batch_size={recommended.batch_size}"):
        Trainer(model, blob_dataset(count=recommended.batch_size - 1), None, TrainConfig(max_iters=2))


def test_the_race_gives_each_model_its_own_recommendation(train_data, val_data):
    results = race(["unet", "fcn8s"], train_data, val_data, TrainConfig(max_iters=2, device="cpu"), size="tiny")
    for result in results:
        recommended = MODELS[result.model_name].training_defaults
        assert result.history.lrs[0] == pytest.approx(recommended.lr)
        assert result.history.images_seen == 2 * recommended.batch_size

