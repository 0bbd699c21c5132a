"""All four concept explorers on one Voila page, in headless Chromium: each draws its plot and follows its controls."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser

PLOTS = "document.querySelectorAll('.js-plotly-plot')"
REVISIONS = f"Array.from({PLOTS}).map(gd => Number(gd.dataset.revision))"
# page coordinates of data point (x, y) in the first subplot of plot number `index`
POINT_ON_PAGE = f"""([index, x, y]) => {{
    const gd = {PLOTS}[index], box = gd.getBoundingClientRect();
    const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
    return {{x: box.left + xa._offset + xa.l2p(x), y: box.top + ya._offset + ya.l2p(y)}};
}}"""


def test_four_explorers_render_and_respond_in_voila(voila_page):
    voila = voila_page("explorers.ipynb")
    seconds_to_plots = voila.wait_for_plots(4, timeout_s=90)
    print(f"\nexplorers: widgets after {voila.seconds_to_widgets:.1f} s, four plots after {seconds_to_plots:.1f} s")
    print(f"explorers timeline: {voila.timeline()}")
    page = voila.page
    assert page.evaluate(f"{PLOTS}.length") == 4, voila.console
    outputs = page.locator(".jp-OutputArea-child")

    # the three stepping explorers: Step changes the formula text and redraws the plot
    formulas = [("convolution", "output["), ("pooling", "pooled["), ("upsampling", "input[")]
    for index, (name, formula) in enumerate(formulas):
        text = page.get_by_text(formula, exact=False).first
        before_text, before = text.inner_text(), page.evaluate(REVISIONS)[index]
        page.get_by_role("button", name="Step").nth(index).click()
        page.wait_for_function(f"{REVISIONS}[{index}] > {before}", timeout=15_000)
        assert text.inner_text() != before_text
        assert re.search(r"\[0, 1\]", text.inner_text()), text.inner_text()  # the second step: output pixel (0, 1)
        outputs.nth(index).scroll_into_view_if_needed()
        voila.screenshot_element(outputs.nth(index), f"explorer_{name}")

    # the receptive-field explorer: a click on the tile picks that output pixel
    plot = page.locator(".js-plotly-plot").nth(3)
    plot.scroll_into_view_if_needed()
    before = page.evaluate(REVISIONS)[3]
    point = page.evaluate(POINT_ON_PAGE, [3, 70, 20])  # column 70, row 20
    page.mouse.click(point["x"], point["y"])
    page.get_by_text("output pixel (20, 70)").wait_for(timeout=20_000)
    page.wait_for_function(f"{REVISIONS}[3] > {before}", timeout=15_000)
    # the network's dashed box is drawn around the new pixel
    shapes = page.evaluate(f"{PLOTS}[3].layout.shapes.filter(s => s.name === 'pixel').map(s => (s.x0 + s.x1) / 2)")
    assert shapes == [70, 70]
    page.wait_for_timeout(500)
    voila.screenshot_element(outputs.nth(3), "explorer_receptive_field_unet")
    page.get_by_role("button", name="DeepLabv3", exact=True).click()
    page.get_by_text("image pooling").wait_for(timeout=30_000)
    page.wait_for_timeout(500)
    voila.screenshot_element(outputs.nth(3), "explorer_receptive_field_deeplabv3")
    errors = [line for line in voila.console if line.startswith("pageerror")]
    assert errors == []
