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

import os
from dataclasses import dataclass

import torch
from torch import nn

from segtutor.models import SIZES, create_model, list_models
from segtutor.train.config import TrainConfig
from segtutor.train.history import History

FORMAT = "segtutor.checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns."""

    model: nn.Module  # rebuilt with create_model(model_name, **model_kwargs), trained weights loaded, in eval mode
    model_name: str  # e.g. "unet"
    model_kwargs: dict  # e.g. {"in_channels": 3, "num_classes": 2, "size": "small"}
    class_names: list[str] | None  # one name per class, if saved
    config: TrainConfig | None  # the training settings, if saved
    history: History | None  # the training history, if saved


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

    Args:
        path: file to write.
        model: a model built by ``segtutor.models.create_model``.
        class_names: names of the classes (default: ``history.class_names`` if a history is given).
        config: the training settings.
        history: the training history.
        model_name, model_kwargs: the ``create_model`` arguments that rebuild ``model``; found from the model
            itself if not given (its type, ``in_channels``, ``num_classes`` and the size whose weights match).

    Example:
        >>> save_checkpoint("unet.pt", model, config=config, history=history)
        >>> model = load_checkpoint("unet.pt").model
    """
    if model_name is None:
        model_name, model_kwargs = infer_create_args(model)
    if class_names is None and history is not None and history.class_names:
        class_names = history.class_names
    state_dict = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    torch.save(
        {
            "format": FORMAT,
            "version": VERSION,
            "model_name": model_name,
            "model_kwargs": dict(model_kwargs or {}),
            "state_dict": state_dict,
            "class_names": list(class_names) if class_names is not None else None,
            "config": config.to_dict() if config is not None else None,
            "history": history.to_dict() if history is not None else None,
        },
        path,
    )


def load_checkpoint(path: str | os.PathLike, *, device: torch.device | str | None = None) -> Checkpoint:
    """Rebuild the model saved by :func:`save_checkpoint`, with its weights, config and history.

    Args:
        path: the checkpoint file.
        device: where to put the model (default: the CPU).

    Returns:
        A :class:`Checkpoint`; its model is in eval mode, ready to predict.
    """
    contents = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(contents, dict) or contents.get("format") != FORMAT:
        raise ValueError(f"{os.fspath(path)} is not a segtutor checkpoint (written by save_checkpoint)")
    if contents["version"] > VERSION:
        raise ValueError(
            f"{os.fspath(path)} is a version {contents['version']} checkpoint; this segtutor reads up to "
            f"version {VERSION}: update segtutor"
        )
    model = create_model(contents["model_name"], **contents["model_kwargs"])
    model.load_state_dict(contents["state_dict"])
    model.to(device if device is not None else "cpu").eval()
    return Checkpoint(
        model=model,
        model_name=contents["model_name"],
        model_kwargs=contents["model_kwargs"],
        class_names=contents["class_names"],
        config=TrainConfig.from_dict(contents["config"]) if contents["config"] is not None else None,
        history=History.from_dict(contents["history"]) if contents["history"] is not None else None,
    )


def infer_create_args(model: nn.Module) -> tuple[str, dict]:
    """The ``create_model(name, **kwargs)`` call that builds a model shaped like ``model``.

    Tries every registered name and size, building candidates on the ``meta`` device (no memory, no time) and
    comparing the shapes of their weights with ``model``'s.

    Raises:
        ValueError: if no registered model matches; pass ``model_name`` and ``model_kwargs`` explicitly then.
    """
    shapes = _shapes(model)
    in_channels, num_classes = getattr(model, "in_channels", None), getattr(model, "num_classes", None)
    if in_channels is not None and num_classes is not None:
        for name in list_models():
            for size in SIZES[name]:
                kwargs = {"in_channels": in_channels, "num_classes": num_classes, "size": size}
                with torch.device("meta"):
                    candidate = create_model(name, **kwargs)
                if type(candidate) is type(model) and _shapes(candidate) == shapes:
                    return name, kwargs
    raise ValueError(
        f"cannot tell which create_model call built this {type(model).__name__}; pass model_name and "
        "model_kwargs to save_checkpoint, e.g. model_name='unet', model_kwargs={'size': 'small'}"
    )


def _shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}
