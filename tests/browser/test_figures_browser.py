"""LiveFigure in a real browser: Voila, two figures on one page, updates before and after the browser connects."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

TITLES = "Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => gd.layout.title.text)"
# column of the 1 in each figure's first row
FIRST_ROW_PEAK = "Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => gd.data[0].z[0].indexOf(1))"


def test_two_live_figures_update_in_voila(voila_page):
    voila = voila_page("two_figures.ipynb")
    seconds_to_plots = voila.wait_for_plots(2)
    print(f"\ntwo_figures: widgets after {voila.seconds_to_widgets:.1f} s, both plots after {seconds_to_plots:.1f} s")
    print(f"two_figures timeline: {voila.timeline()}")
    page = voila.page

    # 1) the updates made while the notebook executed (before the browser connected) are drawn
    assert page.evaluate(TITLES) == ["figure 0 ready", "figure 1 ready"], voila.console
    assert page.evaluate("document.querySelector('.js-plotly-plot').data[0].z[0][0]") == 1

    # 2) both figures follow every later update
    for step in (1, 2):
        page.get_by_role("button", name="Step").click()
        expected = [f"figure 0 step {step}", f"figure 1 step {step}"]
        same = f"expected => JSON.stringify({TITLES}) === JSON.stringify(expected)"
        page.wait_for_function(same, arg=expected, timeout=15_000)
        assert page.evaluate(FIRST_ROW_PEAK) == [step, step]
    voila.screenshot("two_figures")

    # 3) a click on a heatmap cell reaches Python (row 2, column 3 of the second figure's 4x4 grid)
    plot = page.locator(".js-plotly-plot").nth(1)
    box = page.evaluate(
        "(() => { const gd = document.querySelectorAll('.js-plotly-plot')[1]; const s = gd._fullLayout._size;"
        " const r = gd.getBoundingClientRect(); return {x: r.left + s.l, y: r.top + s.t, w: s.w, h: s.h}; })()"
    )
    assert plot.is_visible()
    # heatmap rows go upwards: row 2 of 4 sits in the second quarter from the top
    page.mouse.click(box["x"] + box["w"] * 3.5 / 4, box["y"] + box["h"] * 1.5 / 4)
    page.get_by_text("clicked row 2 col 3").wait_for(timeout=10_000)
