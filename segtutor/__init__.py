"""segtutor: an interactive course on deep-learning semantic segmentation.

Every model maps ``images (N, C, H, W)`` to ``logits (N, num_classes, H, W)``; see :mod:`segtutor.models`.
"""

from segtutor.device import default_device

__all__ = ["default_device"]
__version__ = "0.1.0"
