"""What gets exported: a frozen copy of the model on the CPU, optionally ending in per-pixel probabilities.

Exporting records the forward pass of one model in evaluation mode (batch norm uses its running statistics,
dropout is off), so it works on a copy: the learner's model keeps its device and its train/eval mode.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from segtutor.predict import logits_to_probs


class Probabilities(nn.Module):
    """A segmentation model followed by softmax over the classes: ``images -> probs``.

    ``images (N, C, H, W) -> probs (N, K, H, W)``, each pixel's ``K`` values in [0, 1] summing to 1 (a binary
    model with one output channel gives ``K = 2``: ``[1 - sigmoid, sigmoid]``, as :func:`segtutor.predict.
    logits_to_probs`). QuPath's pixel classifier reads a model's output channels as class probabilities and
    applies no softmax itself, so a model exported for it ends in this one.

    Example:
        >>> probs = Probabilities(create_model("unet"))(torch.rand(1, 3, 64, 64))
        >>> probs.sum(1).allclose(torch.ones(1, 64, 64))
        True
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        num_classes = getattr(model, "num_classes", None)
        if not isinstance(num_classes, int):
            raise ValueError(
                f"cannot tell how many classes this {type(model).__name__} scores: give it a num_classes attribute "
                "(segtutor's models have one)"
            )
        self.in_channels = model_in_channels(model)
        self.num_classes = max(num_classes, 2)  # a binary model's one channel becomes two probabilities

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images (N, C, H, W) -> probs (N, K, H, W)``."""
        return logits_to_probs(self.model(images))  # (N, K, H, W)


def model_in_channels(model: nn.Module) -> int:
    """The input channels ``model`` expects: its ``in_channels`` attribute, else its first convolution's."""
    in_channels = getattr(model, "in_channels", None)
    if isinstance(in_channels, int):
        return in_channels
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    raise ValueError(f"cannot tell how many input channels this {type(model).__name__} takes: it has no Conv2d")


def frozen_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` on the CPU in eval mode, with gradients off; ``model`` itself is not changed."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, e.g. create_model('unet'), got {type(model).__name__}")
    frozen = copy.deepcopy(model).cpu().float().eval()
    for parameter in frozen.parameters():
        parameter.requires_grad_(False)
    return frozen


def example_images(model: nn.Module, height: int = 64, width: int = 64, batch_size: int = 2) -> torch.Tensor:
    """Random images ``(batch_size, C, height, width)`` in [0, 1] that ``model`` accepts, to record its graph.

    Two images, not one: ``torch.export`` treats a size of 1 as a constant, and the batch must stay free.
    """
    generator = torch.Generator().manual_seed(0)
    return torch.rand(batch_size, model_in_channels(model), height, width, generator=generator)
