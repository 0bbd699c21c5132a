"""Backpropagation made visible: the loss of one pixel, and the gradient it sends back to every layer.

Training takes the mean loss over all pixels, so every weight's gradient mixes millions of contributions. Taking
the loss of a *single* pixel, ``−log p(true class)``, shows the chain rule at work on its own:

1. the gradient at the pixel's logits is ``p − 1`` for the true class and ``p`` for the others (notebook 08);
2. :meth:`torch.Tensor.backward` carries it back layer by layer, each layer multiplying by its own slope;
3. every weight that took part in computing that pixel gets a gradient, and so does every input pixel inside
   the pixel's receptive field; everything outside it gets exactly 0.

:func:`pixel_gradients` returns what arrives where: the size of the gradient at each layer's weights, and the
map of input pixels it reaches.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn



@dataclass(frozen=True)
class LayerGradient:
    """The gradient one pixel's loss sends to the weights of one layer."""

    name: str  # the layer's name in the model, e.g. "encoder.0.0"
    num_weights: int  # weights of the layer's kernel (its bias left out)
    rms: float  # root mean square of ∂loss/∂weight over those weights
    largest: float  # the largest |∂loss/∂weight|
    share_reached: float  # share of the weights whose gradient is not 0


@dataclass(frozen=True)
class PixelGradients:
    """What backpropagating the loss of one pixel gives (see :func:`pixel_gradients`)."""

    pixel: tuple[int, int]  # (row, col)
    true_class: int
    probabilities: np.ndarray  # (K,) softmax at the pixel
    loss: float  # −log p(true class)
    logit_gradient: np.ndarray  # (K,) ∂loss/∂logits at the pixel: p − 1 for the true class, p for the others
    layers: list[LayerGradient]  # every convolution, in forward order
    input_gradient: np.ndarray  # (H, W) |∂loss/∂image| summed over the channels: 0 outside the receptive field

    @property
    def reach(self) -> tuple[int, int]:
        """``(height, width)`` of the box of input pixels the gradient reaches (the receptive field on this tile)."""
        rows, cols = np.nonzero(self.input_gradient)
        return (int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)) if rows.size else (0, 0)


def pixel_gradients(
    model: nn.Module, image: torch.Tensor, mask: torch.Tensor | np.ndarray, pixel: tuple[int, int]
) -> PixelGradients:
    """Backpropagate the cross-entropy of one pixel through ``model`` and report the gradient at every layer.

    The model runs as in a training step (batch norm normalises with this image's own statistics; dropout is off,
    so that the answer does not change from call to call), in float64 on a copy, so ``model``, its running
    statistics and its gradients stay as they were.

    Args:
        model: a segmentation network, ``(N, C, H, W) -> (N, K, H, W)`` logits (two or more classes).
        image: ``(C, H, W)`` float, as a dataset returns it.
        mask: ``(H, W)`` class indices; only the true class at ``pixel`` is used.
        pixel: ``(row, col)`` of the pixel whose loss is backpropagated.

    Returns:
        A :class:`PixelGradients`.

    Example:
        >>> image, mask = TissueDataset(1, 64)[0]
        >>> result = pixel_gradients(create_model("unet", size="tiny"), image, mask, (32, 32))
        >>> [round(layer.rms, 5) for layer in result.layers][:3]
    """
    height, width = image.shape[-2:]
    row, col = (int(value) for value in pixel)
    if not (0 <= row < height and 0 <= col < width):
        raise ValueError(f"pixel {pixel} lies outside the {height} x {width} image; give (row, col) inside it")
    true_class = int(torch.as_tensor(mask)[row, col])
    duplicate = _float64_copy(model)
    x = image.detach().to(torch.float64)[None].requires_grad_(True)  # (1, C, H, W)
    logits = duplicate(x)  # (1, K, H, W)
    if logits.shape[1] < 2:
        raise ValueError("pixel_gradients needs a model with two or more output channels (softmax over classes)")
    logits.retain_grad()
    pixel_logits = logits[0, :, row, col]  # (K,)
    loss = F.cross_entropy(pixel_logits[None], torch.tensor([true_class]))  # −log p(true class)
    loss.backward()  # 2. the chain rule, from the loss back to every weight and every input pixel
    probabilities = pixel_logits.detach().softmax(0).numpy()
    layers = []
    for name, module in duplicate.named_modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d) and module.weight.requires_grad:
            grad = module.weight.grad if module.weight.grad is not None else torch.zeros_like(module.weight)
            layers.append(LayerGradient(name=name, num_weights=grad.numel(), rms=float(grad.pow(2).mean().sqrt()),
                                        largest=float(grad.abs().max()),
                                        share_reached=float((grad != 0).double().mean())))  # fmt: skip
    return PixelGradients(
        pixel=(row, col),
        true_class=true_class,
        probabilities=probabilities,
        loss=float(loss.detach()),
        logit_gradient=logits.grad[0, :, row, col].numpy(),  # 1. p − one-hot
        layers=layers,
        input_gradient=x.grad[0].abs().sum(0).numpy(),  # 3. (H, W)
    )


def _float64_copy(model: nn.Module) -> nn.Module:
    """A float64 copy of ``model`` on the CPU in training mode (dropout off), without gradients yet."""
    duplicate = copy.deepcopy(model).to(device="cpu", dtype=torch.float64).train()
    for module in duplicate.modules():
        if isinstance(module, nn.Dropout | nn.Dropout2d):
            module.eval()  # no random zeros: the same pixel gives the same gradients every time
    for parameter in duplicate.parameters():
        parameter.grad = None
    return duplicate
