"""How soon a dashboard answers in the browser: seconds to the first widgets and to the first plot.

Issue 6 asks for the first interactive widgets within 8 s and the plots within 10 s on 2 cores. Each dashboard in
``notebooks/dashboards`` is served by Voila on 127.0.0.1 and opened in headless Chromium (Debian's), as the
browser tests do (``tests/browser/harness.py``), in two ways:

- **cold**: ``voila <dashboard>``; the kernel starts, imports torch and runs the notebook when the page is asked for;
- **preheated**: ``voila --preheat_kernel=True <dashboard>`` (the README's command); a kernel has run the notebook
  before anyone asks, as when an instructor starts voila before the class.

A fresh server per page, the median over ``--repeats`` pages. Voila runs in the repository, so it reads
``voila.json`` (which keeps plotly's own 4.8 MB JupyterLab extension off the page). Run:

    .venv/bin/python benchmarks/page_load.py            # about 2 minutes
    .venv/bin/python benchmarks/page_load.py --dashboards convolution_explorer explorers   # some of them
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the browser tests' Voila + Chromium harness
from browser.harness import launch_browser, open_page, serve_voila  # noqa: E402

DASHBOARDS = sorted((ROOT / "notebooks" / "dashboards").glob("*.ipynb"))
MODES = {"cold": [], "preheated": ["--preheat_kernel=True"]}
TARGET_WIDGETS_S, TARGET_PLOTS_S = 8, 10


def time_page(browser, notebook: Path, options: list[str]) -> tuple[float, float]:
    """Seconds from asking for the page to its first widget, and to its first drawn plot."""
    with serve_voila(notebook, options) as url:
        voila = open_page(browser, url)
        seconds_to_plot = voila.wait_for_plots(1)
        voila.page.context.close()
    return voila.seconds_to_widgets, seconds_to_plot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="pages per dashboard and mode (median reported)")
    parser.add_argument("--dashboards", nargs="+", default=[path.stem for path in DASHBOARDS],
                        choices=[path.stem for path in DASHBOARDS], help="which dashboards (default: all)")
    args = parser.parse_args()
    print(f"load average (1, 5, 15 min) at the start: {os.getloadavg()} on {os.cpu_count()} cores")
    rows = []
    with launch_browser() as browser:
        for notebook in (path for path in DASHBOARDS if path.stem in args.dashboards):
            for mode, options in MODES.items():
                times = [time_page(browser, notebook, options) for _ in range(args.repeats)]
                widgets, plots = (statistics.median(column) for column in zip(*times))
                worst = max(plot for _, plot in times)
                rows.append((notebook.stem, mode, widgets, plots, worst))
                print(f"  {notebook.stem} {mode}: {[(round(w, 1), round(p, 1)) for w, p in times]}", flush=True)
    print(f"\n| dashboard | kernel | widgets (s) | first plot (s) | slowest plot (s) | within {TARGET_WIDGETS_S} s / "
          f"{TARGET_PLOTS_S} s |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for name, mode, widgets, plots, worst in rows:
        ok = "yes" if widgets <= TARGET_WIDGETS_S and plots <= TARGET_PLOTS_S else "**no**"
        print(f"| {name} | {mode} | {widgets:.1f} | {plots:.1f} | {worst:.1f} | {ok} |")
    print(f"\nload average at the end: {os.getloadavg()}; medians of {args.repeats} pages, a fresh voila each")


if __name__ == "__main__":
    main()
