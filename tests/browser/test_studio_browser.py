"""The training studio served by Voila in headless Chromium: it renders, trains live, pauses, stops, predicts uploads.

Prints the measured times (page requested → first widgets, → first plot, click → status change) and saves
screenshots to /tmp/segtutor-shots/studio-*.png.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PIL import Image

from segtutor.data import generate_tile
from segtutor.models import list_models

pytestmark = pytest.mark.browser

STUDIO = Path(__file__).parents[2] / "notebooks" / "dashboards" / "training_studio.ipynb"
CURVES = ".segtutor-training-curves .js-plotly-plot"
LOSS_POINTS = f"(document.querySelector('{CURVES}')?.data?.[0]?.x?.length ?? -1)"
STATUS = ".segtutor-training-status"


def loss_points(page) -> int:
    """Points of the training-loss curve as the browser draws it."""
    return page.evaluate(LOSS_POINTS)


def open_tab(page, title: str) -> None:
    page.locator(".lm-TabBar-tab", has_text=title).click()


def upload(page, path: Path) -> None:
    """Choose ``path`` in the upload control's file dialog (its <input type=file> is not in the page)."""
    with page.expect_file_chooser(timeout=15_000) as chooser:
        page.locator(".widget-upload").click()
    chooser.value.set_files(str(path))


def click_and_time(page, button: str, status_text: str) -> float:
    """Click a button, wait for the status line to say ``status_text``; seconds from click to status."""
    started = time.monotonic()
    page.get_by_role("button", name=button).click()
    page.locator(STATUS, has_text=status_text).wait_for(timeout=15_000)
    return time.monotonic() - started


def test_training_studio_trains_live_in_voila(voila_page, tmp_path):
    voila = voila_page(str(STUDIO))
    seconds_to_plot = voila.wait_for_plots(1, timeout_s=90)
    page = voila.page
    print(f"\ntraining studio: widgets after {voila.seconds_to_widgets:.1f} s, first plot after "
          f"{seconds_to_plot:.1f} s ({voila.timeline()})")  # fmt: skip
    page.locator(".segtutor-architecture .js-plotly-plot").wait_for(timeout=30_000)
    # another architecture: the diagram is redrawn from the new model
    page.locator(".widget-toggle-button", has_text="FCN-8s").click()
    page.locator(".segtutor-architecture text", has_text="fuse_pool4").first.wait_for(timeout=30_000)
    voila.screenshot("studio-model")
    page.locator(".widget-toggle-button", has_text="UNet").click()
    page.locator(".segtutor-architecture text", has_text="enc4").first.wait_for(timeout=30_000)

    # 1) Start: the loss curve grows while the page stays responsive
    open_tab(page, "2 · Train")
    page.wait_for_function(f"{LOSS_POINTS} === 0", timeout=30_000)  # the empty curves are drawn
    page.get_by_role("button", name="▶ Start").click()
    page.wait_for_function(f"{LOSS_POINTS} >= 5", timeout=60_000)
    first = loss_points(page)
    page.wait_for_function(f"{LOSS_POINTS} > {first}", timeout=30_000)

    # 2) Pause: the curve stops; Resume: it grows again
    pause_s = click_and_time(page, "‖ Pause", "paused")
    paused_at = loss_points(page)
    page.wait_for_timeout(1000)
    assert loss_points(page) == paused_at, voila.console
    resume_s = click_and_time(page, "▷ Resume", "running")
    page.wait_for_function(f"{LOSS_POINTS} > {paused_at}", timeout=30_000)

    # 3) Stop: the curve stops for good, the status says so
    stop_s = click_and_time(page, "■ Stop", "stopped")
    page.wait_for_timeout(500)  # the final redraw
    stopped_at = loss_points(page)
    page.wait_for_timeout(1500)
    assert loss_points(page) == stopped_at > paused_at
    print(f"click → status: pause {pause_s:.2f} s, resume {resume_s:.2f} s, stop {stop_s:.2f} s; "
          f"{stopped_at} steps drawn")  # fmt: skip
    voila.screenshot("studio-train")

    # 4) Predictions: the trained model's maps, then the learner's own image and a file that is not one
    open_tab(page, "3 · Predict")
    page.locator(".segtutor-prediction .js-plotly-plot").wait_for(timeout=60_000)
    not_image = tmp_path / "notes.txt"
    not_image.write_text("certainly not a picture")
    upload(page, not_image)
    page.get_by_text("not an image segtutor can read").wait_for(timeout=30_000)
    image, _ = generate_tile(200, seed=7)
    picture = tmp_path / "my_tissue.png"
    Image.fromarray(image).save(picture)
    upload(page, picture)
    page.get_by_text("predicted with sliding windows").wait_for(timeout=60_000)
    page.wait_for_timeout(500)
    voila.screenshot("studio-predictions")

    # 5) Feature maps and a short race
    open_tab(page, "4 · Layers")
    page.locator(".segtutor-features .js-plotly-plot").wait_for(timeout=60_000)
    page.wait_for_timeout(500)
    voila.screenshot("studio-features")
    open_tab(page, "5 · Race")
    page.locator(".segtutor-race .js-plotly-plot").wait_for(timeout=60_000)
    budget = page.locator(".segtutor-race-panel input[type=number]").first
    budget.fill("2")
    budget.press("Enter")
    page.locator(".segtutor-race-panel .widget-toggle-button", has_text="tiny").click()
    page.get_by_role("button", name="▶ Start the race").click()
    models = len(list_models())  # every architecture races
    page.get_by_text(f"{models} of {models} models trained").wait_for(timeout=120_000)
    page.wait_for_timeout(500)
    voila.screenshot("studio-race")
    assert not [line for line in voila.console if "pageerror" in line], voila.console
