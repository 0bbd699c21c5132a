"""Class names and overlay colours shared by every segtutor dataset.

A mask stores one integer per pixel: the index of its class in ``class_names``. Colours are only for drawing;
they come from the Okabe–Ito palette, which stays distinguishable for colour-blind viewers.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType

# Label value meaning "not annotated": the loss and the metrics skip these pixels.
IGNORE_INDEX = 255

# The procedural tissue (segtutor.data.tissue): label = position in this tuple.
TISSUE_CLASS_NAMES = ("stroma", "tumor", "background")

# The real H&E skin slide (segtutor.data.skin), from the top of the image down.
SKIN_CLASS_NAMES = ("glass", "stratum corneum", "epidermis", "dermis")

# Overlay colour (R, G, B) of every named class; read-only.
CLASS_COLORS = MappingProxyType(
    {
        "stroma": (0, 158, 115),  # bluish green
        "tumor": (213, 94, 0),  # vermillion
        "background": (187, 187, 187),  # light grey
        "glass": (187, 187, 187),  # light grey
        "stratum corneum": (240, 228, 66),  # yellow
        "epidermis": (204, 121, 167),  # reddish purple
        "dermis": (86, 180, 233),  # sky blue
    }
)

# Colours for classes without a name above (a learner's own data), in order.
PALETTE = (
    (0, 0, 0),  # black
    (230, 159, 0),  # orange
    (86, 180, 233),  # sky blue
    (0, 158, 115),  # bluish green
    (240, 228, 66),  # yellow
    (0, 114, 178),  # blue
    (213, 94, 0),  # vermillion
    (204, 121, 167),  # reddish purple
)


def class_colors(class_names: Sequence[str]) -> tuple[tuple[int, int, int], ...]:
    """One overlay colour per class: the named colour if there is one, else the palette's colour for its index.

    Example:
        >>> class_colors(("stroma", "tumor"))
        ((0, 158, 115), (213, 94, 0))
    """
    return tuple(CLASS_COLORS.get(name, PALETTE[i % len(PALETTE)]) for i, name in enumerate(class_names))


def class_names_of(dataset: object, class_names: Sequence[str] | None = None) -> list[str]:
    """The class names to use for ``dataset``: ``class_names`` if given, else the dataset's own ``class_names``.

    Raises:
        ValueError: if neither is there (a plain ``TensorDataset``, say), with the argument to pass.
    """
    names = class_names if class_names is not None else getattr(dataset, "class_names", None)
    if names is None:
        raise ValueError(
            f"give class_names, e.g. class_names=['stroma', 'tumor'] ({type(dataset).__name__} has no .class_names)"
        )
    return list(names)
