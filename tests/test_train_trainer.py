"""The training loop: config checks, fit, the schedule, evaluation, control from another thread, divergence."""

from __future__ import annotations

import copy
import json
import math
import re
import threading
import warnings

import pytest
import torch
import torch.nn.functional as F
from conftest import cpu_and_cuda
from helpers import AtStep, NanAtStep, Recorder, blob_dataset, tiny_net
from torch.utils.data import Dataset, TensorDataset

from segtutor.metrics import ConfusionMatrix
from segtutor.models import create_model, list_models
from segtutor.predict import predict_proba
from segtutor.train import Callback, History, PrintProgress, Trainer, TrainConfig, TrainingControl, fit


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


# ---- config --------------------------------------------------------------------------------------------------
def test_config_needs_a_budget_and_valid_names():
    with pytest.raises(ValueError, match="needs a budget.*max_seconds"):
        TrainConfig()
    with pytest.raises(ValueError, match="adam, sgd"):
        TrainConfig(max_iters=1, optimizer="rmsprop")
    with pytest.raises(ValueError, match="max_seconds must be > 0"):
        TrainConfig(max_seconds=0)
    with pytest.raises(ValueError, match="lr must be > 0"):
        TrainConfig(max_iters=1, lr=-1.0)
    config = TrainConfig(num_epochs=2, class_weights=[1, 2], loss="dice")
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


# ---- the loop ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", cpu_and_cuda())
def test_fit_learns_and_records_everything(device):
    data = blob_dataset()
    model = tiny_net()
    recorder = Recorder()
    config = TrainConfig(lr=1e-2, batch_size=4, max_iters=40, eval_every=10, device=device)
    history = fit(model, data, data, config, callbacks=[recorder], class_names=["background", "disc"])

    assert history.status == "completed"
    assert len(history.losses) == len(history.lrs) == len(history.seconds) == 40
    assert history.images_seen == 40 * 4
    assert history.val_iterations == [10, 20, 30, 40]
    assert sum(history.losses[-5:]) < 0.5 * sum(history.losses[:5])
    assert history.val_iou("disc")[-1] > history.val_iou("disc")[0]
    assert history.seconds == sorted(history.seconds) and history.images_per_second > 0
    assert recorder.progress[:2] == [1 / 40, 2 / 40] and recorder.progress[-1] == 1.0
    # the callbacks heard every step and evaluation, in order
    assert recorder.events[0] == ("start", 0) and recorder.events[-1] == ("end", "completed")
    assert [e for e in recorder.events if e[0] == "evaluate"] == [("evaluate", i) for i in (10, 20, 30, 40)]
    assert [e[1] for e in recorder.events if e[0] == "iteration"] == list(range(1, 41))
    # the history survives JSON
    assert History.from_dict(json.loads(json.dumps(history.to_dict()))) == history


def test_cosine_schedule_falls_from_lr_to_zero_over_the_steps():
    history = fit(tiny_net(), blob_dataset(), None, TrainConfig(lr=0.01, batch_size=4, max_iters=8))
    expected = [0.01 * 0.5 * (1 + math.cos(math.pi * i / 8)) for i in range(8)]
    assert history.lrs == pytest.approx(expected)


def test_evaluation_matches_scores_computed_by_hand_and_leaves_training_mode():
    data = blob_dataset(count=8)
    model = tiny_net()
    trainer = Trainer(model, data, data, TrainConfig(batch_size=4, max_iters=5, lr=1e-2, loss="cross_entropy"))
    for _ in range(5):
        trainer.step()
    evaluation = trainer.evaluate()
    assert model.training

    model.eval()
    with torch.no_grad():
        images, masks = data.tensors
        logits = model(images)
    scores = ConfusionMatrix(2)
    scores.update(masks, logits)
    assert evaluation.iou == pytest.approx(scores.compute().iou)
    assert evaluation.loss == pytest.approx(float(F.cross_entropy(logits, masks)), rel=1e-5)


def test_same_seed_same_run_other_seed_other_run():
    def run(seed):
        model = tiny_net(seed=0)
        config = TrainConfig(lr=1e-2, batch_size=4, max_iters=12, seed=seed)
        return fit(model, blob_dataset(), None, config).losses, model.state_dict()

    (losses_a, weights_a), (losses_b, weights_b), (losses_c, _) = run(3), run(3), run(4)
    assert losses_a == losses_b
    assert all(torch.equal(weights_a[key], weights_b[key]) for key in weights_a)
    assert losses_a != losses_c  # the seed changes the order of the batches


def test_epoch_budget_counts_full_batches():
    trainer = Trainer(tiny_net(), blob_dataset(count=10), None, TrainConfig(batch_size=4, num_epochs=3))
    while not trainer.finished:
        trainer.step()
    assert trainer.iteration == 3 * (10 // 4) and trainer.state.epoch == 2


def test_seconds_budget_ends_the_run_once_the_training_time_is_used():
    history = fit(tiny_net(), blob_dataset(), None, TrainConfig(batch_size=4, max_seconds=0.3))
    assert history.status == "completed"
    assert history.seconds[-1] >= 0.3 > history.seconds[-2]


def test_print_progress_reports_steps_evaluations_and_the_end(capsys):
    data = blob_dataset(count=8)
    fit(tiny_net(), data, data, TrainConfig(batch_size=4, max_iters=2), callbacks=[PrintProgress(every_seconds=0)])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines[:2]] == [["step", "1"], ["step", "2"]]
    assert "val loss" in lines[2] and "class 1" in lines[2]
    assert lines[-1].startswith("completed: 2 steps in ")


# ---- control -------------------------------------------------------------------------------------------------
def test_stop_from_a_callback_keeps_model_and_history():
    model = tiny_net()
    snapshot = {}
    callbacks = [
        AtStep(5, lambda state: snapshot.update(copy.deepcopy(state.model.state_dict()))),
        AtStep(5, lambda state: state.control.stop()),
    ]
    data = blob_dataset()
    history = fit(model, data, data, TrainConfig(batch_size=4, max_iters=100), callbacks=callbacks)
    assert history.status == "stopped" and "5 steps" in history.message
    assert len(history.losses) == 5
    assert history.val_iterations == [4, 5]  # once per epoch of 4 steps, and once at the stop: the model kept
    assert all(torch.equal(model.state_dict()[key], snapshot[key]) for key in snapshot)


def test_set_lr_changes_the_optimizer_from_the_next_step():
    control = TrainingControl()
    data = blob_dataset()
    trainer = Trainer(tiny_net(), data, None, TrainConfig(batch_size=4, max_iters=10, schedule="constant"),
                      control=control)
    trainer.step()
    control.set_lr(0.25)
    trainer.step()
    assert trainer.history.lrs == [1e-3, 0.25]
    assert trainer.optimizer.param_groups[0]["lr"] == 0.25
    with pytest.raises(ValueError, match="lr must be > 0"):
        control.set_lr(0)


def test_pause_resume_set_lr_and_stop_from_another_thread():
    control = TrainingControl()
    paused_at_3, reached_6 = threading.Event(), threading.Event()

    def pause(state):
        state.control.pause()  # from the training thread: the loop waits before step 4
        paused_at_3.set()

    callbacks = [AtStep(3, pause), AtStep(6, lambda state: reached_6.set())]
    config = TrainConfig(batch_size=4, max_iters=10**6, schedule="constant")
    results = {}
    worker = threading.Thread(
        target=lambda: results.update(history=fit(tiny_net(), blob_dataset(), None, config, callbacks, control))
    )
    worker.start()
    try:
        assert paused_at_3.wait(timeout=30)
        assert control.paused and worker.is_alive()
        control.set_lr(0.05)
        control.resume()
        assert reached_6.wait(timeout=30)
    finally:
        control.stop()
        worker.join(timeout=30)
    assert not worker.is_alive()
    history = results["history"]
    assert history.status == "stopped"
    assert history.lrs[:3] == [1e-3] * 3 and set(history.lrs[3:]) == {0.05}


def test_stop_wakes_a_paused_run():
    control = TrainingControl()
    control.pause()
    config = TrainConfig(batch_size=4, max_iters=100)
    worker = threading.Thread(target=fit, args=(tiny_net(), blob_dataset(), None, config), kwargs={"control": control})
    worker.start()
    control.stop()
    worker.join(timeout=30)
    assert not worker.is_alive()


# ---- divergence and errors -----------------------------------------------------------------------------------
def test_nan_loss_stops_training_and_keeps_the_last_good_weights():
    model = NanAtStep(tiny_net(), step=4)
    snapshot = {}
    keep = AtStep(3, lambda state: snapshot.update(copy.deepcopy(state.model.state_dict())))
    recorder = Recorder()
    history = fit(model, blob_dataset(), None, TrainConfig(batch_size=4, max_iters=20, lr=0.1, schedule="constant"),
                  callbacks=[keep, recorder])
    assert history.status == "diverged"
    assert "loss became nan at step 4 with lr=0.1" in history.message
    assert "weights of step 3" in history.message and "lr=0.01" in history.message
    assert len(history.losses) == 3 and recorder.events[-1] == ("end", "diverged")
    # the parameters and the batch-norm statistics are those after step 3
    for key, value in model.state_dict().items():
        assert torch.equal(value, snapshot[key]), key


def test_a_huge_learning_rate_diverges_with_finite_weights():
    model = tiny_net()
    config = TrainConfig(batch_size=4, max_iters=200, lr=1e8, optimizer="sgd", schedule="constant")
    history = fit(model, blob_dataset(), None, config)
    assert history.status == "diverged" and "smaller learning rate" in history.message
    assert all(torch.isfinite(value).all() for value in model.state_dict().values() if value.is_floating_point())


def test_a_step_after_the_end_is_an_error():
    trainer = Trainer(NanAtStep(tiny_net(), step=1), blob_dataset(), None, TrainConfig(batch_size=4, max_iters=5))
    assert math.isnan(trainer.step())
    with pytest.raises(RuntimeError, match="diverged"):
        trainer.step()


class FloatMasks(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, index):
        return torch.rand(3, 32, 32), torch.zeros(32, 32)


def test_bad_data_raises_a_clear_error_and_records_it():
    recorder = Recorder()
    with pytest.raises(ValueError, match=r"mask\.long\(\)"):
        fit(tiny_net(), FloatMasks(), None, TrainConfig(batch_size=2, max_iters=3), callbacks=[recorder])
    assert recorder.events[-1] == ("end", "error")
    with pytest.raises(ValueError, match="fewer than batch_size=8"):
        Trainer(tiny_net(), FloatMasks(), None, TrainConfig(max_iters=3))
    with pytest.raises(ValueError, match="num_classes=3"):
        fit(tiny_net(num_classes=2), blob_dataset(), blob_dataset(), TrainConfig(batch_size=4, max_iters=1),
            class_names=["a", "b", "c"])


# ---- every course model ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list_models())
def test_each_model_overfits_a_tiny_batch(name):
    torch.manual_seed(0)
    model = create_model(name, size="tiny")
    data = blob_dataset(count=4, size=32)
    history = fit(model, data, None, TrainConfig(lr=3e-2, batch_size=4, max_iters=20))
    assert history.status == "completed"
    assert sum(history.losses[-3:]) < 0.6 * sum(history.losses[:3]), history.losses


def test_fit_on_augmented_tissue_tiles_is_reproducible_and_names_the_classes():
    from segtutor.data import TissueDataset

    data = TissueDataset(8, 48, seed=0, augment=True)

    def run():
        torch.manual_seed(0)
        config = TrainConfig(batch_size=4, max_iters=5, lr=1e-2)
        return fit(create_model("unet", size="tiny"), data, TissueDataset(4, 48, seed=1), config)

    first, second = run(), run()
    assert first.losses == second.losses  # each run starts again at epoch 0's augmentations
    assert first.class_names == ["stroma", "tumor"]
    assert first.val_iterations == [2, 4, 5]  # each epoch of 8 // 4 steps, and the end


def test_a_stopped_control_is_refused_with_the_fix():
    control = TrainingControl()
    control.stop()
    with pytest.raises(ValueError, match="new TrainingControl"):
        Trainer(tiny_net(), blob_dataset(), None, TrainConfig(batch_size=4, max_iters=3), control=control)


def test_fit_leaves_the_global_generator_and_thread_count_as_they_were():
    model, data = tiny_net(), blob_dataset()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    fit(model, data, None, TrainConfig(batch_size=4, max_iters=2, seed=7, num_threads=1))
    assert torch.equal(torch.rand(3), expected) and torch.get_num_threads() == threads


def test_paused_run_ticks_on_wait_and_holds_the_step_lock_only_during_steps():
    control = TrainingControl(tick_seconds=0.02)
    waits, locked = threading.Event(), []

    class Watch(Callback):
        def on_iteration(self, state):
            locked.append(state.control.step_lock.locked())  # the loop holds it while it steps
            if state.iteration == 2:
                state.control.pause()

        def on_wait(self, state):
            waits.set()

    worker = threading.Thread(target=fit, args=(tiny_net(), blob_dataset(), None, TrainConfig(batch_size=4, max_iters=10**6)),
                              kwargs={"callbacks": [Watch()], "control": control})  # fmt: skip
    worker.start()
    try:
        assert waits.wait(timeout=30)  # paused: on_wait is called while the loop waits
        assert not control.step_lock.locked()  # ... and the model can be copied meanwhile
    finally:
        control.stop()
        worker.join(timeout=30)
    assert locked == [True, True] and not worker.is_alive()


def test_a_binary_model_trains():
    model = create_model("unet", num_classes=1, size="tiny")
    data = blob_dataset(count=4)
    history = fit(model, data, data, TrainConfig(max_iters=3, batch_size=2, eval_every=3))
    assert history.status == "completed" and len(history.losses) == 3
    assert len(history.evaluations[-1].iou) == 2  # one channel, two classes scored


# ---- messy data and absurd settings: an error (or a warning) that names the cause, before the loss -------------
def with_change(data: TensorDataset, change) -> TensorDataset:
    """A copy of ``data`` with ``change(images, masks)`` applied in place."""
    images, masks = (tensor.clone() for tensor in data.tensors)
    change(images, masks)
    return TensorDataset(images, masks)


def test_sparse_annotations_train_to_the_end_instead_of_diverging():
    def sparse(images, masks):
        masks[masks == 0] = 255  # only the discs are drawn; most of each tile is unlabelled
        masks[::2] = 255  # and half the tiles carry no annotation at all
    data = with_change(blob_dataset(), sparse)
    history = fit(tiny_net(), data, None, TrainConfig(batch_size=2, max_iters=24, lr=1e-2, seed=1))
    assert history.status == "completed", history.message
    assert all(math.isfinite(loss) for loss in history.losses) and 0.0 in history.losses  # unlabelled batches: 0


def test_training_on_masks_without_a_labelled_pixel_says_so():
    data = with_change(blob_dataset(count=8), lambda images, masks: masks.fill_(255))
    history = fit(tiny_net(), data, None, TrainConfig(batch_size=4, max_iters=3))
    assert history.status == "completed"
    assert "Every training loss was 0: no batch held a labelled pixel" in history.message


@pytest.mark.parametrize("optimizer, lr, name", [("sgd", 1e3, "unet"), ("adam", 1e3, "fcn8s"), ("sgd", 1e8, "tiny")])
def test_after_a_divergence_the_kept_model_predicts_finite_numbers(optimizer, lr, name):
    torch.manual_seed(0)
    model = tiny_net() if name == "tiny" else create_model(name, size="tiny")
    snapshots = []

    class Keep(Callback):
        def on_iteration(self, state):
            snapshots.append(copy.deepcopy(state.model.state_dict()))

    data = blob_dataset()
    config = TrainConfig(batch_size=4, max_iters=200, lr=lr, optimizer=optimizer, schedule="constant")
    history = fit(model, data, None, config, callbacks=[Keep()])
    assert history.status == "diverged"
    assert "the last good ones" in history.message or "build the model again" in history.message
    with torch.no_grad():
        probs = torch.stack([predict_proba(model, image) for image, _ in data])  # (N, K, H, W)
    assert torch.isfinite(probs).all()  # the message says "good weights": they predict numbers, not NaN
    kept = re.search(r"(?:keeps the weights of step|goes back to those of step) (\d+)", history.message)
    if kept is not None:  # the weights are those of the step the message names
        step = int(kept.group(1))
        for key, value in model.state_dict().items():
            if value.is_floating_point() and "running" not in key:
                assert torch.equal(value, snapshots[step - 1][key]), key


def test_an_absurd_learning_rate_ends_as_diverged_and_names_the_usual_range():
    data = blob_dataset()
    history = fit(create_model("unet", size="tiny"), data, blob_dataset(seed=1),
                  TrainConfig(batch_size=4, max_iters=30, lr=1e3, eval_every=5))  # fmt: skip
    assert history.status == "diverged"
    assert "the loss rose to" in history.message and "times its first value" in history.message
    assert "lr=1e+03 is far above the usual 0.0001 to 0.01 for adam; start at lr=0.001" in history.message


def test_an_absurd_learning_rate_is_named_before_the_first_step():
    with pytest.warns(UserWarning, match="lr=1e\\+03 is far above the usual 0.0001 to 0.01 for adam: such a run "
                      "usually diverges.*Fix: start at lr=0.001"):  # fmt: skip
        trainer = Trainer(tiny_net(), blob_dataset(count=8), None, TrainConfig(batch_size=4, max_iters=3, lr=1e3))
    assert trainer.iteration == 0  # said before any step
    with pytest.warns(UserWarning, match="lr=50 is far above the usual 0.001 to 0.1 for sgd"):
        Trainer(tiny_net(), blob_dataset(count=8), None, TrainConfig(max_iters=3, lr=50.0, optimizer="sgd"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a high but usual rate, and SGD's 1.0 (10 x its usual top), say nothing
        Trainer(tiny_net(), blob_dataset(count=8), None, TrainConfig(batch_size=4, max_iters=3, lr=0.05))
        Trainer(tiny_net(), blob_dataset(count=8), None, TrainConfig(max_iters=3, lr=1.0, optimizer="sgd"))


def test_images_given_as_0_to_255_floats_are_refused_before_the_loss():
    data = with_change(blob_dataset(), lambda images, masks: images.mul_(255))
    recorder = Recorder()
    with pytest.raises(ValueError, match="the training images hold values up to 2[0-9.]+: they look like 0-255 "
                       "pixel values.*divide them by 255"):  # fmt: skip
        fit(tiny_net(), data, None, TrainConfig(batch_size=4, max_iters=3), callbacks=[recorder])
    assert recorder.events[-1] == ("end", "error")


def test_a_nan_pixel_is_blamed_on_the_data_and_names_the_sample():
    def one_nan(images, masks):
        images[5, 0, 3, 3] = math.nan
    data = with_change(blob_dataset(), one_nan)
    with pytest.raises(ValueError) as error:
        fit(tiny_net(), data, None, TrainConfig(batch_size=4, max_iters=20))
    message = str(error.value)
    assert "the training data is broken, not the learning rate" in message and "training sample 5)" in message
    assert "1 pixel value(s) of this batch are NaN or infinite" in message and "nan_to_num" in message


def test_labels_beyond_the_model_name_the_labels_the_samples_and_the_fix():
    def label_two(images, masks):
        masks[3, :2, :2] = 2
    data = with_change(blob_dataset(), label_two)
    with pytest.raises(ValueError) as error:
        fit(tiny_net(num_classes=2), data, None, TrainConfig(batch_size=4, max_iters=20))
    message = str(error.value)
    assert "the training masks hold label(s) 2 (training sample 3), but the model predicts 2 classes" in message
    assert "device-side assert" in message and "num_classes=3" in message


def test_an_ignore_index_that_does_not_match_the_masks_says_which_to_pass():
    def unlabelled_255(images, masks):
        masks[:, :4] = 255
    data = with_change(blob_dataset(), unlabelled_255)
    with pytest.raises(ValueError, match="label\\(s\\) 255 .*if 255 marks unlabelled pixels, pass "
                       "TrainConfig\\(ignore_index=255\\) \\(it is ignore_index=-100 now\\)"):  # fmt: skip
        fit(tiny_net(), data, None, TrainConfig(batch_size=4, max_iters=3, ignore_index=-100))


def test_images_given_as_height_width_channels_are_named_so():
    images, masks = blob_dataset().tensors
    data = TensorDataset(images.permute(0, 2, 3, 1).contiguous(), masks)  # (N, H, W, 3)
    with pytest.raises(ValueError, match="channels first, but the batch \\(4, 32, 32, 3\\) holds \\(H, W, C\\) "
                       "images.*image.permute\\(2, 0, 1\\)"):  # fmt: skip
        fit(tiny_net(), data, None, TrainConfig(batch_size=4, max_iters=3))


class MixedSizes(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, index):
        size = 32 if index % 2 else 48
        return torch.rand(3, size, size), torch.zeros(size, size, dtype=torch.long)


def test_images_of_different_sizes_name_the_fix_not_torch_stack():
    with pytest.raises(ValueError, match="the training samples of one batch have different sizes .*crop_size=128"):
        fit(tiny_net(), MixedSizes(), None, TrainConfig(batch_size=2, max_iters=3, seed=0))
    with pytest.raises(ValueError, match="the validation samples of one batch have different sizes"):
        fit(tiny_net(), blob_dataset(), MixedSizes(), TrainConfig(batch_size=1, max_iters=3))


class FailsFrom(Dataset):
    """blob_dataset whose samples from ``index`` on cannot be read."""

    def __init__(self, index):
        self.data, self.index = blob_dataset(count=16, seed=2), index

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        if index >= self.index:
            raise OSError(f"sample {index} is on a disk that went away")
        return self.data[index]


def test_bad_validation_data_fails_before_the_first_step_and_later_errors_keep_the_history():
    recorder = Recorder()
    bad_labels = with_change(blob_dataset(seed=2), lambda images, masks: masks.add_(4))
    with pytest.raises(ValueError, match="the validation masks hold label\\(s\\) 4, 5"):
        fit(tiny_net(), blob_dataset(), bad_labels, TrainConfig(batch_size=4, max_iters=8), callbacks=[recorder])
    assert ("iteration", 1) not in recorder.events  # refused before any training
    # an error only the evaluation meets (the first validation batch is fine): the steps done stay reachable
    with pytest.raises(OSError, match="went away") as error:
        fit(tiny_net(), blob_dataset(), FailsFrom(8), TrainConfig(batch_size=4, max_iters=8, eval_every=4))
    assert error.value.history.status == "error" and len(error.value.history.losses) == 4


def test_device_cuda_on_a_cpu_only_torch_names_the_cause_and_the_fix():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match="device='cuda' asks for a CUDA GPU, but this torch .* is a CPU-only "
                       "build.*device=None"):  # fmt: skip
        Trainer(tiny_net(), blob_dataset(), None, TrainConfig(max_iters=1, device="cuda"))
    with pytest.raises(ValueError, match="device='gpu' is not a device torch knows"):
        Trainer(tiny_net(), blob_dataset(), None, TrainConfig(max_iters=1, device="gpu"))


def test_validation_data_equal_to_the_training_data_is_a_warning():
    data = blob_dataset(count=8)
    with pytest.warns(UserWarning, match="val_data is the training data itself: validation scores then measure how "
                      "well the model remembers"):  # fmt: skip
        Trainer(tiny_net(), data, data, TrainConfig(batch_size=4, max_iters=1))
    with pytest.warns(UserWarning, match="the first validation sample is also the first training sample"):
        Trainer(tiny_net(), blob_dataset(count=8), blob_dataset(count=4), TrainConfig(batch_size=4, max_iters=1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Trainer(tiny_net(), data, blob_dataset(count=4, seed=1), TrainConfig(batch_size=4, max_iters=1))


def test_a_callback_raising_keyboard_interrupt_stops_the_run_and_the_others_still_hear():
    class Rude(Callback):
        def on_iteration(self, state):
            if state.iteration == 3:
                raise KeyboardInterrupt

    recorder = Recorder()
    history = fit(tiny_net(), blob_dataset(), None, TrainConfig(batch_size=4, max_iters=10),
                  callbacks=[Rude(), recorder])  # fmt: skip
    assert history.status == "stopped"
    assert history.message == "Rude.on_iteration raised (KeyboardInterrupt) after 3 steps"
    assert ("iteration", 3) in recorder.events and recorder.events[-1] == ("end", "stopped")


def test_a_reused_stopped_control_says_why_it_would_do_nothing():
    control = TrainingControl()
    fit(tiny_net(), blob_dataset(count=8), None, TrainConfig(batch_size=4, max_iters=2), control=control)
    control.stop()
    with pytest.raises(ValueError, match="this TrainingControl was stopped already \\(the run it steered has ended\\): "
                       "give each run a new TrainingControl\\(\\)"):  # fmt: skip
        fit(tiny_net(), blob_dataset(count=8), None, TrainConfig(batch_size=4, max_iters=2), control=control)


def test_a_loss_left_at_none_is_chosen_from_the_class_balance_and_the_message_says_why():
    def run(data, num_classes=2, **settings):
        trainer = Trainer(tiny_net(num_classes), data, None,
                          TrainConfig(lr=1e-2, batch_size=4, max_iters=2, **settings), class_names=["a", "disc"])
        return trainer, trainer.run().message

    blobs = blob_dataset(count=8)  # discs: about 11 % of the pixels, under half of a fair 50 %
    trainer, message = run(blobs)
    share = float(blobs.tensors[1].float().mean())
    assert trainer.config.loss == "cross_entropy+dice"
    root_sum = (1 - share) ** 0.5 + share**0.5  # w_k = share_k^-1/2 / sum_j share_j share_j^-1/2
    assert trainer.config.class_weights == pytest.approx([1 / (root_sum * (1 - share) ** 0.5),
                                                          1 / (root_sum * share**0.5)], abs=1e-3)  # fmt: skip
    assert trainer.loss_fn.class_weights.tolist() == pytest.approx(trainer.config.class_weights)
    assert "Loss cross_entropy+dice: 'disc' has " in message and "under half of a fair 50%" in message
    images, _ = blobs.tensors
    halves = TensorDataset(images, (torch.arange(32) >= 16).long().expand(8, 32, 32))  # right half: class 1
    assert run(halves)[0].config.loss == "cross_entropy"
    trainer, message = run(blobs, loss="focal")  # given: kept, nothing to explain
    assert trainer.config.loss == "focal" and trainer.config.class_weights is None and "Loss" not in message
    trainer, _ = run(blobs, class_weights=[1.0, 2.0])  # given weights are kept
    assert trainer.config.loss == "cross_entropy+dice" and trainer.config.class_weights == [1.0, 2.0]
    trainer, _ = run(blobs, num_classes=3)  # a model with a class the data never shows: it gets the largest weight
    weights = trainer.config.class_weights
    assert len(weights) == 3 and weights[2] == weights[1] > weights[0]
