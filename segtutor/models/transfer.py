"""Transfer learning: start a network from an encoder pretrained on many tiles, not from random weights.

The networks of the papers, and those of Visiopharm, QuPath extensions or ilastik's neural-network workflows, do
not start from random numbers: their encoder (the half that turns an image into features) was first trained on
a large data set, and only then is the whole network fine-tuned on the few annotated images of the new task
(Yosinski et al. 2014, "How transferable are features in deep neural networks?").

segtutor ships one such encoder per small architecture, in this package's ``pretrained/`` folder: ``<name>_small.pt``
holds the encoder's weights (float16, a state dict) and ``<name>_small.json`` records how they were made (the
recipe and seed of :func:`segtutor.train.pretrain.pretrain_encoder`, the torch version, the time it took,
the scores it reached, the licence) and the input it expects. Nothing is ever downloaded.

- :func:`load_pretrained_encoder` (or ``create_model(name, pretrained=True)``): copy the encoder's weights into a
  model; the decoder and classifier keep their fresh weights, so any ``num_classes`` works.
- :func:`freeze_encoder`: keep the encoder's weights as they are while the rest learns.
- :func:`check_input_statistics`: the training loop calls it on the first batch; images on another scale than
  the pretraining tiles (0–255 instead of 0–1, or standardised) are an error, colours far from theirs a warning.

Example:
    >>> model = create_model("unet", num_classes=4, pretrained=True)
    >>> model.pretraining.mean  # per-channel mean of the tiles it was pretrained on, images in [0, 1]
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

PRETRAINED_DIR = Path(__file__).parent / "pretrained"

# Which parameters make up each architecture's encoder: names in its state dict start with one of these.
ENCODERS: dict[str, tuple[str, ...]] = {
    "unet": ("encoder.",),  # the five DoubleConv levels of the contracting path
    "fcn8s": ("block1.", "block2.", "block3.", "block4.", "block5."),  # the VGG convolutions (fc6, fc7 start fresh)
    "deeplabv3": ("backbone.",),  # the ResNet
}
ARCHITECTURES: dict[str, str] = {"UNet": "unet", "FCN8s": "fcn8s", "DeepLabV3": "deeplabv3"}  # class -> registry key

# How far a batch may stray from the pretraining tiles before fit warns: this many of their pixel standard
# deviations, in any channel's mean. Labs A, B, C and the real skin slide all lie within 1.
MAX_MEAN_DISTANCE = 2.0


@dataclass(frozen=True)
class Pretraining:
    """What a pretrained encoder was trained on, and the input it expects (read from its JSON record).

    Attributes:
        name: the architecture (``"unet"``, ``"fcn8s"``, ``"deeplabv3"``).
        size: its size (``"small"``).
        value_range: the range the pixels were in during pretraining, ``(0.0, 1.0)``.
        mean: per-channel (R, G, B) mean of the pretraining tiles' pixels, on that range.
        std: per-channel standard deviation of their pixels.
        record: the whole JSON record (recipe, seed, scores, licence, ...).
    """

    name: str
    size: str
    value_range: tuple[float, float]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    record: dict = field(repr=False, compare=False)

    @property
    def weights_file(self) -> Path:
        return PRETRAINED_DIR / self.record["weights"]


def list_pretrained() -> list[tuple[str, str]]:
    """``(name, size)`` of every pretrained encoder that ships with segtutor, e.g. ``[("unet", "small"), ...]``."""
    found = []
    for path in sorted(PRETRAINED_DIR.glob("*.json")):
        record = json.loads(path.read_text())
        found.append((record["model"], record["size"]))
    return found


def pretraining_record(name: str, size: str = "small") -> Pretraining:
    """The :class:`Pretraining` record of the encoder of ``name`` at ``size``.

    Raises:
        ValueError: no pretrained encoder ships for that architecture and size (the message lists those that do).
    """
    path = PRETRAINED_DIR / f"{name}_{size}.json"
    if not path.is_file():
        available = ", ".join(f"{n!r} size {s!r}" for n, s in list_pretrained()) or "none"
        raise ValueError(
            f"no pretrained encoder for {name!r} size {size!r}; segtutor ships: {available}. Train from scratch "
            "(pretrained=False), or make one with benchmarks/pretrain.py"
        )
    record = json.loads(path.read_text())
    expected = record["input"]
    return Pretraining(
        name=record["model"],
        size=record["size"],
        value_range=tuple(expected["value_range"]),
        mean=tuple(expected["mean"]),
        std=tuple(expected["std"]),
        record=record,
    )


def encoder_state(model: nn.Module, name: str) -> dict[str, torch.Tensor]:
    """The encoder's part of ``model.state_dict()`` (weights and batch-norm statistics), by :data:`ENCODERS`."""
    return {key: value for key, value in model.state_dict().items() if key.startswith(ENCODERS[name])}


def load_pretrained_encoder(model: nn.Module, size: str = "small") -> nn.Module:
    """Copy the shipped pretrained encoder into ``model`` (in place) and record what it expects.

    Only the encoder is loaded; the decoder and classifier keep the weights they have, so ``model`` may score
    any number of classes. ``model.pretraining`` then holds the :class:`Pretraining` record, which the training
    loop reads to check the input (:func:`check_input_statistics`).

    Args:
        model: a :class:`~segtutor.models.UNet`, :class:`~segtutor.models.FCN8s` or
            :class:`~segtutor.models.DeepLabV3` of the size the encoder was trained at, with 3 input channels.
        size: the size it was built at (``"small"``).

    Returns:
        ``model``, for chaining.

    Example:
        >>> model = load_pretrained_encoder(create_model("deeplabv3", num_classes=4))
    """
    name = ARCHITECTURES.get(type(model).__name__)
    if name is None:
        raise TypeError(f"pretrained encoders exist for {', '.join(ARCHITECTURES)}, not for {type(model).__name__}")
    record = pretraining_record(name, size)
    # 1) The file is the one the record describes (a changed or truncated file would load nonsense).
    content = record.weights_file.read_bytes()
    if hashlib.sha256(content).hexdigest() != record.record["sha256"]:
        raise ValueError(f"{record.weights_file} does not match its record's sha256: reinstall segtutor")
    state = torch.load(record.weights_file, map_location="cpu", weights_only=True)
    # 2) The model's encoder has the same layers and shapes as the pretrained one.
    own = encoder_state(model, name)
    mismatched = [key for key in own if key not in state or state[key].shape != own[key].shape]
    if mismatched or set(state) != set(own):
        raise ValueError(
            f"this {type(model).__name__} does not have the encoder of the pretrained {name!r} size {size!r} "
            f"(first difference: {(mismatched or sorted(set(state) ^ set(own)))[0]!r}); build it with "
            f'create_model("{name}", size="{size}", in_channels=3, pretrained=True)'
        )
    # 3) Copy, in the model's own dtype and device (the file stores float16).
    with torch.no_grad():
        for key, value in own.items():
            value.copy_(state[key].to(value.dtype))
    model.pretraining = record
    return model


def freeze_encoder(model: nn.Module, frozen: bool = True) -> nn.Module:
    """Stop (or, with ``frozen=False``, restart) the encoder's weights from learning; returns ``model``.

    Frozen weights get no gradient, so the optimizer leaves them as they are and each step costs less (no
    weight gradients for the encoder). Batch norm still normalises with each batch's statistics in training and
    keeps tracking them, so the encoder's statistics follow the new data.

    Example:
        >>> model = freeze_encoder(create_model("unet", num_classes=4, pretrained=True))
        >>> sum(p.numel() for p in model.parameters() if p.requires_grad)  # only the decoder learns
    """
    name = ARCHITECTURES.get(type(model).__name__)
    if name is None:
        raise TypeError(f"encoders are known for {', '.join(ARCHITECTURES)}, not for {type(model).__name__}")
    for key, parameter in model.named_parameters():
        if key.startswith(ENCODERS[name]):
            parameter.requires_grad_(not frozen)
    return model


def check_input_statistics(model: nn.Module, images: torch.Tensor) -> None:
    """Check that ``images`` look like the tiles ``model``'s encoder was pretrained on (nothing to check without).

    1. Their scale: pretraining saw values in [0, 1]. A batch with values far below 0 (standardised images) or
       far above 1 (0–255 images) is a ValueError that says how to fix it.
    2. Their colour: a channel mean more than :data:`MAX_MEAN_DISTANCE` pixel standard deviations away from the
       pretraining mean is a warning: the encoder's features were learned on other colours.

    Args:
        model: a model, pretrained (with a ``pretraining`` record) or not.
        images: a batch ``(N, 3, H, W)`` float, as the model will see it.
    """
    record: Pretraining | None = getattr(model, "pretraining", None)
    if record is None:
        return
    low, high = record.value_range
    smallest, largest = float(images.min()), float(images.max())
    where = f"{record.name}'s pretrained encoder saw images in [{low:g}, {high:g}] (as segtutor's datasets give them)"
    if smallest < low - 0.5 * (high - low):
        raise ValueError(
            f"{where}, but this batch holds values down to {smallest:.4g}: it looks standardised (mean 0, std 1, "
            "as torchvision's ImageNet models expect). Leave the images in [0, 1], without mean/std normalisation"
        )
    if largest > high + 0.5 * (high - low):
        raise ValueError(
            f"{where}, but this batch holds values up to {largest:.4g}: it looks like 0–255 pixels. Divide the "
            "images by 255 (segtutor.data.to_tensors does), or train from scratch (pretrained=False)"
        )
    mean = images.detach().float().mean(dim=(0, 2, 3)).cpu()  # (3,)
    expected, spread = torch.tensor(record.mean), torch.tensor(record.std)
    distance = ((mean - expected).abs() / spread).max().item()
    if distance > MAX_MEAN_DISTANCE:
        channel = "RGB"[int(((mean - expected).abs() / spread).argmax())]
        warnings.warn(
            f"the first batch's channel means {[round(v, 3) for v in mean.tolist()]} lie far from those of "
            f"{record.name}'s pretraining tiles {[round(v, 3) for v in record.mean]} ({distance:.1f} of their "
            f"standard deviations in {channel}): are these RGB H&E images in [0, 1]? The encoder's features were "
            "learned on other colours; stain-normalise the images to the generated tiles (MacenkoNormalizer), "
            "or fine-tune the whole network rather than freezing the encoder",
            UserWarning,
            stacklevel=2,
        )
