"""A link to a view, opened in Voila: the convolution dashboard with a query string shows its controls at the link's
values, cold and pre-heated (where the kernel ran the notebook before the page asked), and says what it ignored.

Saves ``/tmp/segtutor-shots/link-convolution-<mode>.png`` and ``link-loss-playground.png``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

DASHBOARDS = Path(__file__).parents[2] / "notebooks" / "dashboards"
LINK = "?view=convolution&input=tissue&kernel=blur&stride=2&padding=1&step=3&colour=red"
PLOT = "document.querySelector('.js-plotly-plot')"
SELECTED = "select => select.options[select.selectedIndex].textContent.replace(/\\u00a0/g, ' ')"  # ipywidgets: nbsp


def slider_readout(page, description: str) -> str:
    slider = page.locator(".widget-slider", has=page.locator(".widget-label", has_text=description)).first
    return slider.locator(".widget-readout").inner_text().strip()


@pytest.mark.parametrize("options", [[], ["--preheat_kernel=True"]], ids=["cold", "preheated"])
def test_a_link_opens_the_convolution_dashboard_in_its_state(voila_page, options):
    voila = voila_page(str(DASHBOARDS / "convolution_explorer.ipynb"), options=options, query=LINK)
    voila.wait_for_plots(1)
    page = voila.page
    mode = "preheated" if options else "cold"
    # the link's values, drawn: blur's weights are 1/9, the tissue input is 16 × 16 padded by 1, stride 2
    page.wait_for_function(f"{PLOT}.data[1].z.flat().every(w => Math.abs(w - 1 / 9) < 1e-6)", timeout=30_000)
    page.wait_for_function(f"{PLOT}.data[3].z.length === 8", timeout=30_000)  # ⌊(16 + 2 − 3) / 2⌋ + 1 = 8 rows
    kernel = page.locator(".widget-dropdown", has_text="kernel").first.locator("select")
    assert kernel.evaluate(SELECTED) == "blur"
    assert page.locator(".widget-dropdown", has_text="input").first.locator("select").evaluate(SELECTED) == \
        "tissue 16×16"  # fmt: skip
    assert slider_readout(page, "stride") == "2" and slider_readout(page, "step") == "3"
    page.get_by_text("output[0, 3]", exact=False).first.wait_for(timeout=15_000)  # step 3: the fourth output pixel
    # the setting it does not have is named in one line; the link shown is this page's address with the settings
    note = page.locator(".segtutor-share-note")
    note.wait_for(timeout=15_000)
    assert note.inner_text() == "Opened from a link; ignored colour=red (no such setting)."
    link = page.locator("input.segtutor-share-link").input_value()
    assert link.startswith(page.url.split("?")[0] + "?view=convolution&input=tissue&kernel=blur") and "step=3" in link
    page.wait_for_timeout(500)
    voila.screenshot(f"link-convolution-{mode}")
    assert not [line for line in voila.console if line.startswith("pageerror")], voila.console


def test_the_loss_playground_dashboard_opens_from_a_link(voila_page):
    voila = voila_page(str(DASHBOARDS / "loss_playground.ipynb"), query="?view=loss-playground&grow=-64&gamma=3")
    voila.wait_for_plots(1)
    page = voila.page
    page.locator(".segtutor-loss-scores", has_text="tumor IoU 0.00").wait_for(timeout=30_000)
    assert "pixel accuracy 9" in page.locator(".segtutor-loss-scores").inner_text()
    bars = page.evaluate("document.querySelector('.segtutor-loss-playground .js-plotly-plot').data[2].y")
    assert len(bars) == 5 and bars[3] > 2 * bars[0]  # soft Dice objects far more than cross-entropy
    assert page.locator(".segtutor-share-note").is_hidden()  # nothing was ignored
    page.wait_for_timeout(500)
    voila.screenshot("link-loss-playground")
    assert not [line for line in voila.console if line.startswith("pageerror")], voila.console


@pytest.mark.parametrize("options", [[], ["--preheat_kernel=True"]], ids=["cold", "preheated"])
def test_the_explorers_dashboard_opens_the_explorer_a_link_names(voila_page, options):
    query = "?view=pooling&input=tissue&mode=avg&window=3&stride=3&colour=red"
    voila = voila_page(str(DASHBOARDS / "explorers.ipynb"), options=options, query=query)
    voila.wait_for_plots(1)
    page = voila.page
    mode = "preheated" if options else "cold"
    picker = page.locator(".widget-dropdown", has_text="explorer").first.locator("select")
    page.wait_for_function(f"s => ({SELECTED})(s) === 'ReLU and pooling (03)'", arg=picker.element_handle(),
                           timeout=30_000)  # fmt: skip
    page.locator(".widget-toggle-button.mod-active", has_text="average").wait_for(timeout=30_000)
    assert slider_readout(page, "window") == "3" and slider_readout(page, "stride") == "3"
    # the pooled 16 × 16 tissue map, window 3, stride 3: ⌊(16 − 3) / 3⌋ + 1 = 5 rows in the output grid
    page.wait_for_function(f"{PLOT}.data.some(trace => trace.type === 'heatmap' && trace.z.length === 5)",
                           timeout=30_000)  # fmt: skip
    note = page.locator(".segtutor-share-note")
    note.wait_for(timeout=15_000)
    assert note.inner_text() == "Opened from a link; ignored colour=red (no such setting)."
    link = page.locator("input.segtutor-share-link").input_value()
    assert link.startswith(page.url.split("?")[0] + "?view=pooling&input=tissue&") and "mode=avg&window=3" in link
    page.wait_for_timeout(500)
    voila.screenshot(f"link-explorers-pooling-{mode}")
    assert not [line for line in voila.console if line.startswith("pageerror")], voila.console
