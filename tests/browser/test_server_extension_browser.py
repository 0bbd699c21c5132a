"""The training studio through Voila's Jupyter server extension: ``jupyter server`` + ``/voila/render/<notebook>``.

How a class would be served behind one Jupyter server (or JupyterHub) instead of the ``voila`` command. The server
runs on 127.0.0.1 with its settings in a temporary folder (``harness.serve_jupyter_server``); the page must show the
studio's widgets and draw its architecture diagram. The extension has no pre-heated kernels (they exist only in the
``voila`` application), so this page starts cold. Prints the seconds to widgets and to the first plot.
"""

from __future__ import annotations

import time

import pytest

from .harness import PAGE_LOAD_S, ROOT, open_page, serve_jupyter_server, voila_render_url

pytestmark = pytest.mark.browser

STUDIO = "notebooks/dashboards/training_studio.ipynb"


def test_training_studio_renders_through_the_server_extension(browser, tmp_path):
    with serve_jupyter_server(ROOT, log_dir=tmp_path) as server:
        voila = open_page(browser, voila_render_url(server, STUDIO))
        try:
            seconds_to_plot = voila.wait_for_plots(1, timeout_s=PAGE_LOAD_S)
            page = voila.page
            page.locator(".segtutor-architecture .js-plotly-plot").wait_for(timeout=30_000)
            print(f"\ntraining studio via jupyter server /voila/render: widgets after "
                  f"{voila.seconds_to_widgets:.1f} s, first plot after {seconds_to_plot:.1f} s")  # fmt: skip
            assert page.get_by_text("segtutor training studio").is_visible()
            assert page.get_by_text("TrainingStudio(").count() == 0  # Voila strips the code
            assert page.locator(".lm-TabBar-tab", has_text="2 · Train").count() == 1
            # the extension read the repository's voila.json: plotly's own 4.8 MB JupyterLab extension stays off
            extensions = page.evaluate("JSON.parse(document.getElementById('jupyter-config-data').textContent)"
                                       ".federated_extensions.map(e => e.name)")  # fmt: skip
            assert "@jupyter-widgets/jupyterlab-manager" in extensions and "jupyterlab-plotly" not in extensions
            # the kernel answers: another architecture redraws the diagram from the new model
            started = time.monotonic()
            page.locator(".widget-toggle-button", has_text="FCN-8s").click()
            page.locator(".segtutor-architecture text", has_text="fuse_pool4").first.wait_for(timeout=30_000)
            print(f"FCN-8s picked → its diagram drawn after {time.monotonic() - started:.1f} s")
            voila.screenshot("server-extension-studio")
            assert not [line for line in voila.console if "pageerror" in line], voila.console
        finally:
            voila.page.context.close()
