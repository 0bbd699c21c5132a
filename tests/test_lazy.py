"""Lazy package exports: a name's module is imported on first use, so the numpy explorers' pages pay no torch."""

from __future__ import annotations

import importlib
import subprocess
import sys
import types
from pathlib import Path

import pytest

import segtutor
import segtutor.data
import segtutor.explain
import segtutor.figures
import segtutor.widgets
from segtutor.lazy import lazy_exports

ROOT = Path(__file__).parents[1]


def _run(code: str) -> str:
    """Run ``code`` in a fresh interpreter (nothing imported yet) from the repository; its stdout."""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": ""}, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("page", [
    # the dashboards' own cells: notebooks/dashboards/convolution_explorer.ipynb and explorers.ipynb
    "from segtutor.widgets import ConvolutionExplorer, open_link\n"
    "explorer = ConvolutionExplorer(kernel='sobel_x'); report = open_link(explorer)",
    "from segtutor.widgets import ExplorerGallery, open_link\ngallery = ExplorerGallery(); report = open_link(gallery)\n"
    "gallery.picker.value = 'pooling'; gallery.picker.value = 'upsampling'",
    "import segtutor; import segtutor.data; import segtutor.explain; import segtutor.figures; import segtutor.widgets",
])  # fmt: skip
def test_the_numpy_explorers_draw_without_importing_torch(page):
    out = _run(f"import sys\n{page}\nprint(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')[:3])")
    assert out.strip() == "[]"


def test_a_page_that_trains_imports_torch_when_it_asks_for_it():
    out = _run("import sys\nfrom segtutor.widgets import TrainingStudio\nprint('torch' in sys.modules)")
    assert out.strip() == "True"


def test_every_exported_name_is_the_object_its_module_defines():
    for package in (segtutor, segtutor.data, segtutor.explain, segtutor.figures, segtutor.widgets):
        assert set(package._lazy_names) == set(package.__all__)  # the table and __all__ name the same things
        for name, where in package._lazy_names.items():
            assert getattr(package, name) is getattr(importlib.import_module(where), name), (package, name)
        assert set(package.__all__) <= set(dir(package))


def test_a_function_named_like_its_module_stays_the_function_after_the_module_is_imported():
    out = _run("import segtutor.data.augment, segtutor.explain.receptive_field, segtutor.data as d, "
               "segtutor.explain as e\nprint(callable(d.augment), callable(e.receptive_field), "
               "type(d.augment).__name__)")  # fmt: skip
    assert out.split() == ["True", "True", "function"]


def test_lazy_exports_imports_on_first_use_and_says_what_is_missing(monkeypatch):
    package = types.ModuleType("segtutor_test_package")
    monkeypatch.setitem(sys.modules, package.__name__, package)
    lazy_exports(package.__name__, {"json": ["dumps"], "colorsys": ["rgb_to_hsv"]})
    assert "dumps" not in vars(package) and "dumps" in dir(package)
    assert package.dumps([1]) == "[1]"
    assert "dumps" in vars(package)  # kept: the next use does not ask again
    with pytest.raises(AttributeError, match="has no attribute 'loads'"):
        package.loads  # noqa: B018
