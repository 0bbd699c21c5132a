"""The time machine under the training dashboard, headless: train, stop, scrub, and compare what is drawn with
the engine's snapshots."""

from __future__ import annotations

import pytest
import torch
from helpers import JOIN_S, NanAtStep, TilePasses, wait_until

from segtutor.figures import error_picture, png_uri, probability_picture
from segtutor.models import create_model
from segtutor.predict import error_map, image_to_rgb, overlay
from segtutor.train import TrainConfig
from segtutor.widgets import TimeMachineViewer, TrainingDashboard

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_dashboard_keeps_snapshots_and_the_slider_scrubs_back_through_them(train_data, val_data):
    config = TrainConfig(batch_size=2, max_iters=10_000, eval_every=5)
    dashboard = TrainingDashboard(create_model("unet", size="tiny"), train_data, val_data, config, preview_index=1,
                                  draw_every_s=0.0, preview_every_s=0.0, warm_up=False, max_snapshots=8)  # fmt: skip
    rewind, machine = dashboard.rewind, dashboard.time_machine
    assert isinstance(rewind, TimeMachineViewer) and rewind in dashboard.children
    assert "press Start" in rewind.info.value
    dashboard.start()
    wait_until(lambda: dashboard.history is not None and len(dashboard.history.losses) >= 20)
    dashboard.stop()  # a stopped run keeps its snapshots
    assert dashboard.join(JOIN_S)
    steps = machine.iterations
    last = len(dashboard.history.losses)
    assert len(steps) <= 8 and steps[0] == 0 and steps[-1] == last
    assert rewind.slider.max == last and rewind.slider.value == last  # it followed the run to its end

    # scrub back: everything drawn is the snapshot at or before the slider's step
    rewind.slider.value = steps[2] + 1
    snapshot = machine.at(steps[2] + 1)
    assert rewind.snapshot is snapshot and snapshot.iteration == steps[2]
    image, mask = val_data[1]
    rgb, preds = image_to_rgb(image), snapshot.preds.long()
    data = rewind.figure.data
    by_name = {trace["name"]: trace for trace in data}
    assert by_name["prediction"]["source"] == png_uri(overlay(rgb, preds, dashboard.colors, 0.45))
    assert by_name["errors"]["source"] == png_uri(error_picture(rgb, error_map(mask, preds, 1)))
    assert by_name["probability"]["source"] == png_uri(probability_picture(snapshot.probs[1]))
    assert by_name["confusion"]["text"] == [[f"{n:,}" for n in row] for row in snapshot.confusion.tolist()]
    titles = [a["text"] for a in rewind.figure.layout["annotations"]]
    assert titles[0] == f"prediction at step {steps[2]}" and "tumor" in titles[1]
    assert f"step <b>{steps[2]}</b>" in rewind.info.value and f"{snapshot.iou[1]:.3f}" in rewind.info.value
    assert f"{len(steps)} snapshots kept (at most 8), one every {machine.every} steps" in rewind.info.value
    assert f"{machine.nbytes / 1e6:.1f} MB" in rewind.info.value  # the memory they hold, stated
    markers = [s for s in dashboard.figure.layout["shapes"] if s["name"] == "time machine"]
    assert [(s["xref"], s["x0"]) for s in markers] == [("x", steps[2]), ("x2", steps[2])]

    # another class: its errors and probabilities
    rewind.class_picker.value = "stroma"
    probability = next(t for t in rewind.figure.data if t["name"] == "probability")
    assert probability["source"] == png_uri(probability_picture(snapshot.probs[0]))

    # a new run starts a new series, and the slider follows it again
    dashboard.settings.budget_unit.value = "iterations"
    dashboard.settings.budget.value = 3
    dashboard.start()
    assert dashboard.join(JOIN_S)
    assert machine.iterations == [0, 1, 2, 3] and rewind.slider.max == 3 and rewind.slider.value == 3
    assert rewind.snapshot.iteration == 3 and rewind.errors.outputs == ()


def test_the_live_preview_shares_the_snapshots_forward_pass(train_data, val_data):
    model = TilePasses(create_model("unet", size="tiny"))
    config = TrainConfig(batch_size=2, max_iters=6, eval_every=1000)
    dashboard = TrainingDashboard(model, train_data, val_data, config, draw_every_s=0.0, preview_every_s=0.0,
                                  warm_up=False)  # fmt: skip
    dashboard.start()
    assert dashboard.join(JOIN_S) and dashboard.history.status == "completed"
    # a preview after every step (preview_every_s=0), a snapshot of most of them: one pass of the tile per step
    assert model.passes == 6 + 1 and model.threads == {1}
    assert dashboard.prediction.layout["title"]["text"] == "prediction at step 6"
    prediction = next(t for t in dashboard.prediction.data if t["name"] == "prediction")
    image, _ = val_data[0]
    last = dashboard.time_machine.snapshots[-1]
    assert last.iteration == 6
    assert prediction["source"] == png_uri(overlay(image_to_rgb(image), last.preds.long(), dashboard.colors, 0.45))


def test_a_run_that_diverges_under_the_dashboard_keeps_its_snapshots(train_data, val_data):
    from segtutor.predict import predict_proba

    model = NanAtStep(create_model("unet", size="tiny"), step=7)  # the loss of step 7 is NaN
    dashboard = TrainingDashboard(model, train_data, val_data, TrainConfig(batch_size=2, max_iters=200),
                                  draw_every_s=0.0, preview_every_s=0.0, warm_up=False)  # fmt: skip
    dashboard.start()
    assert dashboard.join(JOIN_S)
    history, machine, rewind = dashboard.history, dashboard.time_machine, dashboard.rewind
    assert history.status == "diverged" and len(history.losses) == 6 and "diverged" in dashboard.status.value
    steps = machine.iterations
    assert steps[0] == 0 and steps[-1] == 6 and len(steps) >= 2
    assert rewind.slider.max == 6 and rewind.snapshot is machine.snapshots[-1]  # shown, and kept
    kept = predict_proba(dashboard.model, val_data[0][0])  # the weights the model keeps
    torch.testing.assert_close(machine.snapshots[-1].probs.float(), kept, atol=1e-3, rtol=0)
    rewind.slider.value = 0  # the past is still there to scrub back to
    assert rewind.snapshot is machine.snapshots[0] and "step <b>0</b>" in rewind.info.value
