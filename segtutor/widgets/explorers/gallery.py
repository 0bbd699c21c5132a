"""ExplorerGallery: every concept explorer on one page, and the page a link to any of them opens.

A link names its view (``view=pooling&mode=avg&window=3``). The gallery's Voila dashboard
(``notebooks/dashboards/explorers.ipynb``) shows the explorer a link names, in the link's state; without a link it
shows the convolution explorer, and a menu switches between the explorers. Each explorer is built the first time
it is shown, its module imported then (a page opens as fast as one explorer, and the convolution, pooling and
upsampling explorers need no torch), and keeps its settings when you switch away and back.

Example:
    >>> gallery = ExplorerGallery()
    >>> report = open_link(gallery, "view=pooling&mode=avg&window=3")
    >>> gallery.name, gallery.explorer.mode.value
    ('pooling', 'avg')
"""

from __future__ import annotations

import importlib

import ipywidgets as widgets

from segtutor.widgets.controls import report_errors

# link name (each explorer's LINK_VIEW) -> (menu label, the explorer's class in segtutor.widgets.explorers), in the
# order of the course. By name: an explorer's module (torch, for some) is imported when it is first shown.
EXPLORERS: dict[str, tuple[str, str]] = {
    "convolution": ("convolution (02)", "ConvolutionExplorer"),
    "pooling": ("ReLU and pooling (03)", "PoolingExplorer"),
    "upsampling": ("upsampling (04)", "UpsamplingExplorer"),
    "receptive-field": ("receptive field (07)", "ReceptiveFieldExplorer"),
    "loss-playground": ("loss playground (08)", "LossPlaygroundExplorer"),
}


def explorer_class(name: str) -> type[widgets.Widget]:
    """The class of the explorer with link name ``name`` (a key of :data:`EXPLORERS`), its module imported now."""
    return getattr(importlib.import_module("segtutor.widgets.explorers"), EXPLORERS[name][1])


class ExplorerGallery(widgets.VBox):
    """A menu of the concept explorers and the one chosen, each with its "copy link to this view" control.

    Args:
        view: the explorer shown first, by its link name (a key of :data:`EXPLORERS`, e.g. ``"pooling"``).

    :func:`~segtutor.widgets.open_link` on a gallery shows the explorer the link names (``view_for``) and puts its
    settings to the link's values; a link to a view the gallery does not hold leaves the explorer shown as it is
    and says so in its note.
    """

    def __init__(self, view: str = "convolution") -> None:
        if view not in EXPLORERS:
            raise ValueError(f"view must be one of {', '.join(EXPLORERS)}, got {view!r}")
        self.explorers: dict[str, widgets.Widget] = {}  # built so far, by link name
        self.picker = widgets.Dropdown(options=[(label, name) for name, (label, _) in EXPLORERS.items()],
                                       value=view, description="explorer",
                                       layout=widgets.Layout(width="340px"))  # fmt: skip
        self.holder = widgets.VBox()
        self.errors = widgets.Output()
        self.picker.observe(report_errors(self.errors)(lambda _change: self._show()), names="value")
        super().__init__([self.picker, self.errors, self.holder])
        self._show()

    @property
    def name(self) -> str:
        """The link name of the explorer shown."""
        return self.picker.value

    @property
    def explorer(self) -> widgets.Widget:
        """The explorer shown."""
        return self.explorers[self.name]

    def view_for(self, name: str | None) -> widgets.Widget | None:
        """Show the explorer a link names and return it; None (nothing changes) for a name the gallery lacks."""
        if name not in EXPLORERS:
            return None
        self.picker.value = name
        return self.explorer

    def _show(self) -> None:
        if self.name not in self.explorers:
            self.explorers[self.name] = explorer_class(self.name)()
        self.holder.children = [self.explorer]
