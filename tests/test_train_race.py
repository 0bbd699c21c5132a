"""The headless architecture race: every model with the same budget, one result line each, stoppable midway."""

from __future__ import annotations

import math

import pytest

from segtutor.models import count_flops, count_parameters, create_model, list_models
from segtutor.train import RaceCallback, TrainConfig, TrainingControl, race

TILE = 32


class Events(RaceCallback):
    def __init__(self, stop_after: str | None = None, control: TrainingControl | None = None):
        self.events, self.stop_after, self.control = [], stop_after, control

    def on_model_start(self, name, index):
        self.events.append(("start", name, index))

    def on_train_end(self, state):
        self.events.append(("trained", state.history.status))

    def on_model_end(self, result):
        self.events.append(("end", result.model_name))
        if result.model_name == self.stop_after:
            self.control.stop()


def test_race_trains_every_architecture_with_the_same_budget(train_data, val_data):
    events = Events()
    results = race(list_models(), train_data, val_data, TrainConfig(max_iters=2, batch_size=2, eval_every=2),
                   size="tiny", callbacks=[events])  # fmt: skip
    assert [r.model_name for r in results] == list_models()
    for index, result in enumerate(results):
        model = create_model(result.model_name, size="tiny")
        assert result.iterations == 2 and result.status == "completed" and result.size == "tiny"
        assert result.num_params == count_parameters(model)
        assert result.flops == count_flops(model, (3, TILE, TILE))
        assert result.seconds_per_iteration == pytest.approx(result.history.seconds_per_iteration)
        assert result.mean_iou == pytest.approx(result.history.evaluations[-1].mean_iou)
        assert 0 <= result.boundary.mean_f_score <= 1 or math.isnan(result.boundary.mean_f_score)
        assert events.events[3 * index : 3 * index + 3] == [("start", result.model_name, index),
                                                             ("trained", "completed"), ("end", result.model_name)]


def test_the_same_seed_gives_every_model_the_weights_create_model_gives(train_data, val_data):
    first = race(["unet"], train_data, val_data, TrainConfig(max_iters=1, batch_size=2), size="tiny", seed=3)
    again = race(["unet"], train_data, val_data, TrainConfig(max_iters=1, batch_size=2), size="tiny", seed=3)
    assert first[0].history.losses == again[0].history.losses  # same weights, same data order: the same run


def test_a_stop_ends_the_race_and_keeps_the_models_done(train_data, val_data):
    control = TrainingControl()
    events = Events(stop_after="unet", control=control)
    results = race(list_models(), train_data, val_data, TrainConfig(max_iters=2, batch_size=2), size="tiny",
                   callbacks=[events], control=control)  # fmt: skip
    assert [r.model_name for r in results] == ["unet"]


def test_unknown_models_are_named():
    with pytest.raises(ValueError, match="unknown models \\['unet3'\\]"):
        race(["unet3"], None, None, TrainConfig(max_iters=1))


class Rates(RaceCallback):
    def __init__(self):
        self.rates = {}

    def on_train_start(self, state):
        self.rates[type(state.model).__name__] = getattr(state.model, "aspp_rates", None)


def test_model_options_reach_the_models_they_name(train_data, val_data):
    seen = Rates()
    race(["unet", "deeplabv3"], train_data, val_data, TrainConfig(max_iters=1, batch_size=2), size="tiny",
         callbacks=[seen], model_options={"deeplabv3": {"aspp_rates": [1, 2, 3]}})  # fmt: skip
    assert seen.rates == {"UNet": None, "DeepLabV3": [1, 2, 3]}
    with pytest.raises(ValueError, match="not in this race"):
        race(["unet"], train_data, val_data, TrainConfig(max_iters=1), model_options={"deeplabv3": {}})
