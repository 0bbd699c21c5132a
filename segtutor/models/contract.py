"""What every segtutor model promises, in code: its input checks, its named stages, and how logits are read.

The contract itself is written in :mod:`segtutor.models`. Here are the pieces of it that other code calls:

- :func:`check_images`, which every model's ``forward`` runs first, so a wrong tensor fails with a message that
  says how to fix it (and :func:`check_channels` for the constructor's arguments);
- :class:`Stage`, what ``model.describe()`` returns: the named stages an architecture diagram draws;
- :func:`logits_to_probs` and :func:`logits_to_preds`, the one rule for reading logits, binary models included;
- :class:`TrainingDefaults`, the training settings a model recommends (``model.training_defaults``), which
  :class:`~segtutor.train.TrainConfig` uses for every setting left at ``None``; :func:`training_defaults` reads
  them from any model (a model from elsewhere gets :data:`GENERIC_DEFAULTS`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MIN_SIZE = 32  # smallest H and W: UNet pools 4 times, FCN-8s and DeepLabv3 reach stride 32 or 16


@dataclass(frozen=True)
class Stage:
    """One named stage of an architecture, as an architecture diagram draws it (see each model's ``describe()``)."""

    name: str  # label on the diagram, e.g. "enc2", "pool4", "aspp_rate12"
    module: str  # qualified name in model.named_modules() to hook its output; "" for a plain sum or resize
    kind: str  # "encoder", "bottleneck", "decoder", "score", "upsample", "fuse", "aspp", "classifier"
    out_channels: int  # channels of this stage's output
    stride: int  # output stride: input pixels per feature pixel along each axis
    inputs: tuple[str, ...] = ()  # names of the stages that feed this one, skip connections included
    note: str = ""  # one line for a tooltip


@dataclass(frozen=True)
class TrainingDefaults:
    """The training settings a model recommends: what a :class:`~segtutor.train.TrainConfig` field left at None
    becomes when that model trains. Each segtutor model class sets its own, measured (see the class's comments).

    Example:
        >>> training_defaults(create_model("unet")).lr
        0.003
    """

    lr: float = 1e-3  # Adam's peak learning rate (cosine schedule over the budget)
    sgd_lr: float = 1e-2  # the peak learning rate with optimizer="sgd" (momentum 0.9): SGD needs larger steps
    batch_size: int = 8  # images per step
    channels_last_on_cpu: bool = False  # NHWC memory layout when training on a CPU (GPUs always use it)


GENERIC_DEFAULTS = TrainingDefaults()  # for a model that recommends nothing: Adam's usual 1e-3 (SGD 1e-2), batch 8, NCHW


def training_defaults(model: object) -> TrainingDefaults:
    """The :class:`TrainingDefaults` of ``model`` (its ``training_defaults`` attribute), else :data:`GENERIC_DEFAULTS`."""
    defaults = getattr(model, "training_defaults", None)
    return defaults if isinstance(defaults, TrainingDefaults) else GENERIC_DEFAULTS


def logits_to_probs(logits: torch.Tensor) -> torch.Tensor:
    """Per-pixel class probabilities from logits: ``(N, K, H, W) -> (N, max(K, 2), H, W)``.

    Softmax over the classes. A binary model (``K = 1``, one logit per pixel) gets ``[1 - sigmoid, sigmoid]``: the
    probability of class 0 and of class 1.
    """
    if logits.shape[1] > 1:
        return logits.softmax(1)
    foreground = logits.sigmoid()
    return torch.cat([1 - foreground, foreground], dim=1)


def logits_to_preds(logits: torch.Tensor) -> torch.Tensor:
    """Predicted class per pixel: ``(N, K, H, W) -> (N, H, W)`` int64 (binary model: 1 where the logit > 0).

    The argmax of :func:`logits_to_probs`, computed without the softmax.
    """
    if logits.shape[1] > 1:
        return logits.argmax(1)
    return (logits[:, 0] > 0).long()


def check_channels(in_channels: int, num_classes: int) -> None:
    """Raise ``ValueError`` unless ``in_channels`` and ``num_classes`` are positive integers."""
    for name, value in (("in_channels", in_channels), ("num_classes", num_classes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def check_images(images: torch.Tensor, in_channels: int) -> None:
    """Raise a clear error unless ``images`` is a float ``(N, in_channels, H, W)`` tensor with H, W >= 32."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor of shape (N, {in_channels}, H, W), got {type(images).__name__}")
    if images.ndim != 4:
        hint = "; add the batch dimension with images.unsqueeze(0)" if images.ndim == 3 else ""
        raise ValueError(f"images must have shape (N, {in_channels}, H, W), got {tuple(images.shape)}{hint}")
    if not images.is_floating_point():
        raise TypeError(f"images must be floating point, got {images.dtype}; convert with images.float() / 255")
    if images.shape[1] != in_channels:
        raise ValueError(
            f"this model was built for in_channels={in_channels}, got images with {images.shape[1]} channels "
            f"(shape {tuple(images.shape)}); build it with create_model(..., in_channels={images.shape[1]})"
        )
    height, width = images.shape[-2:]
    if height < MIN_SIZE or width < MIN_SIZE:
        raise ValueError(
            f"images are {height}x{width} pixels, but the models need H and W >= {MIN_SIZE}; "
            f"pad or resize them to at least {MIN_SIZE}x{MIN_SIZE}"
        )
