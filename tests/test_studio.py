"""The training studio, headless: boundary metric, architecture diagram, training session and dashboard, viewers, race.

Tiny models on 32-pixel tiles and budgets of a few steps keep the file fast on 2 cores. Every thread is joined with
a timeout.
"""

from __future__ import annotations

import datetime
import io
import math
import time

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from segtutor.data import TissueDataset
from segtutor.metrics import boundary_pixels, boundary_scores
from segtutor.models import count_flops, count_parameters, create_model, forward_flops, layer_table, list_models
from segtutor.predict import overlay, predict_proba, sliding_window_proba
from segtutor.train import History, TrainConfig
from segtutor.widgets.diagram import (
    SKIP_COLOR,
    architecture_figure,
    describe_architecture,
    legend_html,
    place_stages,
)
from segtutor.widgets.features import FeatureMapViewer, feature_maps, kernel_mosaic, mosaic
from segtutor.widgets.model_picker import ModelPicker, build_model
from segtutor.widgets.pictures import png_uri
from segtutor.widgets.prediction import (
    FALSE_NEGATIVE,
    FALSE_POSITIVE,
    OTHER_ERROR,
    TRUE_NEGATIVE,
    TRUE_POSITIVE,
    PredictionViewer,
    error_map,
    read_upload,
)
from segtutor.widgets.race import ArchitectureRace, seconds_per_iteration
from segtutor.widgets.session import RunListener, TrainingSession
from segtutor.widgets.studio import FEATURES_TAB, MODEL_TAB, PREDICTIONS_TAB, RACE_TAB, TRAIN_TAB, TrainingStudio
from segtutor.widgets.training import TrainingDashboard, smooth

TILE = 32
JOIN_S = 60  # bound on every wait for a worker thread


@pytest.fixture(scope="module")
def train_data():
    return TissueDataset(8, TILE, seed=0)


@pytest.fixture(scope="module")
def val_data():
    return TissueDataset(4, TILE, seed=1)


def wait_until(condition, timeout: float = JOIN_S) -> None:
    """Poll ``condition()`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.02)


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


# ---- boundary F-score ------------------------------------------------------------------------------------------
def brute_boundary(region: np.ndarray) -> np.ndarray:
    height, width = region.shape
    edge = np.zeros_like(region)
    for y in range(height):
        for x in range(width):
            if region[y, x]:
                neighbours = [(y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)]
                edge[y, x] = any(0 <= v < height and 0 <= u < width and not region[v, u] for v, u in neighbours)
    return edge


def brute_boundary_f(mask: np.ndarray, pred: np.ndarray, c: int, tolerance: float) -> tuple[float, float, float]:
    true_edge = np.argwhere(brute_boundary(mask == c))
    pred_edge = np.argwhere(brute_boundary(pred == c))
    if len(true_edge) == 0 and len(pred_edge) == 0:
        return math.nan, math.nan, math.nan
    if len(true_edge) == 0 or len(pred_edge) == 0:
        return 0.0, 0.0, 0.0
    distances = np.sqrt(((pred_edge[:, None, :] - true_edge[None, :, :]) ** 2).sum(-1))  # (P, T)
    precision = float((distances.min(1) <= tolerance).mean())
    recall = float((distances.min(0) <= tolerance).mean())
    f_score = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f_score


def blobs(seed: int, size: int = 14, num_classes: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, num_classes, (size // 2, size // 2))
    return np.kron(coarse, np.ones((2, 2), dtype=np.int64))  # 2x2 blocks: real regions with outlines


def test_boundary_pixels_match_a_neighbour_loop():
    for seed in range(3):
        region = blobs(seed) == 1
        np.testing.assert_array_equal(boundary_pixels(region), brute_boundary(region))


@pytest.mark.parametrize("tolerance", [0, 1, 2.5])
def test_boundary_scores_match_brute_force_distances(tolerance):
    mask, pred = blobs(0), blobs(1)
    pred[:7] = mask[:7]  # half right, half wrong
    scores = boundary_scores(torch.from_numpy(mask), torch.from_numpy(pred), 3, tolerance=tolerance)
    for c in range(3):
        expected = brute_boundary_f(mask, pred, c, tolerance)
        np.testing.assert_allclose([scores.precision[c], scores.recall[c], scores.f_score[c]], expected)


def test_boundary_scores_perfect_absent_and_shifted():
    mask = np.zeros((16, 16), np.int64)
    mask[4:12, 4:12] = 1
    perfect = boundary_scores(mask, mask, 3)
    assert perfect.f_score[:2] == [1.0, 1.0] and math.isnan(perfect.f_score[2])  # class 2 absent on both sides
    assert perfect.mean_f_score == 1.0
    shifted = np.roll(mask, 1, axis=1)  # the square one pixel to the right
    assert boundary_scores(mask, shifted, 2, tolerance=1).f_score[1] == 1.0
    assert boundary_scores(mask, shifted, 2, tolerance=0).f_score[1] < 1.0
    empty = boundary_scores(mask, np.zeros_like(mask), 2)
    assert empty.f_score[1] == 0.0  # a true outline, none predicted


def test_boundary_scores_ignore_unlabelled_pixels_and_bad_input():
    mask = np.zeros((8, 12), np.int64)
    mask[:, 4:8] = 1  # a band of class 1: outlines at columns 3/4 and 7/8
    pred = mask.copy()
    pred[:, 10:] = 1  # wrong in columns 10-11 ...
    unlabelled = mask.copy()
    unlabelled[:, 10:] = 255  # ... which nobody annotated
    assert boundary_scores(unlabelled, pred, 2, tolerance=0).f_score == [1.0, 1.0]
    assert max(boundary_scores(mask, pred, 2, tolerance=0).f_score) < 1.0  # annotated, the error counts
    with pytest.raises(TypeError, match="integer class indices"):
        boundary_scores(mask.astype(float), pred, 2)
    with pytest.raises(ValueError, match="same shape"):
        boundary_scores(mask, pred[:4], 2)
    with pytest.raises(ValueError, match="tolerance"):
        boundary_scores(mask, pred, 2, tolerance=-1)


# ---- smoothing, pictures ---------------------------------------------------------------------------------------
def test_smooth_is_a_debiased_moving_average():
    values = [1.0, 3.0, math.nan, 2.0, 5.0]
    expected, average, count = [], 0.0, 0
    for value in values:
        if not math.isnan(value):
            average, count = 0.9 * average + 0.1 * value, count + 1
        expected.append(average / (1 - 0.9**count))
    assert smooth(values, 0.9) == pytest.approx(expected)
    assert smooth([4.0]) == [pytest.approx(4.0)]  # the first point is the value itself
    assert math.isnan(smooth([math.nan])[0])


def test_png_uri_round_trips():
    import base64

    picture = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    uri = png_uri(picture, scale=2)
    decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))
    np.testing.assert_array_equal(decoded, picture.repeat(2, 0).repeat(2, 1))
    with pytest.raises(TypeError, match="uint8"):
        png_uri(picture.astype(float))


# ---- architecture diagram and model picker ---------------------------------------------------------------------
@pytest.mark.parametrize("name", ["unet", "fcn8s", "deeplabv3"])
def test_describe_architecture_shapes_counts_and_arrows(name):
    model = create_model(name, size="tiny")
    summary = describe_architecture(model, (3, 64, 64))
    # reference: every module's output shape from a forward pass with our own hooks
    shapes = {}
    hooks = [module.register_forward_hook(lambda m, i, o, n=n: shapes.__setitem__(n, tuple(o.shape)))
             for n, module in model.named_modules() if n]  # fmt: skip
    model.eval()
    with torch.no_grad():
        logits = model(torch.rand(1, 3, 64, 64))
    for hook in hooks:
        hook.remove()
    for item in summary.stages:
        if item.stage.module:
            assert item.shape == shapes[item.stage.module], item.stage.name
    assert summary.stages[0].shape == (1, 3, 64, 64)
    assert summary.stages[-1].shape == tuple(logits.shape)  # the last stage gives the logits
    assert summary.num_params == sum(p.numel() for p in model.parameters())
    assert summary.flops == count_flops(model, (3, 64, 64))  # hooks count what FlopCounterMode counts
    assert forward_flops(model, (3, 45, 61)) == count_flops(model, (3, 45, 61))  # odd sizes too
    assert [row.name for row in summary.layers] == [row.name for row in layer_table(model, (3, 64, 64))]

    figure = architecture_figure(summary)
    arrows = [a for a in figure.layout.annotations if a.showarrow]
    assert len(figure.layout.shapes) == len(summary.stages)  # one box per stage (and the input)
    assert len(arrows) == sum(len(item.stage.inputs) for item in summary.stages)
    skips = [a for a in arrows if a.arrowcolor == SKIP_COLOR]
    assert len(skips) == {"unet": 4, "fcn8s": 2, "deeplabv3": 0}[name]
    legend = legend_html(summary)
    assert ("skip connection" in legend) == (name != "deeplabv3") and ("ASPP" in legend) == (name == "deeplabv3")


def test_place_stages_draws_the_u_and_the_aspp_fan():
    unet = place_stages(create_model("unet", size="tiny").describe())
    for level in range(4):
        assert unet[f"enc{level}"][1] == unet[f"dec{level}"][1] == -level  # a skip is a horizontal arrow
        assert unet[f"dec{level}"][0] > unet["enc4"][0] > unet[f"enc{level}"][0]
    deeplab = place_stages(create_model("deeplabv3", size="tiny").describe())
    branches = [deeplab[name] for name in ("aspp_1x1", "aspp_rate12", "aspp_rate24", "aspp_rate36", "aspp_pooling")]
    assert len({x for x, _ in branches}) == 1 and len({y for _, y in branches}) == 5  # parallel, one column
    fcn = place_stages(create_model("fcn8s", size="tiny").describe())
    assert fcn["score_pool4"][0] == fcn["fuse_pool4"][0] - 1  # a score layer sits next to the sum it feeds


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
    labels = " ".join(a["text"] for a in picker.figure.layout["annotations"])
    assert "score_pool4" in labels and "enc0" not in labels  # the boxes are FCN-8s's stages
    assert f"{picker.summary.num_params:,}" in picker.counts.value != unet_counts
    assert "upscore_pool4" in picker.table.value  # the layer table follows

    picker.size.value = "small"
    assert picker.summary.num_params == count_parameters(create_model("fcn8s", size="small"))
    reference = build_model("fcn8s", "small", seed=0)
    for mine, theirs in zip(picker.model.parameters(), reference.parameters()):
        torch.testing.assert_close(mine, theirs)  # seeded: the same initial weights every time
    assert len(received) == 2 and picker.errors.outputs == ()


# ---- the training session (no widgets) ---------------------------------------------------------------------------
class Recorder(RunListener):
    def __init__(self):
        self.events = []

    def on_run_start(self, session):
        self.events.append("start")

    def on_step(self, session):
        self.events.append("step")

    def on_wait(self, session):
        self.events.append("wait")

    def on_run_end(self, session):
        self.events.append(f"end {session.history.status}")


def test_session_pause_set_lr_resume_stop(train_data, val_data):
    session = TrainingSession(create_model("unet", size="tiny"), train_data, val_data, warm_up=False,
                              tick_seconds=0.05)  # fmt: skip
    recorder = Recorder()
    session.listeners.append(recorder)
    session.start(TrainConfig(max_iters=10_000, batch_size=2, schedule="constant", lr=1e-3, eval_every=3))
    wait_until(lambda: session.history is not None and len(session.history.losses) >= 3)
    session.pause()
    wait_until(lambda: "wait" in recorder.events)  # the worker noticed and idles
    steps = len(session.history.losses)
    time.sleep(0.2)
    assert session.state == "paused" and len(session.history.losses) == steps  # no step while paused
    session.set_lr(5e-4)
    session.resume()
    wait_until(lambda: len(session.history.losses) >= steps + 3)
    session.stop()
    assert session.join(JOIN_S)
    history = session.history
    assert session.state == "stopped" and history.status == "stopped"
    assert history.lrs[:steps] == [1e-3] * steps and set(history.lrs[steps:]) == {5e-4}
    assert recorder.events[0] == "start" and recorder.events[-1] == "end stopped"
    assert recorder.events.count("step") == len(history.losses)
    total = len(history.losses)
    assert history.val_iterations == list(range(3, total + 1, 3)) + ([total] if total % 3 else [])  # + at the stop


def test_session_restarts_from_scratch_and_keeps_model_after_divergence(train_data, val_data):
    model = create_model("unet", size="tiny")
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    session = TrainingSession(model, train_data, val_data, warm_up=False)
    session.start(TrainConfig(max_iters=2, batch_size=2))
    assert session.join(JOIN_S) and session.state == "completed"
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    assert not torch.equal(trained["classifier.weight"], initial["classifier.weight"])

    # from scratch: the initial weights come back, so the same run gives the same weights
    session.start(TrainConfig(max_iters=2, batch_size=2))
    assert session.join(JOIN_S)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, trained[key])

    # an absurd learning rate: the run diverges, model and history stay
    session.start(TrainConfig(max_iters=50, batch_size=2, optimizer="sgd", lr=1e12, schedule="constant"),
                  from_scratch=False)  # fmt: skip
    assert session.join(JOIN_S)
    assert session.state == "diverged" and "smaller learning rate" in session.history.message
    assert session.model is model and all(torch.isfinite(p).all() for p in model.parameters())
    assert len(session.history.losses) >= 1


def test_a_new_session_stops_the_old_run(train_data, val_data):
    """Re-running a notebook cell builds a new dashboard: the old one's run must not go on in the background."""
    old = TrainingSession(create_model("unet", size="tiny"), train_data, val_data, warm_up=False)
    old.start(TrainConfig(max_iters=100_000, batch_size=2))
    wait_until(lambda: old.history is not None and len(old.history.losses) >= 1)
    new = TrainingSession(create_model("unet", size="tiny"), train_data, val_data, warm_up=False)
    assert old.join(JOIN_S) and old.state == "stopped"
    assert new.state == "idle"


class Broken(nn.Module):
    """A model whose forward pass fails: the error must reach the session, not vanish in the thread."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)

    def forward(self, images):
        raise RuntimeError("this layer is broken")


def test_session_reports_errors(train_data, val_data):
    session = TrainingSession(Broken(), train_data, val_data, warm_up=False)
    recorder = Recorder()
    session.listeners.append(recorder)
    session.start(TrainConfig(max_iters=3, batch_size=2))
    assert session.join(JOIN_S)
    assert session.state == "error" and "this layer is broken" in session.history.message
    assert "RuntimeError: this layer is broken" in session.error_text
    assert recorder.events[-1] == "end error"

    session.start(TrainConfig(max_iters=3, batch_size=64))  # more than the 8 tiles: the trainer refuses
    assert session.join(JOIN_S)
    assert session.state == "error" and "batch_size=64" in session.history.message
    with pytest.raises(TypeError, match="TrainConfig"):
        session.start({"max_iters": 3})


# ---- the training dashboard -----------------------------------------------------------------------------------
def test_dashboard_start_pause_lr_resume_stop_and_curves(train_data, val_data):
    dashboard = TrainingDashboard(create_model("unet", size="tiny"), train_data, val_data, batch_size=2,
                                  budget=10_000, budget_unit="iterations", schedule="constant", eval_every=2,
                                  preview_every_s=0.0, draw_every_s=0.0, warm_up=False)  # fmt: skip
    initial_preview = dashboard.figure.data[dashboard._prediction_trace]["source"]
    dashboard.start_button.click()
    wait_until(lambda: dashboard.history is not None and len(dashboard.history.losses) >= 4)
    dashboard.pause_button.click()
    wait_until(lambda: dashboard.session.state == "paused" and "paused" in dashboard.status.value)
    assert not dashboard.resume_button.disabled and dashboard.pause_button.disabled
    steps = len(dashboard.history.losses)
    dashboard.lr.value = 2e-4  # while paused: used from the next step on
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
    assert data[dashboard._prediction_trace]["source"] != initial_preview  # the live preview was drawn
    assert dashboard.stop_button.disabled and dashboard.pause_button.disabled

    dashboard.log_scale.value = True
    assert dashboard.figure.layout["yaxis"]["type"] == "log"


def test_dashboard_runs_again_in_seconds_and_shows_errors(train_data, val_data):
    dashboard = TrainingDashboard(create_model("fcn8s", size="tiny"), train_data, val_data, batch_size=2,
                                  budget=1, budget_unit="seconds", warm_up=False)  # fmt: skip
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


# ---- prediction viewer -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(train_data, val_data):
    session = TrainingSession(create_model("unet", size="tiny"), train_data, val_data, warm_up=False)
    session.start(TrainConfig(max_iters=4, batch_size=2))
    assert session.join(JOIN_S)
    return session.model


def test_error_map_matches_a_pixel_loop():
    mask, pred = blobs(2, 10), blobs(3, 10)
    mask[0, :3] = 255
    codes = error_map(mask, pred, 1)
    for (y, x), code in np.ndenumerate(codes):
        t, p = mask[y, x], pred[y, x]
        expected = 255 if t == 255 else TRUE_POSITIVE if t == p == 1 else FALSE_POSITIVE if p == 1 else \
            FALSE_NEGATIVE if t == 1 else TRUE_NEGATIVE if t == p else OTHER_ERROR  # fmt: skip
        assert code == expected, (y, x)


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
    with pytest.raises(ValueError, match="empty"):
        read_upload(b"")

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


# ---- feature maps ----------------------------------------------------------------------------------------------
def test_feature_maps_equal_the_module_output(trained, val_data):
    image, _ = val_data[0]
    maps = feature_maps(trained, image, "encoder.1")
    trained.eval()
    with torch.no_grad():
        expected = trained.encoder[1](trained.encoder[0](image[None]))[0]
    trained.train()
    torch.testing.assert_close(maps, expected)
    with pytest.raises(ValueError, match="no module"):
        feature_maps(trained, image, "encoder.99")


def test_mosaic_and_kernel_mosaic():
    maps = torch.stack([torch.arange(4.0).reshape(2, 2), torch.full((2, 2), 7.0), -torch.arange(4.0).reshape(2, 2)])
    grid = mosaic(maps, columns=2, gap=1)
    assert grid.shape == (5, 5)
    np.testing.assert_allclose(grid[:2, :2], [[0, 1 / 3], [2 / 3, 1]])  # scaled to [0, 1] on its own
    np.testing.assert_allclose(grid[:2, 3:], 0.0)  # a flat map
    np.testing.assert_allclose(grid[3:, :2], [[1, 2 / 3], [1 / 3, 0]])
    assert np.isnan(grid[2]).all() and np.isnan(grid[3:, 3:]).all()  # gaps and the unused cell

    weight = torch.zeros(2, 3, 3, 3)
    weight[1, 0, 1, 1] = 2.0  # one red tap
    pictures = kernel_mosaic(weight, columns=2)
    assert pictures.shape == (3, 7, 3) and pictures.dtype == np.uint8
    assert (pictures[:, :3] == 128).all()  # an all-zero kernel is mid-grey
    assert pictures[1, 5].tolist() == [255, 128, 128] and (pictures[:, 3] == 255).all()  # red tap; white gap


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


# ---- race and studio -----------------------------------------------------------------------------------------
def test_race_trains_every_architecture_with_the_same_budget(train_data, val_data):
    race = ArchitectureRace(train_data, val_data, size="tiny", budget=2, budget_unit="iterations", batch_size=2,
                            eval_every=2, draw_every_s=0.0)  # fmt: skip
    race.start()
    assert race.join(JOIN_S)
    assert [r.model_name for r in race.results] == list_models(), race.errors.outputs
    for index, result in enumerate(race.results):
        assert result.iterations == 2 and result.status == "completed"
        assert result.num_params == count_parameters(build_model(result.model_name, "tiny"))
        assert result.flops == count_flops(build_model(result.model_name, "tiny"), (3, TILE, TILE))
        assert result.seconds_per_iteration == pytest.approx(seconds_per_iteration(result.history))
        assert result.mean_iou == pytest.approx(result.history.evaluations[-1].mean_iou)
        assert 0 <= result.boundary.mean_f_score <= 1 or math.isnan(result.boundary.mean_f_score)
        assert race.figure.data[2 * index]["x"] == pytest.approx(result.history.seconds)
    assert "FCN-8s" in race.table.value and "boundary F" in race.table.value
    assert seconds_per_iteration(History(seconds=[1.0, 3.0, 4.0])) == 1.5  # steps of 2 s and 1 s


def test_studio_wires_picker_dashboard_and_viewers(train_data, val_data):
    studio = TrainingStudio(model="unet", size="tiny", train_data=train_data, val_data=val_data, budget=2)
    studio.picker.architecture.value = "deeplabv3"
    assert studio.dashboard.model is studio.picker.model and type(studio.dashboard.model).__name__ == "DeepLabV3"
    assert type(studio.predictions.model).__name__ == "DeepLabV3"

    studio.dashboard.budget_unit.value = "iterations"
    studio.dashboard.batch_size.value = 2
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
    studio = TrainingStudio(model="unet", size="tiny", train_data=train_data, val_data=val_data, budget=2)
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
