"""The training studio: pick a model, train it live, inspect its predictions, upload an image, race the architectures.

One app made of the studio widgets, one tab per step of the course's pipeline:

1. **Model**: :class:`~segtutor.widgets.ModelPicker`, the architecture drawn from the model.
2. **Train**: :class:`~segtutor.widgets.TrainingDashboard`, live curves and preview.
3. **Predict**: :class:`~segtutor.widgets.PredictionViewer`, with the upload control.
4. **Layers**: :class:`~segtutor.widgets.FeatureMapViewer`, the feature maps inside a layer.
5. **Race**: :class:`~segtutor.widgets.ArchitectureRace`.
6. **Annotate**: :class:`~segtutor.widgets.AnnotationViewer`, uncertainty-guided annotation with its own small model.

Picking another model hands it to the dashboard (stopping its run). The viewers look at a copy of the trained
model, taken when their tab is opened after more training (or when "use the latest model" is pressed). The
dashboard, the race and the annotation rounds never train at the same time: each starts its run with
:func:`segtutor.train.run_in_background`, which stops every other run of the kernel. Tabs 2 to 5 are built when
first opened (or first used from Python), so the page shows its first widgets sooner.
"""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as widgets
from torch import nn
from torch.utils.data import Dataset

from segtutor.data import TissueDataset, class_names_of
from segtutor.train import CpuShare, TrainConfig
from segtutor.widgets.controls import report_errors
from segtutor.widgets.links import LinkField, ShareLink, control_field
from segtutor.widgets.studio.annotation import AnnotationViewer
from segtutor.widgets.studio.features import FeatureMapViewer
from segtutor.widgets.studio.model_picker import ModelPicker
from segtutor.widgets.studio.prediction import PredictionViewer
from segtutor.widgets.studio.race import ArchitectureRace
from segtutor.widgets.studio.settings import TrainSettings
from segtutor.widgets.studio.training import TrainingDashboard

TABS = ("1 · Model", "2 · Train", "3 · Predict", "4 · Layers", "5 · Race", "6 · Annotate")  # fit a 592 px output
TAB_LINK_NAMES = ("model", "train", "predictions", "features", "race", "annotate")  # tab=… in a link
LINKED_SETTINGS = {"lr": "lr", "optimizer": "optimizer", "batch_size": "batch_size", "unit": "budget_unit",
                   "budget": "budget", "schedule": "schedule"}  # name in a link -> TrainSettings control
MODEL_TAB, TRAIN_TAB, PREDICTIONS_TAB, FEATURES_TAB, RACE_TAB, ANNOTATE_TAB = range(len(TABS))


class TrainingStudio(widgets.VBox):
    """Pick a model → train it live → inspect its predictions → upload an image → race the architectures.

    Args:
        model: first architecture, ``"unet"``, ``"fcn8s"`` or ``"deeplabv3"``.
        size: its size, ``"tiny"``, ``"small"``, ``"medium"`` or ``"paper"``.
        train_data, val_data: ``(image (C, H, W), mask (H, W))`` datasets; default: generated H&E-like tissue,
            ``num_train`` and ``num_val`` tiles of ``tile_size`` pixels.
        class_names: one per class; default ``train_data.class_names``.
        tile_size, num_train, num_val: the generated data's size (ignored when data is given).
        config: the training dashboard's first settings; default ``TrainConfig(max_seconds=30, eval_every=20)``.
        race_config: the race's settings; default the same with 15 s per model.
        seed: seeds the generated data and the initial weights (the configs seed the data order).

    "Copy link to this view" (``studio.share``) carries the model, its size, the training settings and the tab
    open (``tab=train``); :func:`~segtutor.widgets.open_link` opens a studio in the state of a link.

    Example:
        >>> studio = TrainingStudio(model="unet", size="small")
        >>> studio            # shows the app; in Voila, a dashboard notebook holds just these two lines
    """

    LINK_VIEW = "studio"

    def __init__(
        self,
        *,
        model: str = "unet",
        size: str = "small",
        train_data: Dataset | None = None,
        val_data: Dataset | None = None,
        class_names: Sequence[str] | None = None,
        tile_size: int = 128,
        num_train: int = 64,
        num_val: int = 8,
        config: TrainConfig | None = None,
        race_config: TrainConfig | None = None,
        seed: int = 0,
    ) -> None:
        if (train_data is None) != (val_data is None):
            raise ValueError("give both train_data and val_data, or neither (then tissue tiles are generated)")
        if train_data is None:
            train_data = TissueDataset(num_train, tile_size, seed=seed, augment=True)
            val_data = TissueDataset(num_val, tile_size, seed=seed + 1)
        image, _ = val_data[0]
        self.train_data, self.val_data = train_data, val_data
        self.class_names = class_names_of(train_data, class_names)
        self.config = config if config is not None else TrainConfig(max_seconds=30, eval_every=20)
        self.race_config = race_config if race_config is not None else TrainConfig(max_seconds=15, eval_every=20)
        self.picker = ModelPicker(model, size, in_channels=image.shape[0], num_classes=len(self.class_names),
                                  input_size=image.shape[-1], seed=seed)  # fmt: skip
        self.settings = TrainSettings(self.config, model=self.picker.model)  # a link's copy of the dashboard's, linked
        # the other tabs are built when first opened: a page shows its first widgets sooner
        self._dashboard: TrainingDashboard | None = None
        self._predictions: PredictionViewer | None = None
        self._features: FeatureMapViewer | None = None
        self._race: ArchitectureRace | None = None
        self._annotation: AnnotationViewer | None = None
        # the race and the annotation rounds take turns for the machine's cores as the Train tab's runs do
        self.cpu_share = CpuShare()
        self._copy: nn.Module | None = None  # the copy of the dashboard's model the viewers show
        self._seen: tuple | None = None  # (model, steps, runs) when that copy was made

        self.errors = widgets.Output()
        self._guard = report_errors(self.errors)
        self.picker.on_change(self._on_new_model)
        self.refresh_button = widgets.Button(description="↻ use the latest model", tooltip="the model as trained now",
                                             layout=widgets.Layout(width="190px"))  # fmt: skip
        self.refresh_button.on_click(self._guard(lambda _: self.refresh_viewers(force=True)))
        self._pages = [self.picker] + [_placeholder() for _ in TABS[1:]]
        self.tabs = widgets.Tab(self._pages, titles=TABS)
        self.tabs.observe(self._guard(self._on_tab), names="selected_index")
        header = widgets.HTML(
            "<h2 style='margin:4px 0'>segtutor training studio</h2><div style='font-size:13px;color:#444'>"
            "<b>1</b> pick an architecture → <b>2</b> press Start and watch the loss fall → <b>3</b> see where the "
            "predictions are right and wrong, and upload an image of your own → <b>4</b> look inside a layer → "
            "<b>5</b> race the three architectures → <b>6</b> annotate where the model is unsure.</div>"
        )
        self.share = ShareLink(self)
        super().__init__([header, self.tabs, self.errors, self.share])

    # ---- the tabs, built on first use ----------------------------------------------------------------------
    @property
    def dashboard(self) -> TrainingDashboard:
        """The training dashboard (tab 2), training the model picked in tab 1."""
        if self._dashboard is None:
            self._dashboard = TrainingDashboard(self.picker.model, self.train_data, self.val_data,
                                                self.settings.config(), class_names=self.class_names)  # fmt: skip
            # a link's settings and the dashboard's show the same values (and the same batch sizes to choose from)
            widgets.dlink((self._dashboard.settings.batch_size, "options"), (self.settings.batch_size, "options"))
            for control in LINKED_SETTINGS.values():
                widgets.link((getattr(self.settings, control), "value"),
                             (getattr(self._dashboard.settings, control), "value"))  # fmt: skip
            self._pages[TRAIN_TAB].children = [self._dashboard]
        return self._dashboard

    @property
    def predictions(self) -> PredictionViewer:
        """The prediction viewer (tab 3), showing a copy of the dashboard's model."""
        if self._predictions is None:
            self._predictions = PredictionViewer(self._latest_model(), self.val_data, class_names=self.class_names)
            self._pages[PREDICTIONS_TAB].children = [self.refresh_button, self._predictions]
        return self._predictions

    @property
    def features(self) -> FeatureMapViewer:
        """The feature-map viewer (tab 4), showing a copy of the dashboard's model."""
        if self._features is None:
            self._features = FeatureMapViewer(self._latest_model(), self.val_data)
            self._pages[FEATURES_TAB].children = [self._features]
        return self._features

    @property
    def race(self) -> ArchitectureRace:
        """The architecture race (tab 5)."""
        if self._race is None:
            self._race = ArchitectureRace(self.train_data, self.val_data, self.race_config,
                                          class_names=self.class_names, cpu_share=self.cpu_share)  # fmt: skip
            self._pages[RACE_TAB].children = [self._race]
        return self._race

    def link_fields(self) -> list[LinkField]:
        """The model and its size, the training settings (the budget's unit before the budget), then the tab."""
        fields = [control_field("model", self.picker.architecture), control_field("size", self.picker.size)]
        fields += [control_field(name, getattr(self.settings, control)) for name, control in LINKED_SETTINGS.items()]
        return fields + [LinkField("tab", lambda: TAB_LINK_NAMES[self.tabs.selected_index or 0], self._open_tab)]

    def _open_tab(self, name: str) -> None:
        if name not in TAB_LINK_NAMES:
            raise ValueError(f"not one of {', '.join(TAB_LINK_NAMES)}")
        self.tabs.selected_index = TAB_LINK_NAMES.index(name)  # builds the tab's page on first opening

    @property
    def annotation(self) -> AnnotationViewer:
        """Uncertainty-guided annotation (tab 6), with its own tiny model of the architecture picked in tab 1."""
        if self._annotation is None:
            self._annotation = AnnotationViewer(self.train_data, self.val_data, model=self.picker.model_name,
                                                size="tiny", class_names=self.class_names,
                                                cpu_share=self.cpu_share)  # fmt: skip
            self._pages[ANNOTATE_TAB].children = [self._annotation]
        return self._annotation

    def refresh_viewers(self, *, force: bool = False) -> None:
        """Show the dashboard's model as it is now in the prediction and feature-map viewers (if it changed)."""
        if self._predictions is None and self._features is None:
            return  # nothing to refresh yet: each viewer takes the latest model when it is built
        if force:
            self._seen = None
        model = self._latest_model()
        for viewer in (self._predictions, self._features):
            if viewer is not None and viewer.model is not model:
                viewer.set_model(model)

    def _latest_model(self) -> nn.Module:
        """A copy of the dashboard's model as it is now; copied again only once training has changed it."""
        session = self.dashboard.session
        seen = (session.model, len(session.history.losses) if session.history is not None else 0, session.runs_started)
        if self._copy is None or seen != self._seen:
            self._seen, self._copy = seen, session.snapshot_model()  # a copy: a run may go on training the original
        return self._copy

    def _on_new_model(self, model: nn.Module) -> None:
        self.settings.use_model(model)  # first: the dashboard's controls, linked to these, then offer the same values
        if self._dashboard is not None:  # a dashboard built later starts from picker.model
            self._dashboard.set_model(model)
        self.refresh_viewers(force=True)

    def _on_tab(self, change: dict) -> None:
        index = change["new"]
        self.share.refresh()  # the link names the tab open
        if index in (PREDICTIONS_TAB, FEATURES_TAB):
            self.refresh_viewers()  # viewers built earlier follow the training
        pages = {TRAIN_TAB: "dashboard", PREDICTIONS_TAB: "predictions", FEATURES_TAB: "features", RACE_TAB: "race",
                 ANNOTATE_TAB: "annotation"}  # fmt: skip
        if index in pages:
            getattr(self, pages[index])  # builds the page on first opening


def _placeholder() -> widgets.VBox:
    return widgets.VBox([widgets.HTML("<i>preparing…</i>")])
