"""The convolution-explorer dashboard as an instructor serves it: ``voila notebooks/dashboards/convolution_explorer.ipynb``.

Opened in headless Chromium, cold (the kernel starts when the page is asked for) and pre-heated (the README's
``--preheat_kernel=True``); prints the seconds to the first widgets and the first plot, and saves
``/tmp/segtutor-shots/dashboard-convolution*.png``. The training studio has its own test
(``test_studio_browser.py``); ``benchmarks/page_load.py`` times every dashboard repeatedly.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CONVOLUTION = Path(__file__).parents[2] / "notebooks" / "dashboards" / "convolution_explorer.ipynb"
REVISION = "Number(document.querySelector('.js-plotly-plot').dataset.revision)"
OUTPUT_SIZE = "document.querySelector('.js-plotly-plot').data[3].z.length"  # rows of the output heatmap


@pytest.mark.parametrize("options", [[], ["--preheat_kernel=True"]], ids=["cold", "preheated"])
def test_convolution_dashboard_renders_and_responds(voila_page, options):
    voila = voila_page(str(CONVOLUTION), options=options)
    seconds_to_plot = voila.wait_for_plots(1)
    mode = "preheated" if options else "cold"
    print(f"\nconvolution dashboard ({mode}): widgets after {voila.seconds_to_widgets:.1f} s, plot after "
          f"{seconds_to_plot:.1f} s ({voila.timeline()})")  # fmt: skip
    page = voila.page
    assert page.get_by_text("Convolution, step by step").is_visible()  # the markdown, but no code
    assert page.get_by_text("ConvolutionExplorer(").count() == 0

    # Step: the window moves to output pixel (0, 1) and the figure is redrawn
    page.get_by_text("output[0, 0]", exact=False).first.wait_for(timeout=15_000)
    before = page.evaluate(REVISION)
    page.get_by_role("button", name="Step").click()
    page.get_by_text("output[0, 1]", exact=False).first.wait_for(timeout=15_000)
    page.wait_for_function(f"{REVISION} > {before}", timeout=15_000)

    # padding 1 on the 7 × 7 numbers with a 3 × 3 kernel: the output grows from 5 × 5 to 7 × 7
    assert page.evaluate(OUTPUT_SIZE) == 5
    page.locator(".widget-dropdown", has_text="padding").locator("select").select_option(label="1")
    page.wait_for_function(f"{OUTPUT_SIZE} === 7", timeout=15_000)
    page.get_by_text("⌊(7 + 2·1", exact=False).first.wait_for(timeout=15_000)  # the size formula, written out

    # another kernel: blur's weights are all 1/9
    page.locator(".widget-dropdown", has_text="kernel").first.locator("select").select_option(label="blur")
    page.wait_for_function(
        "document.querySelector('.js-plotly-plot').data[1].z.flat().every(w => Math.abs(w - 1 / 9) < 1e-6)",
        timeout=15_000,
    )
    page.wait_for_timeout(500)
    voila.screenshot(f"dashboard-convolution-{mode}")
    assert not [line for line in voila.console if line.startswith("pageerror")], voila.console
