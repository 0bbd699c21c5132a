"""Saving a trained model to a file and getting it back.

A checkpoint holds the weights, how to rebuild the model (the ``create_model`` name and arguments), the class
names, the :class:`TrainConfig` and the :class:`History`. Everything but the weights is stored as plain lists,
dicts, strings and numbers, so loading uses ``torch.load(weights_only=True)``, which refuses to rebuild arbitrary
Python objects. That is much safer than plain pickle, which runs whatever code a file asks for. It is not a
guarantee: ``weights_only=True`` could be bypassed to run code in torch up to 2.5.1 (CVE-2025-32434, fixed in 2.6)
and through memory corruption before 2.10 (CVE-2026-24747), which is why segtutor requires torch >= 2.10. Still
open only checkpoints from sources you trust, with an up-to-date torch.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from segtutor.device import check_device
from segtutor.models import SIZES, create_model, list_models, paper_aspp_rates
from segtutor.train.config import TrainConfig
from segtutor.train.history import Evaluation, History

FORMAT = "segtutor.checkpoint"
VERSION = 1  # the "checksum" key came later within version 1: older readers ignore it, this one checks it


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns."""

    model: nn.Module  # rebuilt with create_model(model_name, **model_kwargs), trained weights loaded, in eval mode
    model_name: str  # e.g. "unet"
    model_kwargs: dict  # e.g. {"in_channels": 3, "num_classes": 2, "size": "small"}
    class_names: list[str] | None  # one name per class, if saved
    config: TrainConfig | None  # the training settings, if saved
    history: History | None  # the training history, if saved
    skipped: list[str] = field(default_factory=list)  # what the file holds that this segtutor could not read


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    class_names: list[str] | None = None,
    config: TrainConfig | None = None,
    history: History | None = None,
    model_name: str | None = None,
    model_kwargs: dict | None = None,
) -> None:
    """Write ``model``'s weights and everything needed to rebuild it to ``path`` (a ``.pt`` file).

    Nothing is written that could not be loaded: ``create_model(model_name, **model_kwargs)`` must rebuild a
    model of the same shape, and the settings must be plain numbers, strings, lists and dicts (numpy numbers
    become Python numbers). The file gets a SHA-256 checksum of the weights, which :func:`load_checkpoint`
    checks. It is written to a temporary file next to ``path`` first and renamed once complete, so a save that
    fails midway (a full disk, an interrupted kernel) leaves an earlier file at ``path`` as it was.

    Args:
        path: file to write.
        model: a model built by ``segtutor.models.create_model``.
        class_names: names of the classes (default: ``history.class_names`` if a history is given).
        config: the training settings.
        history: the training history.
        model_name, model_kwargs: the ``create_model`` arguments that rebuild ``model``; found from the model
            itself if not given (its type, ``in_channels``, ``num_classes`` and the size whose weights match).

    Raises:
        ValueError: the arguments do not rebuild ``model``, or a setting is not a plain value; the message says
            what to pass instead.

    Example:
        >>> save_checkpoint("unet.pt", model, config=config, history=history)
        >>> model = load_checkpoint("unet.pt").model
    """
    # 1) how to rebuild the model, checked: a file that cannot be loaded is worse than none
    if model_name is None or model_kwargs is None:
        found_name, found_kwargs = _find_create_args(model, model_name)
        model_name, model_kwargs = model_name or found_name, found_kwargs if model_kwargs is None else model_kwargs
    _check_rebuilds(model, model_name, dict(model_kwargs))
    if getattr(model, "aspp_rates", None) is not None:  # named in the file, so a later default cannot change them
        model_kwargs = {**model_kwargs, "aspp_rates": list(model.aspp_rates)}
    if class_names is None and history is not None and history.class_names:
        class_names = history.class_names
    # 2) everything but the weights as plain values, so that weights_only=True loads it
    state_dict = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    contents = {
        "format": FORMAT,
        "version": VERSION,
        "model_name": _plain(model_name, "model_name"),
        "model_kwargs": _plain(dict(model_kwargs), "model_kwargs"),
        "class_names": _plain(list(class_names), "class_names") if class_names is not None else None,
        "config": _plain(config.to_dict(), "config") if config is not None else None,
        "history": _plain(history.to_dict(), "history") if history is not None else None,
        "checksum": weights_checksum(state_dict),
    }
    contents["state_dict"] = state_dict
    # 3) a temporary file, renamed once complete: an earlier checkpoint survives a save that fails midway
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        torch.save(contents, temporary)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def load_checkpoint(path: str | os.PathLike, *, device: torch.device | str | None = None) -> Checkpoint:
    """Rebuild the model saved by :func:`save_checkpoint`, with its weights, config and history.

    The weights are checked against the checksum saved with them. Settings this segtutor does not know (a
    field added by a newer version) are skipped with a warning and listed in ``checkpoint.skipped``: the
    weights load all the same.

    Args:
        path: the checkpoint file.
        device: where to put the model (default: the CPU).

    Returns:
        A :class:`Checkpoint`; its model is in eval mode, ready to predict.

    Raises:
        ValueError: the file is empty, not a checkpoint, damaged (the checksum differs), or its weights do not fit
            the model it names; the message says which.
    """
    name = os.fspath(path)
    device = check_device(device) if device is not None else torch.device("cpu")
    contents = _read(path)
    if not isinstance(contents, dict) or contents.get("format") != FORMAT:
        raise ValueError(f"{name} is not a segtutor checkpoint (written by save_checkpoint)")
    if contents["version"] > VERSION:
        raise ValueError(
            f"{name} is a version {contents['version']} checkpoint; this segtutor reads up to "
            f"version {VERSION}: update segtutor"
        )
    state_dict = contents["state_dict"]
    if "checksum" in contents and weights_checksum(state_dict) != contents["checksum"]:
        raise ValueError(
            f"{name}: the weights are damaged: their checksum differs from the one saved with them, so bytes of "
            "the file changed after it was written (a broken copy or download, a disk error). Fix: use another "
            "copy of the file, or save the model again"
        )
    model_kwargs = _with_aspp_rates(contents["model_name"], contents["model_kwargs"])
    model = create_model(contents["model_name"], **model_kwargs)
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as error:
        raise ValueError(
            f"{name}: its weights do not fit create_model({contents['model_name']!r}, **{model_kwargs}) "
            f"({str(error).splitlines()[0]}). Fix: save it again with the model_name and model_kwargs that built "
            "the model"
        ) from error
    model.to(device).eval()
    skipped: list[str] = []
    config = _config(contents["config"], skipped) if contents["config"] is not None else None
    history = _history(contents["history"], skipped) if contents["history"] is not None else None
    skipped = list(dict.fromkeys(skipped))  # each kind once (every evaluation may skip the same field)
    if skipped:
        warnings.warn(f"{name}: the weights are loaded, but this segtutor skipped {'; '.join(skipped)} (saved by a "
                      "newer segtutor? update segtutor to read them)", stacklevel=2)  # fmt: skip
    return Checkpoint(
        model=model,
        model_name=contents["model_name"],
        model_kwargs=model_kwargs,
        class_names=contents["class_names"],
        config=config,
        history=history,
        skipped=skipped,
    )


def weights_checksum(state_dict: dict[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict: every key, dtype, shape and byte of every tensor, in key order."""
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        tensor = state_dict[key].detach().cpu().contiguous()
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def infer_create_args(model: nn.Module) -> tuple[str, dict]:
    """The ``create_model(name, **kwargs)`` call that builds a model shaped like ``model``.

    Tries every registered name and size, building candidates on the ``meta`` device (no memory, no time) and
    comparing the shapes of their weights with ``model``'s.

    Raises:
        ValueError: if no registered model matches; pass ``model_name`` and ``model_kwargs`` explicitly then.
    """
    return _find_create_args(model, None)


def _find_create_args(model: nn.Module, model_name: str | None) -> tuple[str, dict]:
    """:func:`infer_create_args` among the sizes of ``model_name`` (every registered name if None)."""
    shapes = _shapes(model)
    in_channels, num_classes = getattr(model, "in_channels", None), getattr(model, "num_classes", None)
    names = list_models() if model_name is None else [model_name]
    if in_channels is not None and num_classes is not None:
        for name in names:
            for size in SIZES.get(name, ()):
                kwargs = {"in_channels": in_channels, "num_classes": num_classes, "size": size}
                with torch.device("meta"):
                    candidate = create_model(name, **kwargs)
                if type(candidate) is type(model) and _shapes(candidate) == shapes:
                    rates = getattr(model, "aspp_rates", None)  # dilations hold no weights: always name them
                    if rates is not None:
                        kwargs["aspp_rates"] = list(rates)
                    return name, kwargs
    named = f"model_name={model_name!r} with any size" if model_name is not None else "any create_model call"
    raise ValueError(
        f"cannot tell which create_model call built this {type(model).__name__} ({named} builds another shape); "
        "pass model_name and model_kwargs to save_checkpoint, e.g. model_name='unet', model_kwargs={'size': 'small'}"
    )


def _with_aspp_rates(model_name: str, model_kwargs: dict) -> dict:
    """``model_kwargs`` of a DeepLab checkpoint with its ASPP rates named. Files written before the course's sizes
    had rates of their own (``COURSE_ASPP_RATES``) name none: their models were built with the paper's."""
    size = SIZES.get(model_name, {}).get(model_kwargs.get("size", "small"), {})  # {}: create_model will say why
    if "output_stride" not in size or "aspp_rates" in model_kwargs:
        return dict(model_kwargs)
    return {**model_kwargs, "aspp_rates": paper_aspp_rates(size["output_stride"])}


def _check_rebuilds(model: nn.Module, model_name: str, model_kwargs: dict) -> None:
    """Raise unless ``create_model(model_name, **model_kwargs)`` builds a model with ``model``'s weight shapes."""
    with torch.device("meta"):
        candidate = create_model(model_name, **model_kwargs)
    shapes, rebuilt = _shapes(model), _shapes(candidate)
    rates, rebuilt_rates = getattr(model, "aspp_rates", None), getattr(candidate, "aspp_rates", None)
    if type(candidate) is type(model) and rebuilt == shapes and rates != rebuilt_rates:
        raise ValueError(
            f"create_model({model_name!r}, **{model_kwargs}) builds ASPP rates {rebuilt_rates}, but this model's "
            f"are {rates}: the checkpoint would load into another network. Fix: add aspp_rates={rates} to "
            "model_kwargs, or leave model_name and model_kwargs out for segtutor to find them"
        )
    if type(candidate) is type(model) and rebuilt == shapes:
        return
    differ = next((key for key in shapes if rebuilt.get(key) != shapes[key]), None)
    detail = (f"{type(candidate).__name__} instead of a {type(model).__name__}" if type(candidate) is not type(model)
              else f"'{differ}' of shape {rebuilt.get(differ)} instead of {shapes[differ]}" if differ is not None
              else "other weights")  # fmt: skip
    try:
        hint = "; this model matches model_name={!r}, model_kwargs={}".format(*_find_create_args(model, None))
    except ValueError:
        hint = ""
    raise ValueError(
        f"create_model({model_name!r}, **{model_kwargs}) builds a model with {detail}, so the checkpoint could "
        f"never be loaded. Fix: pass the model_name and model_kwargs that built the model{hint}, or leave both out "
        "for segtutor to find them"
    )


def _plain(value: object, where: str) -> object:
    """``value`` as plain Python (numpy numbers as numbers, tuples as lists); anything else is an error."""
    if isinstance(value, np.generic) or (isinstance(value, torch.Tensor) and value.ndim == 0):
        return value.item()  # numpy.float64(0.001) -> 0.001 (a float subclass torch.load refuses), tensor(3) -> 3
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise ValueError(f"{where} has the key {key!r}; a checkpoint stores dicts with string keys only")
        return {key: _plain(item, f"{where}[{key!r}]") for key, item in value.items()}
    raise ValueError(
        f"{where} holds a {type(value).__module__}.{type(value).__name__} ({value!r:.60}); a checkpoint stores only "
        "numbers, strings, lists and dicts, so that it loads safely with weights_only=True. Fix: convert it, "
        "e.g. float(value) or str(value)"
    )


def _read(path: str | os.PathLike) -> object:
    """The file's contents through ``torch.load(weights_only=True)``; a clear error for what is not a checkpoint."""
    name = os.fspath(path)
    with open(name, "rb") as file:  # a missing file: FileNotFoundError, which says it all
        start = file.read(16)
    if not start:
        raise ValueError(f"{name} is empty (0 bytes): the save that wrote it did not finish, or the copy failed. "
                         "Fix: save the model again, or use another copy")  # fmt: skip
    if start[:4] != b"PK\x03\x04" and start[:1] != b"\x80":  # torch's zip format, or its older pickle format
        text = all(32 <= b < 127 or b in (9, 10, 13) for b in start)
        raise ValueError(
            f"{name} is not a file torch wrote: it looks {'like a text file' if text else 'like another format'} "
            f"(it starts with {start[:12]!r}). Fix: check that this is the .pt file save_checkpoint wrote"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 (torch.load raises many kinds of error for a file it cannot read)
        if isinstance(error, pickle.UnpicklingError) and "weights only load failed" in str(error).lower():
            raise ValueError(
                f"{name} asks to rebuild Python objects that a safe load (weights_only=True) refuses, so it was not "
                f"written by save_checkpoint ({str(error).splitlines()[0][:200]}). Fix: load only segtutor "
                "checkpoints; for a file you trust, torch.load it yourself"
            ) from error
        raise ValueError(
            f"{name} is damaged: torch cannot read it ({type(error).__name__}: {error}); a copy or download that "
            "broke off? Fix: use another copy, or save the model again"
        ) from error


def _known(cls: type, values: dict, what: str, skipped: list[str]) -> dict:
    """The entries of ``values`` that are fields of ``cls``; the others are listed in ``skipped``."""
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        skipped.append(f"{what} field(s) {', '.join(map(repr, unknown))}")
    return {key: value for key, value in values.items() if key in names}


def _config(values: dict, skipped: list[str]) -> TrainConfig | None:
    try:
        return TrainConfig(**_known(TrainConfig, values, "config", skipped))
    except (TypeError, ValueError) as error:
        skipped.append(f"the whole config ({error})")
        return None


def _history(values: dict, skipped: list[str]) -> History | None:
    try:
        values = _known(History, values, "history", skipped)
        values["evaluations"] = [
            _known(Evaluation, evaluation, "evaluation", skipped) for evaluation in values.get("evaluations", [])
        ]
        return History.from_dict(values)
    except (TypeError, ValueError) as error:
        skipped.append(f"the whole history ({error})")
        return None


def _shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}
