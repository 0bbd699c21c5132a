"""The training time machine: bounded, evenly thinned snapshots that match the model of their step, kept however
the run ends."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from helpers import AtStep, Broken, NanAtStep, TilePasses, blob_dataset, tiny_net

from segtutor.predict import predict_proba
from segtutor.train import Callback, Snapshot, TimeMachine, TrainConfig, fit

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py
NAMES = ["stroma", "tumor"]


class Weights(Callback):
    """Records the model's weights after every step (and before the first): the reference for each snapshot."""

    def __init__(self):
        self.by_step = {}

    def on_train_start(self, state):
        self.by_step[0] = copy.deepcopy(state.model.state_dict())

    def on_iteration(self, state):
        self.by_step[state.iteration] = copy.deepcopy(state.model.state_dict())


class Counter(Callback):
    """How many snapshots the machine holds after each step (its hook runs first)."""

    def __init__(self, machine):
        self.machine, self.counts = machine, []

    def on_iteration(self, state):
        self.counts.append(len(self.machine.snapshots))


def brute_force_confusion(mask: torch.Tensor, preds: torch.Tensor, num_classes: int) -> torch.Tensor:
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    for truth, guess in zip(mask.flatten().tolist(), preds.flatten().tolist()):
        matrix[truth, guess] += 1
    return matrix


def test_snapshots_are_bounded_evenly_spaced_and_match_the_model_of_their_step():
    data = blob_dataset(count=8, size=24)
    model, weights = tiny_net(), Weights()
    machine = TimeMachine(data, index=3, max_snapshots=8, class_names=NAMES, max_time_share=None)
    counter = Counter(machine)
    history = fit(model, data, None, TrainConfig(lr=1e-2, batch_size=4, max_iters=50), [machine, weights, counter])
    counts = counter.counts

    # 1) never more than 8; thinned by doubling the spacing: 1 -> 2 -> 4 -> 8 over 50 steps
    assert max(counts) <= 8 and history.status == "completed"
    steps = machine.iterations
    assert machine.every == 8
    assert steps == [0, 8, 16, 24, 32, 40, 48, 50]  # multiples of the spacing, and the last step
    # 2) each snapshot is the prediction of the weights of its step, scored by a pixel loop
    image, mask = data[3]
    reference = tiny_net()
    for snapshot in machine.snapshots:
        reference.load_state_dict(weights.by_step[snapshot.iteration])
        probs = predict_proba(reference, image)
        torch.testing.assert_close(snapshot.probs.float(), probs, atol=1e-3, rtol=0)  # float16
        assert torch.equal(snapshot.preds.long(), probs.argmax(0))
        matrix = brute_force_confusion(mask, probs.argmax(0), 2)
        assert torch.equal(snapshot.confusion, matrix)
        tp, fp, fn = matrix[1, 1].item(), matrix[0, 1].item(), matrix[1, 0].item()
        expected_iou = tp / (tp + fp + fn) if tp + fp + fn else math.nan
        assert snapshot.iou[1] == pytest.approx(expected_iou, nan_ok=True)
        assert snapshot.dice[1] == pytest.approx(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else math.nan,
                                                 nan_ok=True)  # fmt: skip
        assert snapshot.pixel_accuracy == pytest.approx(matrix.diagonal().sum().item() / mask.numel())
        expected_loss = history.losses[snapshot.iteration - 1] if snapshot.iteration else math.nan
        assert snapshot.loss == pytest.approx(expected_loss, nan_ok=True)
    # 3) memory: float16 probabilities, uint8 labels, as the docstring states
    height, width = mask.shape
    assert machine.nbytes == len(steps) * (2 * 2 * height * width + height * width + 4 * 8)
    assert machine.nbytes <= 8 * (2 * 2 + 1) * height * width + 8 * 4 * 8


def test_a_long_run_keeps_at_most_max_snapshots_spread_over_the_whole_run():
    data = blob_dataset(count=4, size=24)
    machine = TimeMachine(data, max_snapshots=16, class_names=NAMES, max_time_share=None)
    fit(tiny_net(), data, None, TrainConfig(batch_size=4, max_iters=300), [machine])
    steps = machine.iterations
    assert len(steps) <= 16 and steps[0] == 0 and steps[-1] == 300
    gaps = {b - a for a, b in zip(steps, steps[1:-1])}
    assert gaps == {machine.every} and machine.every == 32  # even spacing, doubled from 1 five times
    assert machine.at(100).iteration == 96 and machine.at(96).iteration == 96 and machine.at(-5).iteration == 0
    assert machine.at(10_000).iteration == 300


def test_snapshots_thin_out_while_taking_them_costs_more_than_their_share_of_the_time():
    data = blob_dataset(count=4, size=24)
    machine = TimeMachine(data, class_names=NAMES, max_time_share=0.0)  # any cost is too much: thin when possible
    fit(tiny_net(), data, None, TrainConfig(batch_size=4, max_iters=100), [machine])
    steps = machine.iterations
    assert 8 <= len(steps) < 16 + 1 and steps[0] == 0 and steps[-1] == 100
    assert {b - a for a, b in zip(steps, steps[1:-1])} == {machine.every} and machine.every >= 8
    assert machine.predict_seconds > 0


def test_a_stopped_run_keeps_its_snapshots_up_to_the_stop():
    data = blob_dataset(count=8, size=24)
    machine = TimeMachine(data, class_names=NAMES, max_time_share=None)
    history = fit(tiny_net(), data, None, TrainConfig(batch_size=4, max_iters=1000),
                  [machine, AtStep(13, lambda state: state.control.stop())])  # fmt: skip
    assert history.status == "stopped" and len(history.losses) == 13
    assert machine.iterations == list(range(14))  # 0 … 13, one per step while fewer than 64


def test_a_diverged_run_keeps_its_snapshots_and_the_last_good_weights():
    data = blob_dataset(count=8, size=24)
    machine = TimeMachine(data, class_names=NAMES, max_time_share=None)
    model = NanAtStep(tiny_net(), step=6)
    history = fit(model, data, None, TrainConfig(batch_size=4, max_iters=100), [machine])
    assert history.status == "diverged" and len(history.losses) == 5
    assert machine.iterations == [0, 1, 2, 3, 4, 5]
    last = machine.snapshots[-1]
    assert not torch.isnan(last.probs.float()).any()
    torch.testing.assert_close(last.probs.float(), predict_proba(model, data[0][0]), atol=1e-3, rtol=0)


def test_a_new_run_starts_a_new_series_and_first_iteration_reads_it():
    data = blob_dataset(count=8, size=24)
    machine = TimeMachine(data, class_names=NAMES, max_time_share=None)
    model = tiny_net()
    fit(model, data, None, TrainConfig(lr=3e-2, batch_size=4, max_iters=30), [machine])
    first = machine.first_iteration("tumor", 0.5)
    expected = next((s.iteration for s in machine.snapshots if s.iou[1] >= 0.5), None)
    assert first == expected and first is not None and first > 0
    assert machine.first_iteration(1, 1.01) is None
    fit(model, data, None, TrainConfig(batch_size=4, max_iters=3), [machine])
    assert machine.iterations == [0, 1, 2, 3]
    assert isinstance(machine.snapshots[0], Snapshot) and "4 of at most 64" in repr(machine)


def test_bad_arguments_say_what_to_do():
    data = blob_dataset(count=4, size=24)
    with pytest.raises(ValueError, match="index must be in 0 … 3"):
        TimeMachine(data, index=4, class_names=NAMES)
    with pytest.raises(ValueError, match="max_snapshots must be >= 2"):
        TimeMachine(data, max_snapshots=1, class_names=NAMES)
    with pytest.raises(ValueError, match="give class_names"):
        TimeMachine(data)
    machine = TimeMachine(data, class_names=NAMES)
    with pytest.raises(LookupError, match="no snapshots yet"):
        machine.at(0)
    with pytest.raises(KeyError, match="no class 'nerve'"):
        machine.first_iteration("nerve", 0.5)
    with pytest.raises(ValueError, match="metric must be"):
        machine.first_iteration("tumor", 0.5, metric="accuracy")


def test_a_failing_model_ends_the_run_with_its_own_error():
    data = blob_dataset(count=4, size=24)
    machine = TimeMachine(data, class_names=NAMES)
    with pytest.raises(RuntimeError, match="this layer is broken"):
        fit(Broken(), data, None, TrainConfig(batch_size=4, max_iters=3), [machine])
    assert machine.snapshots == []


def test_a_run_that_diverges_and_goes_back_a_step_ends_with_the_weights_it_keeps():
    data = blob_dataset(count=16, size=32)
    machine = TimeMachine(data, class_names=NAMES, max_time_share=None)
    model, weights = tiny_net(), Weights()
    config = TrainConfig(batch_size=4, max_iters=60, lr=100.0, optimizer="sgd", schedule="constant",
                         loss="cross_entropy")  # the loss it was made to diverge with
    with pytest.warns(UserWarning, match="far above the usual"):
        history = fit(model, data, None, config, [machine, weights])
    assert history.status == "diverged" and "goes back to those of step 1" in history.message
    assert machine.iterations == [0, 1, 2]  # every snapshot of the run is kept
    # the last one shows the weights the model keeps (those of step 1), not the broken ones of step 2
    kept = predict_proba(model, data[0][0])
    torch.testing.assert_close(machine.snapshots[-1].probs.float(), kept, atol=1e-3, rtol=0)
    reference = tiny_net()
    reference.load_state_dict(weights.by_step[2])
    broken = predict_proba(reference, data[0][0])
    assert (broken - kept).abs().max() > 0.01  # the weights of step 2 predict something else
    torch.testing.assert_close(machine.snapshots[1].probs, machine.snapshots[2].probs)


def test_the_memory_held_never_exceeds_the_stated_bound():
    data = blob_dataset(count=4, size=20)
    machine = TimeMachine(data, max_snapshots=8, class_names=["a", "b", "c"], max_time_share=None)

    class Memory(Callback):
        def __init__(self):
            self.nbytes = []

        def on_iteration(self, state):
            self.nbytes.append((len(machine.snapshots), machine.nbytes))

    memory = Memory()
    assert machine.max_nbytes is None  # no snapshot yet: the number of classes is not known
    fit(tiny_net(num_classes=3), data, None, TrainConfig(batch_size=4, max_iters=200), [machine, memory])
    bound = 8 * ((2 * 3 + 1) * 20 * 20 + 8 * 3 * 3)  # the module docstring's max_snapshots * ((2K + 1) H W + 8 K²)
    assert machine.max_nbytes == bound
    assert max(n for _, n in memory.nbytes) == bound  # reached when all 8 are kept, never passed
    assert all(n == count * bound // 8 for count, n in memory.nbytes)  # every snapshot holds the same bytes
    assert machine.nbytes <= bound and len(machine.snapshots) <= 8


def test_a_preview_of_a_step_with_a_snapshot_shares_its_forward_pass_on_one_thread():
    data = blob_dataset(count=8, size=24)
    machine = TimeMachine(data, class_names=NAMES, max_time_share=None)
    previews = []

    class Preview(Callback):  # what the dashboard does after the time machine's hook
        def on_iteration(self, state):
            previews.append((machine.predicted(state), machine.predict(state)))

    model = TilePasses(tiny_net())
    history = fit(model, data, None, TrainConfig(batch_size=4, max_iters=20, num_threads=2), [machine, Preview()])
    assert history.status == "completed" and machine.iterations == list(range(21))
    assert all(shared for shared, _ in previews)  # every step had a snapshot: its pass is the preview's
    assert model.passes == 21  # one per step and one before the first, not two
    assert model.threads == {1}  # while training ran on two
    for snapshot, (_, probs) in zip(machine.snapshots[1:], previews):
        assert torch.equal(snapshot.probs, probs.half()) and torch.equal(snapshot.preds.long(), probs.argmax(0))
