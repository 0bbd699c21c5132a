"""Writing exports safely, and asking for the optional packages they need.

An export is written to a temporary file beside its target and renamed over the target only once it is
complete (``os.replace`` is atomic on one file system), so a failure half-way leaves any earlier file intact.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

INSTALL_HINT = "pip install 'segtutor[export]'"
# The modules of the export extra (pyproject's [project.optional-dependencies] export), named like their pip packages.
# to_torchscript needs none of them.
EXTRA_MODULES = ("onnx", "onnxscript", "onnxruntime", "bioimageio.core")


def missing_packages() -> list[str]:
    """The packages of the ``export`` extra that are not installed; empty when every export works.

    ``to_torchscript`` needs none of them; ``to_onnx`` needs onnx and onnxscript; ``to_bioimageio`` all of them.
    Nothing is imported (``importlib.util.find_spec`` only looks), so asking is cheap.

    Example:
        >>> missing = missing_packages()
        >>> print("ready" if not missing else f"missing {missing}: pip install 'segtutor[export]'")
    """
    missing = []
    for module in EXTRA_MODULES:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # the parent package ("bioimageio") is missing
            found = False
        if not found:
            missing.append(module)
    return missing


def require(module: str, purpose: str) -> ModuleType:
    """Import an optional dependency of ``segtutor.export``, or say which package to install.

    Args:
        module: the module to import, e.g. ``"onnxscript"`` or ``"bioimageio.core"`` (named like its pip
            package).
        purpose: what needs it, for the message, e.g. ``"to_onnx"``.

    Raises:
        ImportError: naming the missing package and the ``export`` extra that installs it.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        # the pip package: "bioimageio.core" for bioimageio.core.*, else the top-level name ("onnx" for onnx.checker)
        package = ".".join(module.split(".")[:2]) if module.startswith("bioimageio.") else module.split(".")[0]
        raise ImportError(
            f"{purpose} needs the {package!r} package, which is not installed: {INSTALL_HINT} "
            f"(or pip install {package})"
        ) from error


def check_target(path: str | os.PathLike, suffixes: tuple[str, ...]) -> Path:
    """``path`` as a ``Path``, after checking its folder exists and it is not itself a folder."""
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise ValueError(f"{path} should end in {' or '.join(suffixes)}; got {path.suffix or 'no suffix'}")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file name, e.g. {path / ('model' + suffixes[0])}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"the folder {path.parent} does not exist; create it first (path.parent.mkdir())")
    return path


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """Yield a temporary file beside ``path``; it replaces ``path`` if the block succeeds, else it is removed.

    Example:
        >>> with replacing(Path("model.onnx")) as temporary:
        ...     write_the_model(temporary)     # model.onnx is untouched until this has finished
    """
    # ".unet.x8f2k.tmp.onnx": hidden, unique, and with the target's suffix for writers that read it
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(descriptor)
    temporary = Path(name)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)  # only still there if the block failed
