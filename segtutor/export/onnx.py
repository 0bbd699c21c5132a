"""ONNX: the model as a graph of standard operators that any ONNX runtime can run, without PyTorch.

``torch.onnx.export`` (the ``torch.export``-based exporter, PyTorch's default since 2.9) runs the model once on
example images and records every operation. Height, width and batch are recorded as *symbols*, not as the
example's numbers, so the file takes any image of at least 32×32 pixels, odd sizes included: UNet's crops to
the skip's size, FCN-8s's crops and DeepLabv3's resize back to the input size are all computed from the
input's actual shape when the graph runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from segtutor.export.files import check_target, replacing, require
from segtutor.export.frozen import Probabilities, example_images, frozen_copy
from segtutor.models.contract import MIN_SIZE

DEFAULT_OPSET = 18  # the oldest opset torch's exporter writes natively; onnxruntime >= 1.14 (2023) runs it


def to_onnx(model: nn.Module, path: str | os.PathLike, *, opset: int | None = None) -> Path:
    """Write ``model`` to an ONNX file that takes images of any height and width >= 32 and any batch size.

    The file maps ``images (N, C, H, W)`` float32 to the model's output ``(N, K, H, W)``: ``logits`` for a
    segtutor model, ``probs`` for one wrapped in :class:`~segtutor.export.Probabilities`. The model is exported
    from a copy in eval mode on the CPU; ``model`` itself is not changed. An existing file at ``path`` is
    replaced only once the new one is complete.

    Args:
        model: e.g. a trained ``create_model("unet")``.
        path: the ``.onnx`` file to write.
        opset: ONNX operator set version; default 18, which onnxruntime 1.14 and newer run.

    Returns:
        ``path`` as a ``Path``.

    Example:
        >>> to_onnx(model, "unet.onnx")
        >>> session = onnxruntime.InferenceSession("unet.onnx")
        >>> logits = session.run(None, {"images": images.numpy()})[0]     # (N, K, H, W)
    """
    require("onnxscript", "to_onnx")  # torch's exporter writes the graph with onnxscript
    ir = require("onnx_ir", "to_onnx")
    path = check_target(path, (".onnx",))
    opset = DEFAULT_OPSET if opset is None else opset
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < DEFAULT_OPSET:
        raise ValueError(f"opset must be an integer >= {DEFAULT_OPSET} (torch.onnx's oldest), got {opset!r}")
    frozen = frozen_copy(model)
    images = example_images(frozen)  # (2, C, 64, 64): the sizes are only examples
    output_name = "probs" if isinstance(frozen, Probabilities) else "logits"

    # 1) record the graph with symbolic batch, height and width
    batch = torch.export.Dim("batch")
    height, width = torch.export.Dim("height", min=MIN_SIZE), torch.export.Dim("width", min=MIN_SIZE)
    with _quiet_exporter():
        program = torch.onnx.export(
            frozen,
            (images,),
            dynamo=True,
            input_names=["images"],
            output_names=[output_name],
            dynamic_shapes=({0: batch, 2: height, 3: width},),
            opset_version=opset,
            verbose=False,
        )

    # 2) name the output's axes like the input's: the exporter cannot prove that FCN-8s's cropped output is
    #    exactly H x W, and would otherwise call its height "Min(height, 8*Min(...))"
    output = program.model.graph.outputs[0]
    output.shape = ir.Shape(["batch", output.shape[1], "height", "width"])

    # 3) one self-contained file (weights inside), checked, then moved into place
    onnx = require("onnx", "to_onnx")
    with replacing(path) as temporary:
        program.save(temporary, external_data=False)
        onnx.checker.check_model(os.fspath(temporary))
    return path


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's notes that say nothing about this model (torchvision ops it skips, and a
    deprecation inside torch itself)."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*LeafSpec.*", category=FutureWarning)
            yield
    finally:
        registration.setLevel(level)
