"""The studio's time machine and annotation tab in Voila: train briefly, scrub back, propose patches, annotate.

The studio opens from a link (a tiny UNet, a 4-second budget, the Train tab open). Saves ``/tmp/segtutor-shots/studio-time-machine.png``
and ``studio-annotate.png``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

STUDIO = Path(__file__).parents[2] / "notebooks" / "dashboards" / "training_studio.ipynb"
LINK = "?view=studio&model=unet&size=tiny&lr=0.003&unit=seconds&budget=4&tab=train"
MACHINE = "document.querySelector('.segtutor-time-machine .js-plotly-plot')"
ANNOTATION = "document.querySelector('.segtutor-annotation .js-plotly-plot')"


def open_tab(page, title: str) -> None:
    page.locator(".lm-TabBar-tab", has_text=title).click()


def test_scrub_back_through_training_and_annotate_where_the_model_is_unsure(voila_page):
    voila = voila_page(str(STUDIO), query=LINK)
    voila.wait_for_plots(1, timeout_s=90)
    page = voila.page
    page.locator(".lm-TabBar-tab", has_text="1 · Model").wait_for(timeout=30_000)

    # 1) the link opened the Train tab; train for its 4 seconds; the time machine follows the run to its end
    page.locator(".lm-TabBar-tab.lm-mod-current", has_text="2 · Train").wait_for(timeout=60_000)
    assert page.locator("input.segtutor-share-link").input_value().endswith("&tab=train")
    page.get_by_role("button", name="▶ Start").click()
    page.locator(".segtutor-training-status", has_text="completed").wait_for(timeout=120_000)
    page.wait_for_function(f"{MACHINE}?.layout.annotations[0].text.startsWith('prediction at step')", timeout=30_000)
    last = page.evaluate(f"{MACHINE}.layout.annotations[0].text")
    # 2) scrub back: type a step into the slider's readout, as a learner may; the pictures and the marker follow
    readout = page.locator(".widget-slider", has=page.locator(".widget-label", has_text="step")).locator(
        ".widget-readout").last  # fmt: skip
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("5")
    page.keyboard.press("Enter")
    # the snapshot shown is the latest at or before step 5 (the machine thins its snapshots as a run grows)
    page.wait_for_function(f"{MACHINE}.layout.annotations[0].text !== {last!r}", timeout=30_000)
    shown = int(page.evaluate(f"{MACHINE}.layout.annotations[0].text").removeprefix("prediction at step "))
    assert 0 <= shown <= 5 and f"prediction at step {shown}" != last
    marker = page.evaluate("document.querySelector('.segtutor-training-curves .js-plotly-plot').layout.shapes"
                           ".filter(s => s.name === 'time machine').map(s => s.x0)")  # fmt: skip
    assert marker == [shown, shown], marker
    page.locator(".segtutor-time-machine-info", has_text=f"step {shown} (").wait_for(timeout=15_000)
    page.wait_for_timeout(700)
    voila.screenshot("studio-time-machine")

    # 3) annotate: train on two tiles, let the model propose patches, annotate them and train on
    open_tab(page, "6 · Annotate")
    page.locator(".segtutor-annotation .js-plotly-plot").wait_for(timeout=60_000)
    page.get_by_role("button", name="▶ 1 · train on 2 annotated tiles").click()
    page.locator(".segtutor-annotation-status", has_text="round 0").wait_for(timeout=120_000)
    page.get_by_role("button", name="2 · propose where to annotate").click()
    page.wait_for_function(f"({ANNOTATION}.layout.shapes || []).filter(s => s.name === 'proposed').length >= 3",
                           timeout=30_000)  # fmt: skip
    page.wait_for_timeout(700)
    voila.screenshot("studio-annotate")
    page.get_by_role("button", name="3 · annotate the outlined patches and train on").click()
    page.locator(".segtutor-annotation-status", has_text="round 1").wait_for(timeout=120_000)
    points = page.evaluate(f"{ANNOTATION}.data.find(t => t.name === 'your rounds').x.length")
    assert points == 2
    page.wait_for_timeout(500)
    voila.screenshot("studio-annotate-round1")
    assert not [line for line in voila.console if "pageerror" in line], voila.console
