"""Every widget of the course fits JupyterLab's narrowest usual output: 1280 × 800, the file browser open.

``notebooks/course_widgets.ipynb`` builds each widget the course shows (and the dashboards' widgets), one per cell,
without training. After Run All, for every widget output (and every tab of the training studio) the test asserts
that nothing in it reaches past the right edge of its output area (which clips it without a scrollbar) and that no
label is cut to "…"; that its figures are readable (no text under 11 px, architecture-diagram labels that do not
overlap, subplot titles that neither overlap nor reach past their figure, colour-bar titles clear of their tick
labels; with the dashboard's "log-scale loss" ticked, at least 3 loss-axis labels, none under 11 px); then again in
a 1024 × 768 window (a laptop) and in a 1712 × 1000 one (a wide screen: a 1280 px output). The training dashboard's
truth and prediction stand beside its curves where there is room, and under them, as wide as the output, where there
is not. Screenshots of each output go to ``/tmp/segtutor-shots/layout/``, ``layout-1024/`` and ``layout-wide/`` (the
test prints the folders): look at them.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from .harness import SHOTS, lab_url, page_errors, serve_jupyterlab
from .test_jupyterlab_browser import assert_all_figures_drawn, run_all

pytestmark = pytest.mark.browser

NOTEBOOK = Path(__file__).parent / "notebooks" / "course_widgets.ipynb"
VIEWPORT = {"width": 1280, "height": 800}
LAPTOP = {"width": 1024, "height": 768}
WIDE = {"width": 1712, "height": 1000}  # with the file browser open: a 1280 px output
MIN_FONT_PX = 11  # no text smaller at 100 % zoom
SHOT_HEIGHT = 1800  # screenshots: the window as wide, taller
SETTINGS = {"@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"}}  # render every cell
OUTPUTS = ".jp-NotebookPanel .jp-CodeCell .jp-OutputArea-output"
CENTRE_OF_PREDICTION = """(plot) => {
  const [xaxis, yaxis, box] = [plot._fullLayout.xaxis3, plot._fullLayout.yaxis3, plot.getBoundingClientRect()];
  return [box.left + xaxis._offset + xaxis._length / 2, box.top + yaxis._offset + yaxis._length / 2];
}"""  # the middle of the viewer's third picture, the prediction
STUDIO_TABS = ("1 · Model", "2 · Train", "3 · Predict", "4 · Layers", "5 · Race", "6 · Annotate")

# In the browser: what in ``output`` reaches past its right edge, and which texts are cut to "…".
MEASURE = """(output) => {
  const box = output.getBoundingClientRect();
  const shown = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
  const name = (el) => el.tagName.toLowerCase() + Array.from(el.classList).slice(0, 3).map((c) => "." + c).join("");
  let right = box.left, widest = null;
  const ellipsised = [];
  for (const el of output.querySelectorAll("*")) {
    if (el.ownerSVGElement) continue;  // inside an <svg>, which clips what reaches past it (plotly's drag handles)
    if (!shown(el) || el.closest(".lm-TabPanel-stackedPanel.lm-mod-hidden, .p-mod-hidden")) continue;
    const rect = el.getBoundingClientRect();
    if (rect.width > 0 && rect.right > right) { right = rect.right; widest = name(el); }
    const style = getComputedStyle(el);
    // text-overflow acts on blocks only (an inline label has no width of its own: clientWidth 0); a tab's title is
    // clipped without an ellipsis
    const tab = el.matches(".lm-TabBar-tabLabel, .p-TabBar-tabLabel");
    if ((tab || style.textOverflow === "ellipsis") && style.display !== "inline" && el.textContent.trim()) {
      const text = document.createRange();  // the text as laid out, also where "…" is painted over its end
      text.selectNodeContents(el);
      const needs = Math.ceil(text.getBoundingClientRect().width);
      const room = el.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
      if (el.scrollWidth > el.clientWidth + 1 || needs > room + 1) {
        ellipsised.push(`${JSON.stringify(el.textContent.trim().slice(0, 40))} (${Math.round(room)} of ${needs} px)`);
      }
    }
  }
  return {output: Math.round(box.width), content: Math.round(right - box.left), widest, ellipsised};
}"""

# In the browser: what in ``output`` is hard to read: text under ``minimum`` px, architecture-diagram labels that
# overlap each other, subplot titles (annotations placed on the paper) that overlap each other or a tick label or
# reach past their figure, colour-bar titles over their ticks.
UNREADABLE = """(output, minimum) => {
  const problems = [];
  const shown = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
  const quote = (el) => JSON.stringify(el.textContent.trim().slice(0, 40));
  const meet = (a, b) => a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1;
  for (const el of output.querySelectorAll("*")) {  // every element that holds text of its own
    if (!shown(el) || el.closest(".hoverlayer")) continue;  // hover labels come and go with the mouse
    const ownText = Array.from(el.childNodes).some((node) => node.nodeType === Node.TEXT_NODE
                                                   && node.textContent.trim());
    if (!ownText) continue;
    const size = parseFloat(getComputedStyle(el).fontSize);
    if (size < minimum - 0.5) problems.push(`text ${quote(el)} is ${size} px`);
  }
  for (const plot of output.querySelectorAll(".segtutor-architecture .js-plotly-plot")) {  // the diagram's labels
    const labels = Array.from(plot.querySelectorAll(".annotation-text"))
      .filter((label) => shown(label) && label.textContent.trim());
    labels.forEach((label, i) => {
      for (const other of labels.slice(i + 1)) {
        if (meet(label.getBoundingClientRect(), other.getBoundingClientRect())) {
          problems.push(`diagram labels ${quote(label)} and ${quote(other)} overlap`);
        }
      }
    });
  }
  for (const plot of output.querySelectorAll(".js-plotly-plot")) {
    const frame = plot.getBoundingClientRect();
    const onPaper = (note) => note.xref === "paper" && note.yref === "paper";  // subplot titles (not labels on data)
    const titles = Array.from(plot.querySelectorAll(".annotation[data-index]"))
      .filter((group) => onPaper(plot._fullLayout.annotations[group.dataset.index] ?? {}))
      .map((group) => group.querySelector(".annotation-text"))
      .filter((title) => title && shown(title) && title.textContent.trim());
    titles.forEach((title, i) => {
      const box = title.getBoundingClientRect();
      if (box.left < frame.left - 1 || box.right > frame.right + 1) {
        problems.push(`title ${quote(title)} reaches past its figure`);
      }
      for (const other of titles.slice(i + 1)) {
        if (meet(box, other.getBoundingClientRect())) {
          problems.push(`titles ${quote(title)} and ${quote(other)} overlap`);
        }
      }
      for (const tick of plot.querySelectorAll(".xtick text, .ytick text")) {  // the axes' labels
        if (shown(tick) && meet(box, tick.getBoundingClientRect())) {
          problems.push(`title ${quote(title)} over the tick label ${quote(tick)}`);
        }
      }
    });
    for (const bar of plot.querySelectorAll(".colorbar")) {
      const ticks = Array.from(bar.querySelectorAll("text")).filter((t) => !t.closest(".cbtitle") && shown(t));
      for (const title of bar.querySelectorAll(".cbtitle text")) {
        for (const tick of ticks) {
          if (meet(title.getBoundingClientRect(), tick.getBoundingClientRect())) {
            problems.push(`colour-bar title ${quote(title)} over its tick label ${quote(tick)}`);
          }
        }
      }
    }
  }
  return problems;
}"""

# In the browser: where the training dashboard's preview (truth and prediction) stands relative to its curves.
PREVIEW_PLACE = """(output) => {
  const [curves, preview] = [".segtutor-training-curves", ".segtutor-training-preview"].map(
    (name) => output.querySelector(name)?.getBoundingClientRect());
  if (!curves || !preview) return null;
  const box = output.getBoundingClientRect();
  return {below: preview.top >= curves.bottom - 1,
          beside: preview.left >= curves.right - 1 && preview.top < curves.bottom,
          previewWidth: Math.round(preview.width), outputWidth: Math.round(box.width)};
}"""


# In the browser: the loss axis's tick labels (the curves' first y axis) of the training dashboard in ``output``.
LOSS_TICKS = """(output) => Array.from(output.querySelectorAll(".segtutor-training-curves .ytick text"))
  .filter((tick) => tick.getClientRects().length > 0 && tick.textContent.trim())
  .map((tick) => ({text: tick.textContent.trim(), size: parseFloat(getComputedStyle(tick).fontSize)}))"""


def widget_names() -> list[str]:
    """The widget each code cell after the first shows, from its source (e.g. "TrainingDashboard")."""
    import json

    cells = [c for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code"][1:]
    return [re.findall(r"\b([A-Z]\w+(?:Explorer|Viewer|Dashboard|Race|Studio))\(", "".join(c["source"]))[0]
            for c in cells]  # fmt: skip


def problems_of(measured: dict, what: str) -> list[str]:
    problems = []
    if measured["content"] > measured["output"] + 1:
        problems.append(f"{what}: {measured['content']} px wide in a {measured['output']} px output "
                        f"(widest: {measured['widest']})")  # fmt: skip
    problems += [f"{what}: text cut to '…': {text}" for text in measured["ellipsised"]]
    return problems


def measure_every_widget(page, names: list[str], shots: Path, viewport: dict[str, int]) -> list[str]:
    """Measure each widget output (each tab of the studio) at ``viewport``, screenshot it into ``shots``; the
    problems found. Screenshots are taken in a window as wide and taller, so that a tall widget is on them whole."""
    width = viewport["width"]
    outputs = page.locator(OUTPUTS, has=page.locator(".jupyter-widgets"))
    assert outputs.count() == len(names), f"{outputs.count()} widget outputs for {len(names)} widgets: {names}"
    problems: list[str] = []
    for index, name in enumerate(names):
        output = outputs.nth(index)
        output.scroll_into_view_if_needed()
        views = [(name, None)] if name != "TrainingStudio" else [(f"{name} {tab}", tab) for tab in STUDIO_TABS]
        for what, tab in views:
            if tab is not None:
                output.locator(".lm-TabBar-tab", has_text=tab).click()
                page.wait_for_timeout(300)
                assert_all_figures_drawn(page)  # a tab builds its figures when first opened
                page.wait_for_timeout(1000)
            measured = output.evaluate(MEASURE)
            print(f"{width} px window, {what}: content {measured['content']} px in a {measured['output']} px "
                  f"output, {len(measured['ellipsised'])} text(s) cut")  # fmt: skip
            problems += problems_of(measured, f"{width} px window, {what}")
            problems += [f"{width} px window, {what}: {problem}" for problem in output.evaluate(UNREADABLE,
                                                                                                 MIN_FONT_PX)]
            slug = re.sub(r"\W+", "-", what.replace("·", "")).strip("-").lower()
            page.set_viewport_size({"width": width, "height": SHOT_HEIGHT})  # the same width: the same layout
            output.scroll_into_view_if_needed()
            output.screenshot(path=str(shots / f"{index:02d}-{slug}.png"), timeout=15_000)
            page.set_viewport_size(viewport)
    return problems


def preview_problems(page, names: list[str], viewport: dict[str, int]) -> list[str]:
    """The dashboard's truth and prediction must stand beside the curves in an output of 848 px or more, under them
    (the whole output wide) in a narrower one."""
    output = page.locator(OUTPUTS, has=page.locator(".jupyter-widgets")).nth(names.index("TrainingDashboard"))
    place = output.evaluate(PREVIEW_PLACE)
    print(f"{viewport['width']} px window, TrainingDashboard: preview {place}")
    where = f"{viewport['width']} px window, TrainingDashboard: the truth and prediction"
    if place is None:
        return [f"{where}: no .segtutor-training-curves and .segtutor-training-preview to compare"]
    if place["outputWidth"] >= 848 and not place["beside"]:
        return [f"{where} are not beside the curves in a {place['outputWidth']} px output"]
    if place["outputWidth"] < 848 and not (place["below"] and place["previewWidth"] >= place["outputWidth"] - 20):
        return [f"{where} are not under the curves, {place['outputWidth']} px wide: {place}"]
    return []


def log_axis_problems(page, names: list[str], shots: Path, viewport: dict[str, int]) -> list[str]:
    """Tick the dashboard's "log-scale loss": its loss axis must label at least 3 values, none under 11 px (plotly's
    own log ticks write the 2s and 5s at 8 px); screenshot it, untick it."""
    output = page.locator(OUTPUTS, has=page.locator(".jupyter-widgets")).nth(names.index("TrainingDashboard"))
    output.scroll_into_view_if_needed()
    toggle = output.get_by_label("log-scale loss")
    toggle.check()
    curves = output.locator(".segtutor-training-curves .js-plotly-plot").element_handle()
    axis_is = "([plot, type]) => plot._fullLayout.yaxis.type === type"
    page.wait_for_function(axis_is, arg=[curves, "log"], timeout=15_000)  # through the kernel, which may be busy
    page.wait_for_timeout(300)
    ticks = output.evaluate(LOSS_TICKS)
    print(f"{viewport['width']} px window, TrainingDashboard, log-scale loss: ticks {ticks}")
    where = f"{viewport['width']} px window, TrainingDashboard, log-scale loss"
    problems = [f"{where}: tick {tick['text']!r} is {tick['size']} px" for tick in ticks if tick["size"] < MIN_FONT_PX]
    if len(ticks) < 3:
        problems.append(f"{where}: {len(ticks)} tick labels on the loss axis, fewer than 3")
    problems += [f"{where}: {problem}" for problem in output.evaluate(UNREADABLE, MIN_FONT_PX)]
    output.locator(".segtutor-training-curves").screenshot(path=str(shots / "log-scale-loss.png"), timeout=15_000)
    toggle.uncheck()
    page.wait_for_function(axis_is, arg=[curves, "linear"], timeout=15_000)
    return problems


def test_every_widget_fits_jupyterlab_with_the_file_browser_open(browser, tmp_path):
    shutil.copy(NOTEBOOK, tmp_path / NOTEBOOK.name)
    names = widget_names()
    with serve_jupyterlab(tmp_path, log_dir=tmp_path, settings=SETTINGS) as server:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(lab_url(server, NOTEBOOK.name), timeout=90_000)
        page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=90_000)
        assert page.locator(".jp-FileBrowser").first.is_visible(), "the file browser should be open (the default)"
        choose_kernel = page.locator(".jp-Dialog", has_text="Select Kernel")
        kernel_ready = page.locator(".jp-Notebook-toolbarKernelName, .jp-KernelName", has_text="Python 3")
        choose_kernel.or_(kernel_ready).first.wait_for(timeout=60_000)
        if choose_kernel.count():  # the kernel list arrived late (busy machine): JupyterLab asks
            choose_kernel.get_by_role("button", name="Select", exact=True).click()
        seconds = run_all(page, restart=False)
        assert_all_figures_drawn(page)
        page.wait_for_timeout(1500)  # figures settle at their width
        shots = SHOTS / "layout"
        shots.mkdir(parents=True, exist_ok=True)
        print(f"\nJupyterLab {VIEWPORT['width']}×{VIEWPORT['height']}, file browser open: ran in {seconds:.1f} s; "
              f"screenshots in {shots}")  # fmt: skip
        problems = measure_every_widget(page, names, shots, VIEWPORT)
        problems += preview_problems(page, names, VIEWPORT)
        problems += log_axis_problems(page, names, shots, VIEWPORT)

        # hovering the viewer's prediction names the class and its probability
        viewer = page.locator(OUTPUTS, has=page.locator(".jupyter-widgets")).nth(names.index("PredictionViewer"))
        viewer.scroll_into_view_if_needed()
        plot = viewer.locator(".segtutor-prediction .js-plotly-plot")
        x, y = plot.evaluate(CENTRE_OF_PREDICTION)
        page.mouse.move(x, y)
        hover = plot.locator(".hoverlayer .hovertext")
        hover.first.wait_for(timeout=10_000)
        label = hover.first.text_content()
        print(f"PredictionViewer: hovering the prediction shows {label!r}")
        if not re.search(r"^prediction: (stroma|tumor) \(p = [01]\.\d\d\)", label):
            problems.append(f"PredictionViewer: hovering the prediction shows {label!r}, not a class and its p")

        # a 1024 px laptop, the file browser still open (the figures follow the narrower output); a wide screen
        for viewport, folder in ((LAPTOP, "layout-1024"), (WIDE, "layout-wide")):
            page.set_viewport_size(viewport)
            page.wait_for_timeout(1500)
            shots_here = SHOTS / folder
            shots_here.mkdir(parents=True, exist_ok=True)
            print(f"{viewport['width']}×{viewport['height']}: screenshots in {shots_here}")
            problems += measure_every_widget(page, names, shots_here, viewport)
            problems += preview_problems(page, names, viewport)
            problems += log_axis_problems(page, names, shots_here, viewport)
        context.close()
    assert page_errors(errors) == [], "\n".join(errors)
    assert problems == [], "\n".join(problems)
