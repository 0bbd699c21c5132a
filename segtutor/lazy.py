"""Names a package exports, imported the first time they are used: a page that needs no torch does not pay for it.

``import torch`` takes about 3 s of a fresh kernel's CPU. A Voila page imports the package its notebook names, so a
package ``__init__`` that imports all of its modules makes every page pay for the heaviest of them: the numpy
explorers of :mod:`segtutor.widgets` would wait for torch, although only the training studio trains. A package
lists its names per module instead (:func:`lazy_exports`), and a name's module is imported the first time the name
is used: ``from segtutor.widgets import ConvolutionExplorer`` imports the convolution explorer's module and what it
needs, nothing else.

Example (a package's ``__init__.py``):
    >>> lazy_exports(__name__, {
    ...     "segtutor.widgets.explorers.convolution": ["ConvolutionExplorer", "ConvolutionState"],
    ... })
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Mapping, Sequence


def lazy_exports(package: str, modules: Mapping[str, Sequence[str]]) -> None:
    """Make the names of ``modules`` (module name -> names it defines) attributes of ``package``, imported on use.

    Call it in the package's ``__init__.py`` with its ``__name__``. The first use of a name imports its module and
    keeps the name in the package, so the next use costs nothing; an unknown name raises ``AttributeError`` as
    usual. A name that is also the name of the module defining it (``segtutor.data.augment`` defines
    ``augment``) stays the function once that module has been imported, as with an eager ``from … import``.
    """
    module = sys.modules[package]
    module._lazy_names = {name: where for where, names in modules.items() for name in names}
    module.__class__ = _LazyPackage


class _LazyPackage(types.ModuleType):
    """A package whose exported names are imported on first use (see :func:`lazy_exports`)."""

    def __getattr__(self, name: str):  # called only for names the package does not hold yet
        where = self.__dict__.get("_lazy_names", {}).get(name)
        if where is None:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where), name)
        types.ModuleType.__setattr__(self, name, value)  # the next use finds it without asking again
        return value

    def __setattr__(self, name: str, value) -> None:
        # importing submodule ``package.name`` sets attribute ``name`` to the module; where the package exports a
        # name of that module under the same name, the package keeps the export (as an eager import would)
        if isinstance(value, types.ModuleType) and self.__dict__.get("_lazy_names", {}).get(name) == value.__name__:
            value = getattr(value, name)
        types.ModuleType.__setattr__(self, name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(self.__dict__) | set(self.__dict__.get("_lazy_names", {})))
