"""segtutor: an interactive course on deep-learning semantic segmentation.

Every model maps ``images (N, C, H, W)`` to ``logits (N, num_classes, H, W)``; see :mod:`segtutor.models`.
Names are imported the first time they are used (:mod:`segtutor.lazy`): ``import segtutor`` costs no torch.
"""

from segtutor.lazy import lazy_exports

lazy_exports(__name__, {"segtutor.device": ["default_device"]})

__all__ = ["default_device"]
__version__ = "0.1.0"
