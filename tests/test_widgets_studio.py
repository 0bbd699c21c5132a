"""The training studio's views, headless: drive the controls and buttons, compare what is drawn with the engine.

Tiny models on 32-pixel tiles and budgets of a few steps keep the file fast on 2 cores. Every thread is joined with
a timeout.
"""

from __future__ import annotations

import datetime
import math
import ipywidgets as widgets
import numpy as np
import pytest
import torch
from helpers import JOIN_S, Broken, png_bytes, wait_until

from segtutor.figures import architecture_figure, log_ticks, mosaic, png_uri
from segtutor.models import LABELS, count_parameters, create_model, feature_maps, list_models
from segtutor.predict import overlay, predict_proba, score_dataset, sliding_window_proba
from segtutor.train import TrainConfig, TrainingSession, smooth
from segtutor.widgets import (
    ArchitectureRace,
    FeatureMapViewer,
    ModelPicker,
    PredictionViewer,
    TrainingDashboard,
    TrainingStudio,
)
from segtutor.widgets.studio.app import FEATURES_TAB, MODEL_TAB, PREDICTIONS_TAB, RACE_TAB, TRAIN_TAB

TILE = 32


def test_model_picker_swaps_model_diagram_and_counts():
    picker = ModelPicker("unet", "tiny", input_size=64)
    received = []
    picker.on_change(received.append)
    unet_boxes = len(picker.figure.layout["shapes"])
    unet_counts = picker.counts.value

    picker.architecture.value = "fcn8s"
    assert type(picker.model).__name__ == "FCN8s" and received == [picker.model]
    assert picker.summary.num_params == count_parameters(create_model("fcn8s", size="tiny"))
    assert len(picker.figure.layout["shapes"]) == len(picker.model.describe()) + 1 != unet_boxes
    labels = " ".join(a["text"] for a in picker.figure.layout["annotations"]).replace("<br>", "")  # long names break
    assert "score_pool4" in labels and "enc0" not in labels  # the boxes are FCN-8s's stages
    assert f"{picker.summary.num_params:,}" in picker.counts.value != unet_counts
    assert "upscore_pool4" in picker.table.value  # the layer table follows

    picker.size.value = "small"
    assert picker.summary.num_params == count_parameters(create_model("fcn8s", size="small"))
    reference = create_model("fcn8s", size="small", seed=0)
    for mine, theirs in zip(picker.model.parameters(), reference.parameters()):
        torch.testing.assert_close(mine, theirs)  # seeded: the same initial weights every time
    assert len(received) == 2 and picker.errors.outputs == ()

def test_model_picker_lays_the_diagram_out_for_the_width_the_browser_draws_it_at():
    picker = ModelPicker("fcn8s", "small")
    box_labels = lambda: [a for a in picker.figure.layout["annotations"] if "<b>" in a.get("text", "")]  # noqa: E731
    assert {a.get("textangle", 0) for a in box_labels()} == {0}  # 1100 px wide: flat
    wide_height = picker.figure.layout["height"]
    picker.figure.room = 592  # what the browser reports in a 1024 px JupyterLab window
    assert {a["textangle"] for a in box_labels()} == {-90} and picker.figure.layout["height"] > wide_height
    narrow = architecture_figure(picker.summary, title=False, room=592)
    assert picker.diagram.layout.to_plotly_json() == narrow.layout.to_plotly_json()
    revision = picker.figure.figure["revision"]
    picker.figure.room = 600  # the same layout: nothing is sent again
    assert picker.figure.figure["revision"] == revision
    picker.architecture.value = "unet"  # a new model is laid out for the room too
    assert {a["textangle"] for a in box_labels()} == {-90}
    picker.figure.room = 1100
    assert {a["textangle"] for a in box_labels()} == {0} and picker.errors.outputs == ()


def test_dashboard_start_pause_lr_resume_stop_and_curves(train_data, val_data):
    config = TrainConfig(batch_size=2, max_iters=10_000, schedule="constant", eval_every=2)
    dashboard = TrainingDashboard(create_model("unet", size="tiny"), train_data, val_data, config,
                                  preview_every_s=0.0, draw_every_s=0.0, warm_up=False)  # fmt: skip
    initial_preview = dashboard.prediction.data[0]["source"]
    dashboard.start_button.click()
    wait_until(lambda: dashboard.history is not None and len(dashboard.history.losses) >= 4)
    dashboard.pause_button.click()
    wait_until(lambda: dashboard.session.state == "paused" and "paused" in dashboard.status.value)
    assert not dashboard.resume_button.disabled and dashboard.pause_button.disabled
    steps = len(dashboard.history.losses)
    dashboard.settings.lr.value = 2e-4  # while paused: used from the next step on
    dashboard.resume_button.click()
    wait_until(lambda: len(dashboard.history.losses) >= steps + 2)
    dashboard.stop_button.click()
    assert dashboard.join(JOIN_S)

    history, data = dashboard.history, dashboard.figure.data
    assert history.status == "stopped" and "stopped" in dashboard.status.value
    assert history.lrs[steps:] == [pytest.approx(2e-4)] * (len(history.losses) - steps)
    assert data[0]["y"] == history.losses and data[0]["x"] == list(range(1, len(history.losses) + 1))
    assert data[1]["y"] == pytest.approx(smooth(history.losses), nan_ok=True)
    assert data[2]["x"] == history.val_iterations and data[2]["y"] == history.val_losses
    for c in range(2):
        assert data[3 + 2 * c]["y"] == pytest.approx(history.val_iou(c), nan_ok=True)
        assert data[4 + 2 * c]["y"] == pytest.approx(history.val_dice(c), nan_ok=True)
    assert dashboard.prediction.data[0]["source"] != initial_preview  # the live preview was drawn
    assert dashboard.prediction.layout["title"]["text"].startswith("prediction at step ")
    assert dashboard.stop_button.disabled and dashboard.pause_button.disabled

    dashboard.log_scale.value = True
    axis = dashboard.figure.layout["yaxis"]
    assert axis["type"] == "log" and axis["tickmode"] == "array"  # plotly's own log ticks write 2 and 5 at 8 px
    low, high = min(history.losses + history.val_losses), max(history.losses + history.val_losses)
    assert axis["tickvals"] == log_ticks(low, high) and len(axis["tickvals"]) >= 3
    assert all(low <= tick <= high for tick in axis["tickvals"])
    assert axis["ticktext"] == [f"{tick:g}" for tick in axis["tickvals"]]
    dashboard.log_scale.value = False
    axis = dashboard.figure.layout["yaxis"]
    assert axis["type"] == "linear" and axis["tickmode"] == "auto"


def test_the_log_loss_axis_labels_round_values_before_any_loss_too(train_data, val_data):
    dashboard = TrainingDashboard(create_model("unet", size="tiny"), train_data, val_data, warm_up=False)
    dashboard.log_scale.value = True
    axis = dashboard.figure.layout["yaxis"]
    assert axis["tickvals"] == [0.1, 0.2, 0.5, 1.0] and axis["ticktext"] == ["0.1", "0.2", "0.5", "1"]
    assert axis["range"] == pytest.approx([-1.05, 0.05])  # the ticks are in view (an empty log axis spans 1 … 10)

def test_dashboard_says_when_its_run_waits_for_a_free_core_and_trains_once_it_is_free(train_data, val_data, tmp_path):
    from segtutor.train import CpuShare

    config = TrainConfig(batch_size=2, max_iters=10_000, schedule="constant")
    dashboard = TrainingDashboard(create_model("unet", size="tiny"), train_data, val_data, config, warm_up=False)
    dashboard.session.cpu_share = CpuShare(1, tmp_path, poll_s=0.01)  # one core, taken by another learner's run
    other = CpuShare(1, tmp_path).join(threads=1)
    assert other.acquire(timeout=1)
    dashboard.start_button.click()
    wait_until(lambda: "waiting for a free core — 0 ahead (2 runs share 1 core)" in dashboard.status.value)
    assert "<b style='color:#238b45'>running</b>" in dashboard.status.value and not dashboard.history.losses
    assert not dashboard.pause_button.disabled  # it can be paused while it waits
    other.leave()  # the other run pauses: the core is free
    wait_until(lambda: len(dashboard.history.losses) >= 2)
    wait_until(lambda: "waiting" not in dashboard.status.value)
    dashboard.stop_button.click()
    assert dashboard.join(JOIN_S) and dashboard.history.status == "stopped"


def test_dashboard_offers_the_trained_model_as_a_checkpoint_to_download(train_data, val_data, tmp_path):
    import base64
    import re

    from segtutor.train import load_checkpoint

    config = TrainConfig(batch_size=2, max_iters=4, eval_every=2)
    dashboard = TrainingDashboard(create_model("unet", size="tiny"), train_data, val_data, config, warm_up=False)
    dashboard.start()
    assert dashboard.join(JOIN_S)
    dashboard.checkpoint_button.click()
    link = dashboard.checkpoint_link.value
    name, data = re.search(r"download='([^']+)' href='data:application/octet-stream;base64,([^']+)'", link).groups()
    assert name == "unet-step4.pt" and "after 4 steps" in link
    path = tmp_path / name
    path.write_bytes(base64.b64decode(data))
    kept = load_checkpoint(path)
    for key, value in dashboard.model.state_dict().items():
        assert torch.equal(kept.model.state_dict()[key], value.cpu()), key
    assert kept.history.losses == dashboard.history.losses and kept.class_names == list(dashboard.class_names)
    assert kept.config.max_iters == 4


def test_dashboard_runs_again_in_seconds_and_shows_errors(train_data, val_data):
    dashboard = TrainingDashboard(create_model("fcn8s", size="tiny"), train_data, val_data,
                                  TrainConfig(batch_size=2, max_seconds=1, eval_every=20), warm_up=False)  # fmt: skip
    dashboard.start()
    assert dashboard.join(JOIN_S)
    assert dashboard.history.status == "completed" and dashboard.history.train_seconds >= 1
    assert len(dashboard.figure.data[0]["y"]) == len(dashboard.history.losses)
    assert dashboard.history.evaluations[-1].iteration == len(dashboard.history.losses)  # final evaluation drawn
    assert len(dashboard.figure.data[2]["y"]) == len(dashboard.history.evaluations)

    dashboard.set_model(Broken())
    assert dashboard.figure.data[0]["y"] == []  # a new model: curves cleared
    dashboard.start()
    assert dashboard.join(JOIN_S)
    assert "error" in dashboard.status.value and "this layer is broken" in dashboard.status.value
    assert any("this layer is broken" in output.get("text", "") for output in dashboard.errors.outputs)

@pytest.fixture(scope="module")
def trained(train_data, val_data):
    session = TrainingSession(create_model("unet", size="tiny"), train_data, val_data, warm_up=False)
    session.start(TrainConfig(max_iters=4, batch_size=2))
    assert session.join(JOIN_S)
    return session.model

def test_prediction_viewer_maps_equal_segtutor_predict(trained, val_data):
    viewer = PredictionViewer(trained, val_data)
    viewer.tile.value = 2
    image, mask = val_data[2]
    probs = predict_proba(trained, image)
    torch.testing.assert_close(viewer.analysis.probs, probs)
    for c in range(2):
        np.testing.assert_allclose(viewer.figure.data[4 + c]["z"], np.round(probs[c].numpy(), 3))
    matrix = np.zeros((2, 2), np.int64)
    for t, p in zip(mask.flatten().tolist(), probs.argmax(0).flatten().tolist()):
        matrix[t, p] += 1
    np.testing.assert_array_equal(viewer.analysis.confusion.numpy(), matrix)
    assert viewer.figure.data[6]["text"] == matrix.astype(str).tolist()
    tumor_iou = matrix[1, 1] / (matrix[1].sum() + matrix[:, 1].sum() - matrix[1, 1])  # TP / (TP + FN + FP)
    assert viewer.analysis.scores.iou[1] == pytest.approx(tumor_iou)
    assert "IoU" in viewer.scores.value

    viewer.opacity.value = 0.8
    expected = png_uri(overlay(image, probs.argmax(0), val_data.class_colors, 0.8))
    assert viewer.figure.data[2]["source"] == expected
    viewer.error_class.value = 0
    assert "errors of stroma" in [a["text"] for a in viewer.figure.layout["annotations"]]

def test_prediction_viewer_tests_on_another_lab(trained, val_data):
    viewer = PredictionViewer(trained, val_data)
    assert viewer.lab.value == "A" and viewer.lab.layout.display is None and viewer.lab_message.value == ""
    viewer.tile.value = 1
    viewer.lab.value = "C"  # what a click does
    lab_c = val_data.with_lab("C")
    assert viewer.dataset.lab.name == "C" and viewer.source == "tile 1"
    np.testing.assert_array_equal(viewer.analysis.image, lab_c.load_sample(1)[0])  # the same tissue, lab C's look
    # The score over all validation tiles of lab C, against a pixel count of the engine's own predictions.
    matrix = np.zeros((2, 2), np.int64)
    for index in range(len(lab_c)):
        image, mask = lab_c[index]
        np.add.at(matrix, (mask.flatten().numpy(), predict_proba(trained, image).argmax(0).flatten().numpy()), 1)
    ious = [matrix[c, c] / (matrix[c].sum() + matrix[:, c].sum() - matrix[c, c]) for c in range(2)]
    assert viewer.lab_scores["C"].mean_iou == pytest.approx(np.mean(ious))
    home = viewer.lab_scores["A"].mean_iou
    assert f"lab A (the validation set's own) {home:.3f}" in viewer.lab_message.value
    assert f"lab C <b>{np.mean(ious):.3f}</b> ({np.mean(ious) - home:+.3f})" in viewer.lab_message.value
    viewer.show_lab("A")  # the Python API moves the control too
    assert viewer.lab.value == "A" and viewer.dataset is val_data and "→" not in viewer.lab_message.value
    untrained = create_model("unet", size="tiny", seed=5)
    viewer.set_model(untrained)  # a new model: the old scores are dropped, the lab on screen scored again
    assert list(viewer.lab_scores) == ["A"]
    assert viewer.lab_scores["A"].mean_iou == pytest.approx(score_dataset(untrained, val_data).mean_iou)
    # Data that is not generated tissue has no labs: the control stays hidden.
    images, masks = torch.rand(2, 3, TILE, TILE), torch.zeros(2, TILE, TILE, dtype=torch.int64)
    other = PredictionViewer(trained, torch.utils.data.TensorDataset(images, masks), class_names=["stroma", "tumor"])
    assert other.lab.layout.display == "none"
    with pytest.raises(TypeError, match="needs generated tiles"):
        other.show_lab("B")


def test_prediction_viewer_uploads(trained, val_data):
    viewer = PredictionViewer(trained, val_data, max_upload_side=100, max_upload_bytes=200_000)
    # bad bytes: a message, no traceback
    assert viewer.predict_file(b"certainly not a picture", "notes.txt") is False
    assert "not an image" in viewer.message.value and "notes.txt" in viewer.message.value
    assert viewer.source == "tile 0" and viewer.errors.outputs == ()
    # too large, too small, empty
    rng = np.random.default_rng(0)
    assert not viewer.predict_file(png_bytes(rng.integers(0, 255, (120, 64, 3), dtype=np.uint8)), "big.png")
    assert "limit is 100 pixels" in viewer.message.value
    assert not viewer.predict_file(png_bytes(rng.integers(0, 255, (20, 40, 3), dtype=np.uint8)), "small.png")
    assert "at least 32" in viewer.message.value

    # through the upload control, as the browser sends it: larger than a tile, so sliding windows
    picture = rng.integers(0, 255, (40, 70, 3), dtype=np.uint8)
    content = png_bytes(picture)
    now = datetime.datetime.now(datetime.timezone.utc)
    viewer.upload.value = ({"name": "mine.png", "type": "image/png", "size": len(content), "content": memoryview(content),
                            "last_modified": now},)  # fmt: skip
    assert viewer.source == "mine.png" and "sliding windows" in viewer.message.value
    assert viewer.upload.value == ()  # ready for the next file
    expected = sliding_window_proba(trained, picture, tile_size=TILE, overlap=TILE // 4)
    torch.testing.assert_close(viewer.analysis.probs, expected)
    assert viewer.analysis.mask is None and "No ground truth" in viewer.scores.value

def test_feature_map_viewer_switches_layers(trained, val_data):
    viewer = FeatureMapViewer(trained, val_data, max_maps=4)
    viewer.layer.value = "encoder.2"
    expected = feature_maps(trained, val_data[0][0], "encoder.2")
    torch.testing.assert_close(viewer.maps, expected)
    drawn = np.array(viewer.figure.data[1]["z"], dtype=float)  # gaps travel as None (JSON has no NaN)
    np.testing.assert_allclose(drawn, np.round(mosaic(expected[:4], columns=3), 3))  # 4 maps: 3 columns
    viewer.first_channel.value = 4
    drawn = np.array(viewer.figure.data[1]["z"], dtype=float)
    np.testing.assert_allclose(drawn, np.round(mosaic(expected[4:8], columns=3), 3))
    assert "16 feature maps" in viewer.caption.value and viewer.errors.outputs == ()

def test_race_trains_every_architecture_with_the_same_budget(train_data, val_data):
    config = TrainConfig(max_iters=2, batch_size=2, eval_every=2)
    race = ArchitectureRace(train_data, val_data, config, size="tiny", draw_every_s=0.0)
    race.start()
    assert race.join(JOIN_S)
    assert [r.model_name for r in race.results] == list_models(), race.errors.outputs
    for result in race.results:
        label = LABELS[result.model_name]
        assert race.figure.data[race.figure.trace_index(label)]["x"] == pytest.approx(result.history.seconds)
        iou = race.figure.data[race.figure.trace_index(f"{label} IoU")]["y"]
        assert iou == pytest.approx([e.mean_iou for e in result.history.evaluations])
    assert "FCN-8s" in race.table.value and "boundary F" in race.table.value
    assert "finished" in race.status.value and race.stop_button.disabled

def test_studio_wires_picker_dashboard_and_viewers(train_data, val_data):
    studio = TrainingStudio(model="unet", size="tiny", train_data=train_data, val_data=val_data,
                            config=TrainConfig(max_seconds=2, eval_every=20))  # fmt: skip
    studio.picker.architecture.value = "deeplabv3"
    assert studio.dashboard.model is studio.picker.model and type(studio.dashboard.model).__name__ == "DeepLabV3"
    assert type(studio.predictions.model).__name__ == "DeepLabV3"

    studio.dashboard.settings.budget_unit.value = "iterations"
    studio.dashboard.settings.batch_size.value = 2
    studio.dashboard.start_button.click()
    assert studio.dashboard.join(JOIN_S) and studio.dashboard.history.status == "completed"
    studio.tabs.selected_index = PREDICTIONS_TAB  # opening the tab shows the trained weights
    trained = studio.dashboard.model.state_dict()["head.classifier.weight"]
    torch.testing.assert_close(studio.predictions.model.state_dict()["head.classifier.weight"], trained)
    assert studio.predictions.model is not studio.dashboard.model  # a copy: training may go on
    studio.tabs.selected_index = FEATURES_TAB
    assert studio.features.model is studio.predictions.model
    assert studio.errors.outputs == () and studio.dashboard.errors.outputs == ()

def test_studio_builds_each_tab_when_first_opened(train_data, val_data):
    studio = TrainingStudio(model="unet", size="tiny", train_data=train_data, val_data=val_data,
                            config=TrainConfig(max_seconds=2, eval_every=20))  # fmt: skip
    pages = studio.tabs.children
    assert pages[MODEL_TAB] is studio.picker
    assert all("preparing" in page.children[0].value for page in pages[TRAIN_TAB:])  # nothing built yet
    studio.picker.architecture.value = "fcn8s"  # picked before the dashboard exists: it must get this model
    for tab in (TRAIN_TAB, PREDICTIONS_TAB, FEATURES_TAB, RACE_TAB):
        studio.tabs.selected_index = tab
    assert pages[TRAIN_TAB].children == (studio.dashboard,)
    assert studio.dashboard.model is studio.picker.model and type(studio.dashboard.model).__name__ == "FCN8s"
    assert pages[PREDICTIONS_TAB].children[-1] is studio.predictions
    assert pages[FEATURES_TAB].children == (studio.features,)
    assert pages[RACE_TAB].children == (studio.race,)
    assert type(studio.features.model).__name__ == "FCN8s" and studio.features.model is not studio.dashboard.model


def test_starting_the_race_stops_the_dashboards_run(train_data, val_data):
    """One run per kernel: the studio's dashboard and race never train at the same time."""
    dashboard = TrainingDashboard(create_model("unet", size="tiny"), train_data, val_data,
                                  TrainConfig(batch_size=2, max_iters=100_000), warm_up=False)  # fmt: skip
    dashboard.start()
    wait_until(lambda: dashboard.history.losses)
    race = ArchitectureRace(train_data, val_data, TrainConfig(max_iters=1, batch_size=2), models=["unet"], size="tiny")
    race.start()
    assert dashboard.join(JOIN_S) and dashboard.history.status == "stopped"
    assert race.join(JOIN_S) and [r.model_name for r in race.results] == ["unet"]
    wait_until(lambda: "stopped" in dashboard.status.value)  # the dashboard says so


def test_dashboard_is_not_left_on_running_by_a_callback_that_raises_keyboard_interrupt(train_data, val_data):
    from segtutor.train import Callback

    class Rude(Callback):
        def on_train_end(self, state):
            raise KeyboardInterrupt

    dashboard = TrainingDashboard(create_model("unet", size="tiny"), train_data, val_data,
                                  TrainConfig(batch_size=2, max_iters=3), warm_up=False)  # fmt: skip
    dashboard.session.callbacks.insert(0, Rude())  # before the dashboard: it used to hear nothing
    dashboard.start()
    assert dashboard.join(JOIN_S)
    assert "completed" in dashboard.status.value and ">running<" not in dashboard.status.value
    assert dashboard.stop_button.disabled  # nothing left to stop


def test_an_upload_says_predicting_before_the_work_and_names_a_nan_model(trained, val_data, monkeypatch):
    import segtutor.widgets.studio.prediction as prediction

    viewer = PredictionViewer(trained, val_data)
    seen = []
    original = prediction.analyse_prediction

    def watched(*args, **kwargs):
        seen.append(viewer.message.value)  # what the page shows while the prediction runs
        return original(*args, **kwargs)

    monkeypatch.setattr(prediction, "analyse_prediction", watched)
    picture = np.random.default_rng(1).integers(0, 255, (40, 70, 3), dtype=np.uint8)
    assert viewer.predict_file(png_bytes(picture), "big.png")
    assert seen == ["<b>big.png</b>: 70×40 pixels, predicting with sliding windows of 32 pixels…"]
    assert "predicted with sliding windows" in viewer.message.value

    broken = create_model("unet", size="tiny")
    with torch.no_grad():
        next(broken.parameters()).fill_(math.nan)
    viewer.model = broken
    assert not viewer.predict_file(png_bytes(picture), "big.png")
    assert "the model predicts NaN" in viewer.message.value and "class 0" in viewer.message.value


def test_a_live_preview_that_predicts_nan_says_so_and_the_run_goes_on(train_data, val_data):
    class NanWhenEvaluated(torch.nn.Module):  # trains normally, predicts NaN in eval mode
        def __init__(self):
            super().__init__()
            self.inner = create_model("unet", size="tiny")

        def forward(self, images):
            logits = self.inner(images)
            return logits if self.training else logits * math.nan

    dashboard = TrainingDashboard(NanWhenEvaluated(), train_data, val_data, TrainConfig(batch_size=2, max_iters=3),
                                  preview_every_s=0, draw_every_s=0, warm_up=False)  # fmt: skip
    dashboard.start()
    assert dashboard.join(JOIN_S)
    assert dashboard.history.status == "completed" and len(dashboard.history.losses) == 3
    assert dashboard.prediction.layout["title"]["text"] == "prediction at step 3: NaN"
    assert "the validation loss ended at nan" in dashboard.history.message


def test_start_is_disabled_while_training_and_the_status_explains_the_cosine_lr(train_data, val_data):
    config = TrainConfig(batch_size=2, max_iters=10_000, schedule="cosine", eval_every=1000)
    dashboard = TrainingDashboard(create_model("unet", size="tiny"), train_data, val_data, config,
                                  preview_every_s=0.0, draw_every_s=0.0, warm_up=False)  # fmt: skip
    assert not dashboard.start_button.disabled and not dashboard.lr_finder_button.disabled
    dashboard.start_button.click()
    wait_until(lambda: dashboard.history is not None and len(dashboard.history.losses) >= 2)
    assert dashboard.start_button.disabled and dashboard.lr_finder_button.disabled  # Stop first, then Start
    dashboard.stop_button.click()
    assert dashboard.join(JOIN_S)
    wait_until(lambda: not dashboard.start_button.disabled)
    status = dashboard.status.value
    assert "(cosine: falls to 0 by the end)" in status  # a final lr near 0 is the schedule, not a bug
    # every part of the line keeps its words together: it wraps between parts, never inside "val mean IoU 0.9"
    assert status.count("<span style='white-space:nowrap'>") == status.count(" · ") + 1


def test_overlays_have_a_class_legend_and_two_classes_no_third_error_colour(train_data, val_data):
    model = create_model("unet", size="tiny", seed=0)
    dashboard = TrainingDashboard(model, train_data, val_data, TrainConfig(batch_size=2, max_iters=2), warm_up=False)
    viewer = PredictionViewer(model, val_data)
    for widget in (dashboard, viewer):
        texts = [child.value for child in widget.children if isinstance(child, widgets.HTML)]
        (legend,) = [text for text in texts if "overlay colours" in text]
        for name, color in zip(val_data.class_names, val_data.class_colors):
            assert name in legend and f"rgb{tuple(color)}" in legend
    assert not any("yellow" in child.value for child in viewer.children if isinstance(child, widgets.HTML))
    axis = viewer.figure.layout["coloraxis"]
    assert axis["colorscale"][0][1] == "rgb(5,48,97)" and (axis["cmin"], axis["cmax"]) == (0, 1)  # RdBu_r, as 09
    assert axis["colorbar"]["title"]["text"] == "probability"


def test_race_start_is_disabled_while_racing_and_the_table_spaces_its_columns(train_data, val_data):
    race = ArchitectureRace(train_data, val_data, TrainConfig(batch_size=2, max_iters=2, eval_every=2),
                            models=("unet",), size="tiny")  # fmt: skip
    race.start()
    assert race.start_button.disabled and not race.stop_button.disabled
    assert race.join(JOIN_S)
    assert not race.start_button.disabled
    assert race.table.value.count("padding:2px 10px;white-space:nowrap") >= 2 * 8  # header and row, 8 columns


def test_studio_train_tab_opens_with_the_models_batch_size(train_data, val_data):
    studio = TrainingStudio(model="unet", size="tiny", train_data=train_data, val_data=val_data)
    dashboard = studio.dashboard  # raised "Invalid selection" when the link's copy offered "each model's own"
    assert studio.settings.batch_size.value == dashboard.settings.batch_size.value
    studio.settings.batch_size.value = 4
    assert dashboard.settings.batch_size.value == 4
    studio.picker.architecture.value = "deeplabv3"  # another model's recommendation reaches both
    assert studio.settings.batch_size.options == dashboard.settings.batch_size.options
    assert studio.settings.batch_size.value == dashboard.settings.batch_size.value


def test_hovering_the_viewers_truth_and_prediction_names_the_class_and_its_probability(val_data):
    model = create_model("unet", size="tiny", seed=0)
    viewer = PredictionViewer(model, val_data)
    image, mask = val_data[0]
    probs = predict_proba(model, image)  # (K, H, W), the engine's own
    prediction = viewer.figure.data[viewer.figure.trace_index("prediction")]
    truth = viewer.figure.data[viewer.figure.trace_index("ground truth")]
    for row, col in ((0, 0), (5, 17), (TILE - 1, TILE - 1)):
        c = int(probs[:, row, col].argmax())
        name = val_data.class_names[c]
        assert prediction["text"][row][col] == f"{name} (p = {float(probs[c, row, col]):.2f})"
        assert truth["text"][row][col] == val_data.class_names[int(mask[row, col])]
    assert prediction["hovertemplate"].startswith("prediction: %{text}") and "color" not in prediction["hovertemplate"]


def hboxes(widget: widgets.Widget) -> list[widgets.HBox]:
    """Every HBox inside ``widget`` (itself included)."""
    found = [widget] if isinstance(widget, widgets.HBox) else []
    for child in getattr(widget, "children", ()):
        found += hboxes(child)
    return found


def test_every_row_of_controls_wraps_where_the_output_is_narrow(train_data, val_data):
    from segtutor.widgets import ConvolutionExplorer, OptimizerExplorer, UpsamplingExplorer

    model = create_model("unet", size="tiny", seed=0)
    views = [
        TrainingDashboard(model, train_data, val_data, TrainConfig(batch_size=2, max_iters=2), warm_up=False),
        PredictionViewer(model, val_data), ArchitectureRace(train_data, val_data, size="tiny"),
        ConvolutionExplorer(), UpsamplingExplorer(), OptimizerExplorer(),
    ]  # fmt: skip
    for view in views:
        rows = hboxes(view)
        assert rows, type(view).__name__
        fixed = [row for row in rows if row.layout.flex_flow != "row wrap"]
        assert fixed == [], f"{type(view).__name__}: a row that cannot wrap is clipped in a narrow output"


def test_status_lines_wrap_between_their_parts_never_inside_one(train_data, val_data):
    import re

    from segtutor.widgets.controls import status_line

    line = status_line(["<b>running</b>", "step 48 / 150", "val mean IoU 0.931"])
    parts = re.findall(r"<span style='white-space:nowrap'>(.*?)</span>", line)
    assert parts == ["<b>running</b>", "step 48 / 150", "val mean IoU 0.931"]
    assert re.sub(r"<span style='white-space:nowrap'>.*?</span>", "", line) == " · " * 2  # the breaks: between parts
    dashboard = TrainingDashboard(create_model("unet", size="tiny"), train_data, val_data,
                                  TrainConfig(batch_size=2, max_iters=2), warm_up=False)  # fmt: skip
    dashboard.start()
    assert dashboard.join(JOIN_S)
    assert "<span style='white-space:nowrap'>val mean IoU " in dashboard.status.value
