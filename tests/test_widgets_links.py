"""Views you can share: every explorer and the studio round-trip through a link; bad links are reported, not fatal;
the query string comes from Voila (plain and pre-heated kernels)."""

from __future__ import annotations

import pytest

from segtutor.widgets import (
    ConvolutionExplorer,
    ExplorerGallery,
    LossPlaygroundExplorer,
    PoolingExplorer,
    ReceptiveFieldExplorer,
    TrainingStudio,
    UpsamplingExplorer,
    apply_link,
    open_link,
    view_link,
)
from segtutor.widgets import links as links_module

CHANGES = {  # for each explorer, settings unlike its defaults (the step last: settings restart the steps)
    ConvolutionExplorer: dict(input_picker="tissue", kernel_picker="blur", kernel_size=5, stride=2, padding=2,
                              dilation=2, **{"stepper.slider": 7}),
    PoolingExplorer: dict(input_picker="tissue", kernel_picker="sobel_y", mode="avg", kernel_size=3, stride=3,
                          **{"stepper.slider": 4}),
    UpsamplingExplorer: dict(input_picker="tissue", kernel_picker="random", kernel_size=4, stride=3, padding=1,
                             **{"stepper.slider": 5}),
    LossPlaygroundExplorer: dict(tumor_share=0.12, row=20, col=40, shift=-3, grow=2, blur=1.5, confidence=0.8,
                                 tumor_weight=7.5, gamma=1.0),
}


def control(view, path):
    for name in path.split("."):
        view = getattr(view, name)
    return view


@pytest.mark.parametrize("kind", list(CHANGES), ids=lambda kind: kind.__name__)
def test_every_explorer_round_trips_through_its_link(kind):
    view = kind()
    default_link = view_link(view)
    if kind is LossPlaygroundExplorer:
        view.preset.value = "custom"  # presets are not in the link: the sliders they set are
    for path, value in CHANGES[kind].items():
        control(view, path).value = value
    link = view_link(view)
    assert link.startswith(f"view={view.LINK_VIEW}&") and link != default_link
    assert view.share.query == link and len(link) < 200  # the control shows it, and it is short

    opened = kind()
    report = open_link(opened, "?" + link)
    assert report.ignored == [] and report.note == "" and opened.share.note == ""
    for path, value in CHANGES[kind].items():
        assert control(opened, path).value == pytest.approx(value) if isinstance(value, float) else \
            control(opened, path).value == value, path  # fmt: skip
    assert view_link(opened) == link
    if hasattr(opened, "stepper"):  # Play holds the link's step too: the page's jslink copies Play onto the slider
        assert opened.stepper.play.value == opened.stepper.slider.value == CHANGES[kind]["stepper.slider"]
    if kind is ConvolutionExplorer:  # the state follows the controls, not only the controls
        assert (opened.state.stride, opened.state.padding, opened.state.dilation) == (2, 2, 2)
        assert opened.state.index == 7 and opened.state.kernel.shape == (5, 5)


def test_the_receptive_field_link_carries_the_model_and_the_clicked_pixel():
    view = ReceptiveFieldExplorer(tile_size=64)
    view.model_picker.value = "fcn8s"
    view.figure.click(0, x=10, y=20)
    assert view.share.query.endswith("model=fcn8s&pixel=20,10")
    opened = ReceptiveFieldExplorer(tile_size=64)
    assert open_link(opened, view.share.query).ignored == []
    assert opened.state.pixel == (20, 10) and opened.model_picker.value == "fcn8s"
    report = open_link(opened, "view=receptive-field&pixel=200,3")
    assert report.ignored == ["pixel=200,3 (pixel (200, 3) lies outside the 64×64 tile)"]
    assert opened.state.pixel == (20, 10)


def test_bad_and_stale_links_open_the_default_view_with_one_line_saying_what_was_ignored():
    view = ConvolutionExplorer()
    default = view_link(view)
    report = open_link(view, "view=convolution&stride=9&padding=two&kernel=model:3&colour=red&kernel_size=7"
                             "&dilation=3&step=999")  # fmt: skip
    assert report.applied == {"kernel_size": "7"}
    assert report.ignored == [
        "kernel=model:3 (not one of identity, sobel_x, sobel_y, blur, sharpen, random)",
        "stride=9 (not in 1 … 3)",
        "padding=two (not one of 0, 1, 2, 3, same)",
        report.ignored[3],  # the explorer's own refusal of dilation 3, in its words
        "step=999 (not in 0 … 0)",
        "colour=red (no such setting)",
    ]
    assert report.ignored[3].startswith("dilation=3 (") and "kernel" in report.ignored[3]
    assert view.dilation.value == 1 and view.errors.outputs == ()  # put back, and the view shows no error
    assert view.share.note.startswith("Opened from a link; ignored kernel=model:3") and "\n" not in view.share.note
    assert view_link(view) == default.replace("kernel_size=3", "kernel_size=7")

    other = open_link(ConvolutionExplorer(), "view=studio&lr=0.01")
    assert other.other_view == "studio" and other.applied == {} and "default view" in other.note
    assert open_link(ConvolutionExplorer(), "").note == "" and open_link(ConvolutionExplorer(), "?").applied == {}


def test_the_studio_link_sets_model_and_settings_and_keeps_the_train_tab_unbuilt():
    studio = TrainingStudio(model="unet", size="tiny", tile_size=64, num_train=8, num_val=2)
    link = "view=studio&model=deeplabv3&size=small&lr=0.003&optimizer=sgd&batch_size=4&unit=iterations&budget=120"
    report = open_link(studio, link + "&schedule=constant&budget_unit=weeks")
    assert report.ignored == ["budget_unit=weeks (no such setting)"]
    assert studio.picker.model_name == "deeplabv3" and studio.picker.size.value == "small"
    assert studio._dashboard is None  # the Train tab is still built on first opening
    assert studio.share.query == link + "&schedule=constant&tab=model"
    config = studio.dashboard.settings.config()  # built now, from the link's settings
    assert (config.lr, config.optimizer, config.batch_size, config.max_iters, config.max_seconds, config.schedule) == (
        0.003, "sgd", 4, 120, None, "constant")  # fmt: skip
    assert type(studio.dashboard.model).__name__ == "DeepLabV3"
    studio.dashboard.settings.lr.value = 1e-4  # changed in the Train tab: the link follows
    assert "lr=0.0001&" in studio.share.query


def test_the_query_string_comes_from_voila(monkeypatch):
    monkeypatch.delenv("VOILA_PREHEAT", raising=False)
    monkeypatch.setenv("QUERY_STRING", "view=convolution&stride=3")
    links_module.voila_query_string.cache_clear()
    view = ConvolutionExplorer()
    assert open_link(view).applied == {"stride": "3"} and view.stride.value == 3

    # a pre-heated kernel asks Voila for the page's request, once
    calls = []

    def get_query_string():
        calls.append(1)
        return "view=convolution&padding=1"

    monkeypatch.setenv("VOILA_PREHEAT", "True")
    monkeypatch.setattr("voila.utils.get_query_string", get_query_string)
    links_module.voila_query_string.cache_clear()
    view = ConvolutionExplorer()
    assert open_link(view).applied == {"padding": "1"} and view.padding.value == 1
    open_link(ConvolutionExplorer())
    assert calls == [1]
    links_module.voila_query_string.cache_clear()
    monkeypatch.delenv("VOILA_PREHEAT")
    monkeypatch.delenv("QUERY_STRING")
    assert open_link(ConvolutionExplorer()).applied == {}  # outside Voila: nothing to open
    links_module.voila_query_string.cache_clear()


def test_apply_link_names_each_refusal():
    view = LossPlaygroundExplorer(size=32)
    report = apply_link(view, "view=loss-playground&confidence=1.5&tumor_share=abc&gamma=3")
    assert report.applied == {"gamma": "3"} and view.state.gamma == 3.0
    assert report.ignored == ["tumor_share=abc (not a number)", "confidence=1.5 (not in 0.5 … 0.999)"]


def test_the_studio_link_names_the_tab_open_and_opens_it():
    studio = TrainingStudio(model="unet", size="tiny", tile_size=64, num_train=8, num_val=2)
    studio.tabs.selected_index = 4  # the learner opens the race tab: the link follows
    assert studio.share.query.endswith("&tab=race") and studio._race is not None
    opened = TrainingStudio(model="unet", size="tiny", tile_size=64, num_train=8, num_val=2)
    report = open_link(opened, "view=studio&lr=0.02&tab=train")
    assert report.ignored == [] and opened.tabs.selected_index == 1
    assert opened._dashboard is not None and opened._pages[1].children == (opened._dashboard,)  # built, and shown
    assert opened.dashboard.settings.lr.value == pytest.approx(0.02)
    assert opened.share.query.endswith("lr=0.02&optimizer=adam&batch_size=4&unit=seconds&budget=30"
                                       "&schedule=cosine&tab=train")  # fmt: skip
    bad = open_link(opened, "view=studio&tab=7")
    assert opened.tabs.selected_index == 1
    assert bad.ignored == ["tab=7 (not one of model, train, predictions, features, race, annotate)"]


def test_the_explorer_gallery_opens_the_explorer_a_link_names_in_its_state():
    gallery = ExplorerGallery()
    assert gallery.name == "convolution" and list(gallery.explorers) == ["convolution"]  # one explorer built
    assert gallery.holder.children == (gallery.explorer,)
    link = "view=pooling&input=tissue&mode=avg&window=3&stride=3&step=4"
    report = open_link(gallery, link + "&colour=red")
    pooling = gallery.explorer
    assert isinstance(pooling, PoolingExplorer) and gallery.picker.value == "pooling"
    assert gallery.holder.children == (pooling,)  # shown instead of the convolution explorer
    assert (pooling.mode.value, pooling.kernel_size.value, pooling.stride.value, pooling.stepper.slider.value) == (
        "avg", 3, 3, 4)  # fmt: skip
    assert pooling.share.query == view_link(pooling) and "input=tissue&" in pooling.share.query
    assert pooling.share.query.endswith("&mode=avg&window=3&stride=3&step=4")
    assert report.ignored == ["colour=red (no such setting)"] and pooling.share.note == \
        "Opened from a link; ignored colour=red (no such setting)."  # fmt: skip

    # each explorer of the gallery: its own link opens it; switching back keeps the settings made
    for name in ("upsampling", "loss-playground", "receptive-field", "convolution"):
        gallery.picker.value = name
        assert gallery.explorer.LINK_VIEW == name and gallery.holder.children == (gallery.explorer,)
        assert gallery.explorer.share.query.startswith(f"view={name}&")
    gallery.picker.value = "pooling"
    assert gallery.explorer is pooling and pooling.mode.value == "avg"

    # a link to a view the gallery does not hold: the explorer shown stays, and its note says why
    report = open_link(gallery, "view=studio&lr=0.01")
    assert gallery.name == "pooling" and report.other_view == "studio" and "default view" in pooling.share.note
    with pytest.raises(ValueError, match="view must be one of convolution, pooling, upsampling, receptive-field, "
                       "loss-playground, got 'unet'"):  # fmt: skip
        ExplorerGallery("unet")


def test_the_gallery_names_each_explorer_by_its_own_link_view():
    from segtutor.widgets.explorers.gallery import EXPLORERS, explorer_class

    assert [explorer_class(name).LINK_VIEW for name in EXPLORERS] == list(EXPLORERS)
