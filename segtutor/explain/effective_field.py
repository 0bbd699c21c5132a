"""Receptive fields measured with autograd: which pixels *can* change an output pixel, and how much they *do*.

* :func:`receptive_region` measures the region of :mod:`segtutor.explain.receptive_field` with autograd on
  :func:`structural_copy` of the model (all weights positive, so no influence cancels): the exact pixels, holes of
  atrous convolutions included. The tests check that its bounding box is the box computed there.
* :class:`EffectiveField` is the *effective* receptive field
  (Luo et al. 2016, https://arxiv.org/abs/1701.04128): how strongly each pixel actually influences the output, the
  gradient of the output pixel's logits with respect to the image; usually a blob much smaller than the region.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from segtutor.models import evaluating, input_channels


def structural_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in which every possible influence is a positive one.

    Convolution weights become ``1 / fan_in`` (each output is an average), biases 0, batch norm the identity,
    max pooling average pooling (same window, stride, padding). The copy is in eval mode, float64.
    """
    clone = copy.deepcopy(model).double().eval()
    for parent in clone.modules():
        for child_name, child in parent.named_children():
            if isinstance(child, nn.MaxPool2d):
                average = nn.AvgPool2d(child.kernel_size, child.stride, child.padding, child.ceil_mode)
                setattr(parent, child_name, average)
    with torch.no_grad():
        for module in clone.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                module.weight.fill_(1.0 / module.weight[0].numel())
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.reset_parameters()  # running mean 0, variance 1, weight 1, bias 0: the identity (up to eps)
    return clone


class EffectiveField:
    """The effective receptive field of every output pixel of one image: one forward pass, a backward per pixel.

    Args:
        model: the real model (trained or not); run in eval mode, its mode restored, its weights' gradients
            untouched.
        images: ``(1, C, H, W)`` float.

    Example:
        >>> field = EffectiveField(model, images)
        >>> field.at((48, 48)).shape      # (H, W): |d logits[0, :, 48, 48].sum() / d image|, summed over channels
    """

    def __init__(self, model: nn.Module, images: torch.Tensor) -> None:
        parameter = next(model.parameters())
        self.images = images.detach().to(parameter.device, dtype=parameter.dtype).requires_grad_(True)
        with evaluating(model):
            self.logits = model(self.images)  # (1, K, H, W), its graph kept for every later pixel
        self.size = tuple(self.logits.shape[-2:])

    def gradient(self, pixel: tuple[int, int]) -> torch.Tensor:
        """``d logits[0, :, row, col].sum() / d images[0]``: ``(C, H, W)``."""
        row, col = pixel
        if not (0 <= row < self.size[0] and 0 <= col < self.size[1]):
            raise ValueError(f"pixel {pixel} lies outside the {self.size[0]}×{self.size[1]} image")
        (gradient,) = torch.autograd.grad(self.logits[0, :, row, col].sum(), self.images, retain_graph=True)
        return gradient[0]

    def at(self, pixel: tuple[int, int]) -> np.ndarray:
        """How strongly each input pixel moves output pixel ``(row, col)``: ``(H, W)``, the gradient's magnitude
        summed over the channels."""
        return self.gradient(pixel).abs().sum(dim=0).cpu().numpy()


def receptive_region(model: nn.Module, input_size: int | tuple[int, int], pixel: tuple[int, int]) -> np.ndarray:
    """Exactly which input pixels can influence output pixel ``pixel = (row, col)``: a bool ``(H, W)`` mask.

    Measured with autograd on :func:`structural_copy` (all influences positive, so no gradient cancels).

    Raises:
        ValueError: if ``pixel`` lies outside the image.
    """
    height, width = (input_size, input_size) if isinstance(input_size, int) else input_size
    clone = structural_copy(model)
    images = torch.ones(1, input_channels(model), height, width, dtype=torch.float64)
    gradient = EffectiveField(clone, images).gradient(pixel)  # (C, H, W), every entry >= 0
    return (gradient.sum(dim=0) > 0).cpu().numpy()
