"""LiveFigure, the figure layer every widget draws with: state in Python, numbered patches, clicks, plotly.js once."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import plotly
import plotly.graph_objects as go
import pytest

from segtutor.widgets import Click, LiveFigure, PlotlyLibrary
from segtutor.widgets.live_figure import to_json


@pytest.fixture
def sent(monkeypatch) -> list[dict]:
    """Every custom message LiveFigures send to the browser, in order."""
    messages: list[dict] = []
    monkeypatch.setattr(LiveFigure, "send", lambda self, content, buffers=None: messages.append(content))
    return messages


def heatmap_figure() -> LiveFigure:
    return LiveFigure(go.Figure([go.Heatmap(z=np.zeros((2, 3))), go.Scatter(x=[0, 1], y=[1, 0])]))


def test_figure_state_is_plain_json_with_a_revision():
    fig = heatmap_figure()
    assert fig.figure["revision"] == 0
    assert fig.data[0]["type"] == "heatmap" and fig.data[0]["z"] == [[0.0, 0.0, 0.0]] * 2
    assert fig.data[1]["x"] == [0, 1]
    assert isinstance(fig.layout, dict) and "template" in fig.layout


def test_updates_change_the_state_and_send_one_numbered_patch(sent):
    fig = heatmap_figure()
    fig.update_trace(0, z=np.arange(6.0).reshape(2, 3))
    assert fig.data[0]["z"] == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    z = [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert sent == [{"type": "patch", "revision": 1, "ops": [{"trace": 0, "props": {"z": z}}]}]
    with fig.batch():
        fig.update_trace(1, y=np.array([5, 6]))
        fig.update_layout(title={"text": "two"})
        with fig.batch():  # nested batches send once, at the outer end
            fig.update_layout(width=300)
    assert len(sent) == 2 and sent[1]["revision"] == 2 == fig.figure["revision"]
    assert [op.get("trace") for op in sent[1]["ops"]] == [1, None, None]
    assert fig.data[1]["y"] == [5, 6] and fig.layout["title"] == {"text": "two"} and fig.layout["width"] == 300


def test_an_empty_batch_sends_nothing(sent):
    fig = heatmap_figure()
    with fig.batch():
        pass
    assert sent == [] and fig.figure["revision"] == 0


def test_nan_becomes_a_gap_and_numpy_becomes_json():
    values = to_json({"z": np.array([[1.0, np.nan]]), "n": np.int64(3), "f": np.float32(0.5), "t": (1, 2)})
    assert values == {"z": [[1.0, None]], "n": 3, "f": 0.5, "t": [1, 2]}
    assert to_json(float("nan")) is None
    assert to_json(go.layout.Shape(type="rect", x0=0, x1=1)) == {"type": "rect", "x0": 0, "x1": 1}


def test_show_replaces_the_whole_figure_and_syncs_it():
    fig = heatmap_figure()
    fig.update_layout(width=100)
    fig.show(go.Figure(go.Bar(x=[1], y=[2])))
    assert [trace["type"] for trace in fig.data] == ["bar"]
    assert fig.figure["revision"] == 2  # later patches continue the numbering


def test_bad_updates_say_what_is_wrong():
    fig = heatmap_figure()
    with pytest.raises(IndexError, match=r"trace index must be an int in 0 … 1, got 2"):
        fig.update_trace(2, z=[])
    with pytest.raises(TypeError, match="figure must be a plotly go.Figure or a dict, got str"):
        LiveFigure("heatmap")
    with pytest.raises(ValueError):  # plotly validates property names of a new figure
        LiveFigure({"data": [{"type": "heatmap", "zz": [1]}]})


def test_clicks_from_the_browser_reach_the_callbacks():
    fig = heatmap_figure()
    clicks: list[Click] = []
    fig.on_click(clicks.append)
    fig._on_browser_msg(fig, {"type": "click", "trace": 0, "x": 2, "y": 1, "point_index": [1, 2]}, [])
    fig.click(1, 0.5, 0.25)
    assert clicks == [Click(0, 2, 1, [1, 2]), Click(1, 0.5, 0.25, None)]


def test_a_browser_that_missed_a_patch_gets_the_whole_figure(monkeypatch):
    fig = heatmap_figure()
    synced: list = []
    monkeypatch.setattr(fig, "send_state", lambda key=None: synced.append(key))
    fig._on_browser_msg(fig, {"type": "resync"}, [])
    assert synced == ["figure"]
    fig.update_layout(width=10)  # revision 1
    fig._on_browser_msg(fig, {"type": "sync", "revision": 1}, [])  # a new browser model that is up to date
    assert synced == ["figure"]
    fig._on_browser_msg(fig, {"type": "sync", "revision": 0}, [])  # one that missed the patch
    assert synced == ["figure", "figure"]


def test_plotly_js_is_shared_and_is_the_shipped_cartesian_bundle():
    first, second = heatmap_figure(), heatmap_figure()
    assert first.library is second.library is PlotlyLibrary.shared()
    assert gzip.decompress(first.library.source) == PlotlyLibrary.SCRIPT.read_bytes()
    assert len(first.library.source) < 700_000  # gzipped; the full bundle would be 1.7 MB
    first.library.close()
    assert PlotlyLibrary.shared() is not first.library  # a closed library is replaced


def test_the_shipped_bundle_matches_the_plotly_package_and_draws_our_traces():
    full = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text()[:200]
    full_version = re.search(r"plotly\.js v(\d+)\.", full).group(1)
    assert PlotlyLibrary.version().split(".")[0] == full_version  # figures built by plotly.py for this plotly.js
    assert {"heatmap", "image", "scatter", "bar"} <= PlotlyLibrary.trace_types()
    assert "surface" not in PlotlyLibrary.trace_types()  # 3-D is not in the cartesian bundle


@pytest.mark.parametrize("figure", [go.Figure(go.Surface(z=np.eye(3))), {"data": [{"type": "scatter3d"}]}])
def test_a_trace_the_bundle_cannot_draw_is_refused_with_advice(figure):
    with pytest.raises(ValueError, match=r"no '(surface|scatter3d)' trace.*heatmap.*fig\.show\(\)"):
        LiveFigure(figure)
    fig = heatmap_figure()
    with pytest.raises(ValueError, match="cartesian bundle"):
        fig.show(figure)
    assert [trace["type"] for trace in fig.data] == ["heatmap", "scatter"]  # the figure shown is unchanged


def test_the_front_end_code_is_small_and_handles_patches_clicks_and_resync():
    esm = str(LiveFigure._esm)  # anywidget reads static/live_figure.js
    assert len(esm) < 8000  # plotly.js travels once in PlotlyLibrary, not in every figure's code
    for needed in ('"patch"', '"resync"', '"sync"', '"click"', "Plotly.react", "DecompressionStream", "get_model",
                   "ResizeObserver"):  # the figure fits the width of its output
        assert needed in esm


def test_dotted_paths_replace_one_nested_property(sent):
    fig = LiveFigure(go.Figure(layout={"xaxis": {"range": [0, 1], "domain": [0, 0.5]}}))
    fig.update_layout({"xaxis.range": [2, 3], "yaxis.title.text": "rows"})
    assert fig.layout["xaxis"] == {"range": [2, 3], "domain": [0, 0.5]}
    assert fig.layout["yaxis"]["title"] == {"text": "rows"}
    assert sent[-1]["ops"] == [{"props": {"xaxis.range": [2, 3], "yaxis.title.text": "rows"}}]
