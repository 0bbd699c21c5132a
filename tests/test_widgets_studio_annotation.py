"""Uncertainty-guided annotation in the studio, headless: press the buttons, click patches, and compare what is
drawn with the engine's pool, proposals and rounds."""

from __future__ import annotations

import statistics

import pytest
from helpers import JOIN_S

from segtutor.data import TissueDataset
from segtutor.figures import png_uri
from segtutor.predict import image_to_rgb, overlay
from segtutor.train import TrainConfig
from segtutor.widgets import AnnotationViewer, TrainingStudio
from segtutor.widgets.studio.app import ANNOTATE_TAB

pytestmark = pytest.mark.usefixtures("one_thread")


def test_train_propose_click_annotate_and_compare():
    pool, val = TissueDataset(6, 32, seed=0), TissueDataset(2, 32, seed=1)
    viewer = AnnotationViewer(pool, val, TrainConfig(lr=3e-3, max_iters=3, batch_size=2), pool_size=4,
                              patches_per_round=3)  # fmt: skip
    assert viewer.patch_size == 8 and len(viewer.pool) == 4 and viewer.propose_button.disabled
    viewer.start_button.click()
    assert viewer.join(JOIN_S) and viewer.errors.outputs == ()
    assert [r.labelled_pixels for r in viewer.learner.rounds] == [2 * 32 * 32]
    assert "round 0" in viewer.status.value and not viewer.propose_button.disabled

    viewer.propose_button.click()
    proposals = list(viewer.proposals)
    assert len(proposals) == 3 and all(not viewer.pool.labelled[p.tile, p.row // 8, p.col // 8] for p in proposals)
    tile = viewer.tile.value
    outlined = {(s["x0"] + 0.5, s["y0"] + 0.5) for s in viewer.figure.layout["shapes"] if s["xref"] == "x"}
    assert outlined == {(p.col, p.row) for p in proposals if p.tile == tile}
    # a click on an outlined patch takes it out, a click on another one adds it
    first = next(p for p in proposals if p.tile == tile)
    viewer.figure.click(0, x=first.col + 2, y=first.row + 3)
    assert first not in viewer.proposals and len(viewer.proposals) == 2
    free = next(p for p in viewer.pool.unlabelled_patches() if p.tile == tile and p not in proposals)
    viewer.figure.click(0, x=free.col, y=free.row)
    chosen = list(viewer.proposals)
    assert (chosen[-1].tile, chosen[-1].row, chosen[-1].col) == (free.tile, free.row, free.col)

    viewer.annotate_button.click()
    assert viewer.join(JOIN_S) and viewer.errors.outputs == ()
    second = viewer.learner.rounds[1]
    assert second.labelled_pixels == 2 * 32 * 32 + 3 * 8 * 8 and second.patches == chosen
    image = viewer.pool.images[viewer.tile.value]
    labels = viewer.pool.label_mask()[viewer.tile.value]
    drawn = next(t for t in viewer.figure.data if t["name"] == "labels")
    assert drawn["source"] == png_uri(overlay(image_to_rgb(image), labels, viewer.colors, 0.5))
    curve = next(t for t in viewer.figure.data if t["name"] == "your rounds")
    assert curve["x"] == [r.labelled_pixels for r in viewer.learner.rounds]
    assert curve["y"] == pytest.approx([r.iou[1] for r in viewer.learner.rounds], nan_ok=True)

    viewer.compare(seeds=(0, 1), rounds=1)
    assert viewer.join(JOIN_S) and viewer.errors.outputs == ()
    runs = viewer.comparison["uncertainty"]
    mean = statistics.mean(run[-1].iou[1] for run in runs)
    assert f"{mean:.3f} with uncertainty-chosen patches" in viewer.verdict.value
    assert "of 2 seeds" in viewer.verdict.value
    line = next(t for t in viewer.figure.data if t["name"] == "uncertainty (3 seeds)")
    assert line["y"][-1] == pytest.approx(mean)


def test_the_studio_builds_the_annotate_tab_on_first_opening():
    studio = TrainingStudio(model="fcn8s", size="tiny", tile_size=64, num_train=4, num_val=2)
    assert studio._annotation is None
    studio.tabs.selected_index = ANNOTATE_TAB
    assert studio._annotation is not None and studio._pages[ANNOTATE_TAB].children == (studio.annotation,)
    assert studio.annotation.model_name == "fcn8s" and studio.errors.outputs == ()
