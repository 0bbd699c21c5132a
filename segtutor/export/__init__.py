"""Taking a trained model back into the pathologist's tools: ONNX, TorchScript and a BioImage Model Zoo package.

- :func:`to_onnx`: one ``.onnx`` file for any ONNX runtime (ilastik, deepImageJ, onnxruntime in Python, C++, Java).
- :func:`to_torchscript`: one ``.pt`` file that runs without Python (QuPath's Deep Java Library, libtorch).
- :func:`to_bioimageio`: a bioimage.io model package (spec 0.5): both weights, the axes, the pixel size, the
  input normalisation, tiling hints, a test image with its expected output, a cover and documentation. QuPath,
  ilastik, deepImageJ (Fiji) and ``bioimageio.core`` load it.
- :class:`Probabilities`: a model followed by softmax, for tools that read the outputs as class probabilities.

All exported files take images of any height and width >= 32 and any batch size. ONNX and bioimage.io need the
optional packages of the ``export`` extra (``pip install 'segtutor[export]'``; :func:`missing_packages` lists
those not installed); TorchScript needs only torch. The course runs without them.

Example:
    >>> to_onnx(model, "unet.onnx")
    >>> to_bioimageio(model, "tumor-vs-stroma", name="Tumor vs stroma UNet", class_names=["stroma", "tumor"])
"""

from segtutor.export.bioimageio import to_bioimageio
from segtutor.export.files import missing_packages
from segtutor.export.frozen import Probabilities
from segtutor.export.onnx import to_onnx
from segtutor.export.torchscript import to_torchscript

__all__ = ["Probabilities", "missing_packages", "to_bioimageio", "to_onnx", "to_torchscript"]
