"""A BioImage Model Zoo package (bioimage.io model spec 0.5): a trained model other tools can load and check.

The package is a folder (or a ``.zip`` of it) holding ``rdf.yaml``, which says everything a tool needs to run
the model the way it was trained, and the files it names::

    rdf.yaml                  name, authors, licence, citation; inputs, outputs, weights (below)
    weights_torchscript.pt    TorchScript: QuPath (through the Deep Java Library), deepImageJ, ilastik
    weights.onnx              ONNX: deepImageJ, ilastik, any ONNX runtime
    test_input.npy            a test image as a tool passes it in: (1, C, H, W) float32, values 0-255
    test_output.npy           what the model must answer: (1, K, H, W) float32 class probabilities
    sample_input.tif          the same image and answer as TIFFs, for people to look at
    sample_output.tif
    cover.png                 the test image beside its predicted classes, for the zoo's gallery
    README.md                 documentation: what the model does and how to use it

What the fields say, and why:

- **axes** ``(batch, channel, y, x)``: the order of torch's ``(N, C, H, W)``.
- **size**: the network takes any height and width from 32 pixels up, odd sizes included (every model crops or
  resizes back to the input size). The package asks for tiles of at least ``32 + 2 * halo`` pixels, so that 32
  are left after a tool crops the halo from both sides (``ParameterizedSize(min=32 + 2 * halo, step=1)``).
  The output has the input's size (``SizeReference``).
- **pixel size** (``scale`` in micrometres on ``y`` and ``x``): a model trained at 0.5 µm/px has learned what
  tissue looks like at that scale; QuPath uses it to choose the resolution to run at. Unknown unless given.
- **preprocessing**: segtutor models take images in [0, 1] and tools pass 8-bit pixel values 0-255, so the
  package asks for ``scale_linear`` with ``gain = 1/255``: a fixed normalisation that QuPath, ilastik,
  deepImageJ and bioimageio.core all apply. (``scale_range`` would rescale every tile by its own percentiles,
  stretching a pale tile to look like a dark one.)
- **output**: softmax probabilities, one channel per class, named by ``class_names``. QuPath's pixel
  classifier reads the output channels as probabilities and applies no softmax itself; ilastik and deepImageJ
  show the channels as they come. So the softmax is part of the exported graph
  (:class:`~segtutor.export.Probabilities`) and every tool gets values in [0, 1].
- **halo**: tools predict a whole slide tile by tile and crop ``halo`` pixels from each side of every output
  tile, where the network saw zero padding instead of tissue. The default 16 matches the 32-pixel overlap of
  :func:`segtutor.predict.sliding_window_proba`; the receptive fields are larger (see
  :mod:`segtutor.explain.receptive_field`), so a larger halo brings tiles closer to a whole-image prediction.
"""

from __future__ import annotations

import os
import shutil
import string
import tempfile
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import tifffile
import torch
from PIL import Image
from torch import nn

import segtutor
from segtutor.data import class_colors, generate_tile
from segtutor.export.files import replacing, require
from segtutor.export.frozen import Probabilities, frozen_copy
from segtutor.export.onnx import DEFAULT_OPSET, to_onnx
from segtutor.export.torchscript import to_torchscript
from segtutor.models import DeepLabV3, FCN8s, UNet
from segtutor.models.contract import MIN_SIZE
from segtutor.predict import ImageLike, image_to_tensor, overlay

# The paper behind each architecture: (reference, DOI).
CITATIONS: dict[type, tuple[str, str]] = {
    UNet: (
        "Ronneberger O., Fischer P., Brox T. U-Net: Convolutional Networks for Biomedical Image Segmentation. "
        "MICCAI 2015.",
        "10.1007/978-3-319-24574-4_28",
    ),
    FCN8s: (
        "Long J., Shelhamer E., Darrell T. Fully Convolutional Networks for Semantic Segmentation. CVPR 2015.",
        "10.1109/CVPR.2015.7298965",
    ),
    DeepLabV3: (
        "Chen L.-C., Papandreou G., Schroff F., Adam H. Rethinking Atrous Convolution for Semantic Image "
        "Segmentation. arXiv:1706.05587, 2017.",
        "10.48550/arXiv.1706.05587",
    ),
}
RDF_NAME = "rdf.yaml"  # the file QuPath asks for, inside the package folder
NAME_CHARACTERS = set(string.ascii_letters + string.digits + "_+- ()")  # what the spec allows in a model's name


@dataclass(frozen=True)
class ModelCard:
    """What the package says about the model, beside its weights (a "model card", Mitchell et al. 2019)."""

    name: str  # e.g. "Tumor vs stroma UNet"
    description: str  # one sentence
    architecture: str  # the model's class, e.g. "UNet"
    class_names: list[str]  # one per output channel, in label order
    in_channels: int  # 3 for RGB
    pixel_size_um: float | None  # micrometres per pixel, if known
    halo: int  # pixels to crop from each side of an output tile
    authors: list[str]
    license: str  # SPDX identifier
    tags: list[str]
    citation: tuple[str, str] | None  # (reference, DOI) of the architecture's paper


def to_bioimageio(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    name: str,
    class_names: Sequence[str],
    pixel_size_um: float | None = None,
    test_image: ImageLike | None = None,
    authors: Sequence[str] = ("segtutor learner",),
    description: str | None = None,
    license: str = "CC-BY-4.0",
    halo: int = 16,
    tags: Sequence[str] = (),
    overwrite: bool = False,
    check: bool = True,
) -> Path:
    """Write ``model`` as a bioimage.io model package that QuPath, ilastik, deepImageJ and Fiji can load.

    The package holds TorchScript and ONNX weights that map images to per-pixel class probabilities, the
    preprocessing that scales 8-bit pixels by 1/255, a test image with the model's own answer, a cover and a
    README; this module's documentation says what each field means. With ``check=True`` bioimageio.core first
    runs both weight formats on the test image (offline), and the package is written only if they pass.

    Args:
        model: a trained segmentation model, e.g. ``create_model("unet")`` after ``fit``.
        path: a folder to create (QuPath opens the ``rdf.yaml`` inside), or a ``.zip`` file (ilastik,
            deepImageJ and the bioimage.io upload take zips).
        name: a human-readable name, e.g. ``"Tumor vs stroma UNet"``.
        class_names: one name per output channel, in label order, e.g. ``["stroma", "tumor"]``.
        pixel_size_um: the training images' pixel size in micrometres per pixel, if known.
        test_image: an image like the training images (uint8 ``(H, W, 3)`` array, PIL image, or float tensor
            ``(C, H, W)`` in [0, 1]), at least 32x32; default: a generated 128x128 H&E-like tile.
        authors: the names of the people who trained the model.
        description: one sentence on what the model does; default: built from the architecture and classes.
        license: SPDX licence identifier for the weights, e.g. ``"CC-BY-4.0"`` or ``"MIT"``.
        halo: pixels tools should crop from each side of an output tile (0: none).
        tags: extra keywords for the zoo's search, e.g. ``["skin"]``.
        overwrite: replace an existing package at ``path``.
        check: test the package with bioimageio.core before writing it.

    Returns:
        ``path`` as a ``Path``.

    Example:
        >>> to_bioimageio(model, "tumor-vs-stroma", name="Tumor vs stroma UNet", class_names=["stroma", "tumor"],
        ...               pixel_size_um=0.5, authors=["Ada Lovelace"])
        >>> # QuPath: Extensions > Bioimage Model Zoo > Create pixel classifier, then tumor-vs-stroma/rdf.yaml
    """
    spec = require("bioimageio.spec", "to_bioimageio")
    core = require("bioimageio.core", "to_bioimageio(check=True)") if check else None
    path = _check_package_path(path, overwrite)
    if isinstance(model, Probabilities):
        raise TypeError("pass the model itself, not Probabilities(model): to_bioimageio adds the softmax")
    probabilities = Probabilities(frozen_copy(model))  # images (N, C, H, W) -> probs (N, K, H, W)
    card = _model_card(
        model, probabilities, name=name, class_names=class_names, pixel_size_um=pixel_size_um, halo=halo,
        authors=authors, description=description, license=license, tags=tags,
    )  # fmt: skip
    pixels = _test_pixels(test_image, card.in_channels)  # (C, H, W) float32 in [0, 1]

    with tempfile.TemporaryDirectory(prefix="segtutor-bioimageio-") as folder:
        staging = Path(folder)
        # 1) the weights, both formats from the same frozen model
        to_torchscript(probabilities, staging / "weights_torchscript.pt")
        to_onnx(probabilities, staging / "weights.onnx")

        # 2) the test image as tools pass it in (8-bit values 0-255), and the model's answer after the package's
        #    preprocessing
        test_input = (pixels * 255).round().unsqueeze(0)  # (1, C, H, W) float32
        with torch.no_grad():
            test_output = probabilities(test_input * (1 / 255))  # (1, K, H, W): scale_linear, then the model
        np.save(staging / "test_input.npy", test_input.numpy())
        np.save(staging / "test_output.npy", test_output.numpy())
        sample_input = test_input.to(torch.uint8).numpy()  # (1, C, H, W) uint8
        tifffile.imwrite(staging / "sample_input.tif", sample_input, photometric="minisblack")
        tifffile.imwrite(staging / "sample_output.tif", test_output.numpy(), photometric="minisblack")
        _write_cover(staging / "cover.png", pixels, test_output[0].argmax(0), card.class_names)

        # 3) the documentation and the description that names every file
        (staging / "README.md").write_text(_documentation(card), encoding="utf-8")
        try:
            descr = _describe(spec.model.v0_5, staging, card)
        except ValueError as error:  # pydantic's ValidationError, listing each field the spec rejects
            raise ValueError(f"the bioimage.io model spec rejects this package:\n{error}") from error

        # 4) package, test, and only then put it at path
        _write_package(spec, core, descr, path)
    return path


def _model_card(
    model: nn.Module,
    probabilities: Probabilities,
    *,
    name: str,
    class_names: Sequence[str],
    pixel_size_um: float | None,
    halo: int,
    authors: Sequence[str],
    description: str | None,
    license: str,
    tags: Sequence[str],
) -> ModelCard:
    """Check the arguments of :func:`to_bioimageio` and gather them into a :class:`ModelCard`."""
    if not isinstance(name, str) or not 5 <= len(name) <= 128 or set(name) - NAME_CHARACTERS:
        raise ValueError(
            f"name must be 5 to 128 letters, digits, spaces or _+-() (the bioimage.io rule), e.g. "
            f"'Tumor vs stroma UNet', got {name!r}"
        )
    if isinstance(class_names, str) or not all(isinstance(c, str) and c.strip() for c in class_names):
        raise TypeError(
            f"class_names must be a list of non-empty strings, e.g. ['stroma', 'tumor'], got {class_names!r}"
        )
    if len(class_names) != probabilities.num_classes:
        raise ValueError(
            f"the model has {probabilities.num_classes} output classes but {len(class_names)} class_names were "
            f"given ({list(class_names)}); give one name per class, in label order"
        )
    if len(set(class_names)) != len(class_names):
        raise ValueError(f"class_names must differ from each other, got {list(class_names)}")
    if pixel_size_um is not None and (isinstance(pixel_size_um, bool) or not pixel_size_um > 0):
        raise ValueError(
            f"pixel_size_um must be a positive number (micrometres per pixel, e.g. 0.5) or None, got {pixel_size_um!r}"
        )
    if isinstance(halo, bool) or not isinstance(halo, int) or halo < 0:
        raise ValueError(f"halo must be an integer >= 0 (pixels to crop from each side of a tile), got {halo!r}")
    if isinstance(authors, str) or not authors or not all(isinstance(a, str) and a.strip() for a in authors):
        raise TypeError(f"authors must be a list of names, e.g. ['Ada Lovelace'], got {authors!r}")
    architecture = type(model).__name__
    classes = list(class_names)
    listed = " or ".join([", ".join(classes[:-1]), classes[-1]]) if len(classes) > 1 else classes[0]
    return ModelCard(
        name=name,
        description=description or f"A {architecture} that labels each pixel as {listed}, trained with segtutor.",
        architecture=architecture,
        class_names=classes,
        in_channels=probabilities.in_channels,
        pixel_size_um=None if pixel_size_um is None else float(pixel_size_um),
        halo=halo,
        authors=list(authors),
        license=license,
        tags=["segmentation", "semantic-segmentation", "2d", "pytorch", "segtutor", architecture.lower(), *tags],
        citation=CITATIONS.get(type(model)),
    )


def _check_package_path(path: str | os.PathLike, overwrite: bool) -> Path:
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"the folder {path.parent} does not exist; create it first (path.parent.mkdir())")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it, or choose a new path")
    if path.suffix.lower() == ".zip" and path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; a .zip package cannot replace it: choose another path")
    if path.suffix.lower() != ".zip" and path.is_file():
        raise FileExistsError(f"{path} is a file; a package folder cannot replace it: choose another path")
    if path.is_dir() and any(path.iterdir()) and not (path / RDF_NAME).is_file():
        raise FileExistsError(
            f"{path} is a folder with files but no {RDF_NAME}, so not a bioimage.io package; it is left alone: "
            "choose another path"
        )
    return path


def _test_pixels(test_image: ImageLike | None, in_channels: int) -> torch.Tensor:
    """The test image as ``(C, H, W)`` float32 in [0, 1]."""
    if test_image is None:
        if in_channels not in (1, 3):
            raise ValueError(f"this model takes {in_channels} channels: pass a test_image with {in_channels}")
        image, _ = generate_tile(128, seed=0)  # (128, 128, 3) uint8
        test_image = image if in_channels == 3 else image.mean(axis=2).round().astype(np.uint8)
    pixels = image_to_tensor(test_image).float()  # (C, H, W) in [0, 1]
    if pixels.shape[0] != in_channels:
        raise ValueError(f"test_image has {pixels.shape[0]} channels but the model takes {in_channels}")
    if min(pixels.shape[1:]) < MIN_SIZE:
        raise ValueError(
            f"test_image is {tuple(pixels.shape[1:])} pixels; the models need at least {MIN_SIZE}x{MIN_SIZE}"
        )
    return pixels


def _write_cover(path: Path, pixels: torch.Tensor, labels: torch.Tensor, class_names: list[str]) -> None:
    """The test image beside its predicted classes: 2:1, as the zoo's gallery shows covers."""
    image = (pixels * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()  # (H, W, C)
    image = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[:, :, :3]  # (H, W, 3)
    tinted = overlay(image, labels, class_colors(class_names), alpha=0.6)  # (H, W, 3)
    cover = Image.fromarray(np.concatenate([image, tinted], axis=1))  # (H, 2W, 3)
    zoom = max(1, 256 // cover.height)
    cover.resize((cover.width * zoom, cover.height * zoom), Image.Resampling.NEAREST).save(path)


def _describe(spec: ModuleType, staging: Path, card: ModelCard):
    """The ``ModelDescr`` (``spec`` is ``bioimageio.spec.model.v0_5``) that the package's rdf.yaml will hold."""
    unit, scale = ("micrometer", card.pixel_size_um) if card.pixel_size_um is not None else (None, 1.0)
    images, probs = spec.TensorId("images"), spec.TensorId("probs")
    channel_names = {1: ["gray"], 3: ["red", "green", "blue"]}.get(card.in_channels)
    smallest = spec.ParameterizedSize(min=MIN_SIZE + 2 * card.halo, step=1)  # 32 pixels left after the halo
    space_in = [spec.SpaceInputAxis(id=spec.AxisId(a), size=smallest, unit=unit, scale=scale) for a in "yx"]
    space_out = []  # the input's size, with a halo to crop if there is one
    for a in "yx":
        axis = {"id": spec.AxisId(a), "size": spec.SizeReference(tensor_id=images, axis_id=spec.AxisId(a))}
        if card.halo:
            space_out.append(spec.SpaceOutputAxisWithHalo(**axis, halo=card.halo, unit=unit, scale=scale))
        else:
            space_out.append(spec.SpaceOutputAxis(**axis, unit=unit, scale=scale))
    inputs = spec.InputTensorDescr(
        id=images,
        description="image, 8-bit pixel values 0-255 (as float32)",
        axes=[
            spec.BatchAxis(),
            spec.ChannelAxis(channel_names=channel_names or [f"c{i}" for i in range(card.in_channels)]),
            *space_in,
        ],
        test_tensor=spec.FileDescr(source=staging / "test_input.npy"),
        sample_tensor=spec.FileDescr(source=staging / "sample_input.tif"),
        data=spec.IntervalOrRatioDataDescr(type="float32", range=(0.0, 255.0)),
        preprocessing=[spec.ScaleLinearDescr(kwargs=spec.ScaleLinearKwargs(gain=1 / 255))],
    )
    outputs = spec.OutputTensorDescr(
        id=probs,
        description="softmax class probabilities per pixel, one channel per class",
        axes=[spec.BatchAxis(), spec.ChannelAxis(channel_names=card.class_names), *space_out],
        test_tensor=spec.FileDescr(source=staging / "test_output.npy"),
        sample_tensor=spec.FileDescr(source=staging / "sample_output.tif"),
        data=spec.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0)),
    )
    weights = spec.WeightsDescr(
        torchscript=spec.TorchscriptWeightsDescr(
            source=staging / "weights_torchscript.pt",
            pytorch_version=spec.Version(torch.__version__),
            comment="traced by segtutor.export.to_torchscript; ends in softmax",
        ),
        onnx=spec.OnnxWeightsDescr(
            source=staging / "weights.onnx",
            opset_version=DEFAULT_OPSET,
            parent="torchscript",
            comment="the same PyTorch model, exported by segtutor.export.to_onnx (torch.onnx.export, dynamo)",
        ),
    )
    return spec.ModelDescr(
        name=card.name,
        description=card.description,
        authors=[spec.Author(name=a) for a in card.authors],
        cite=[spec.CiteEntry(text=card.citation[0], doi=spec.Doi(card.citation[1]))] if card.citation else [],
        license=spec.LicenseId(card.license),
        documentation=spec.FileDescr(source=staging / "README.md"),
        covers=[spec.FileDescr(source=staging / "cover.png")],
        tags=card.tags,
        inputs=[inputs],
        outputs=[outputs],
        weights=weights,
        config=spec.Config(segtutor={"version": segtutor.__version__, "architecture": card.architecture}),
    )


def _write_package(spec: ModuleType, core: ModuleType | None, descr, path: Path) -> None:
    """Write the package beside ``path``, test it with bioimageio.core, then move it to ``path``."""
    if path.suffix.lower() == ".zip":
        with replacing(path) as temporary:
            spec.save_bioimageio_package(descr, output_path=temporary)
            if core is not None:
                _run_test(core, temporary)
        return
    new = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        spec.save_bioimageio_package_as_folder(descr, output_path=new)
        if core is not None:
            _run_test(core, new / RDF_NAME)
        if path.exists():  # overwrite=True, and checked to be empty or a package (it holds rdf.yaml)
            old = new.with_name(new.name + ".old")
            path.rename(old)
            try:
                new.rename(path)
            except BaseException:
                old.rename(path)  # put the old package back
                raise
            shutil.rmtree(old)
        else:
            new.rename(path)
    finally:
        if new.exists():  # only if something failed before the rename
            shutil.rmtree(new)


def _run_test(core: ModuleType, source: Path) -> None:
    """bioimageio.core's own model test: both weight formats on the test image, and at other sizes."""
    summary = core.test_model(source)
    if summary.status != "passed":
        raise RuntimeError(f"bioimageio.core's test of the package failed, nothing was written:\n{summary.format()}")


def _documentation(card: ModelCard) -> str:
    """The package's README.md: what the model does, what goes in and out, how to open it in each tool."""
    pixel_size = (
        f"{card.pixel_size_um:g} µm per pixel: run it on images at this resolution (in QuPath, the downsample "
        "that gives it)"
        if card.pixel_size_um is not None
        else "not recorded: run it at the resolution of the images it was trained on"
    )
    halo = (
        f"{card.halo} pixels. A tool that predicts a large image tile by tile crops {card.halo} pixels from each "
        "side of every output tile, where the network saw padding instead of tissue, so tiles must be at least "
        f"{MIN_SIZE + 2 * card.halo} pixels across"
        if card.halo
        else f"none: tiles are used whole (at least {MIN_SIZE} pixels across)"
    )
    cite = f"{card.citation[0]} https://doi.org/{card.citation[1]}" if card.citation else card.architecture
    kind = {1: "A grey image (1 channel)", 3: "An RGB image (red, green, blue)"}.get(card.in_channels)
    template = textwrap.dedent(
        """\
        # {name}

        {description}

        A {architecture} built and trained with segtutor, an interactive course on deep-learning segmentation.
        Architecture: {cite}

        ## Input

        - {kind}, axes `(batch, channel, y, x)`, any height and width of at least {min_size} pixels.
        - Pixel values as stored in an 8-bit image, 0-255. The package's preprocessing (`scale_linear`,
          gain 1/255) divides them by 255, so the network sees values in [0, 1] as during training.
        - Pixel size: {pixel_size}.

        ## Output

        One channel per class; each pixel's values are probabilities that sum to 1 (the softmax is part of
        the exported network). The class of a pixel is the channel with the highest probability.

        | channel | class |
        |---|---|
        {channels}

        Halo: {halo}.

        ## Use it

        These tools read bioimage.io spec 0.5 packages in their recent versions (check yours):

        - **QuPath** (with its Bioimage Model Zoo and Deep Java Library extensions): *Extensions > Bioimage
          Model Zoo > Create pixel classifier*, choose `rdf.yaml` in the unzipped package folder, and give each
          output channel a QuPath class, in the order of the table above. QuPath runs the TorchScript weights.
        - **ilastik**: the Neural Network Classification workflow loads the package.
        - **deepImageJ** in Fiji: install the model from the package's zip, then run it on an open image.
        - **Python**: `bioimageio.core` runs either weight format (`bioimageio predict`).

        ## Validation

        `test_input.npy` is a test image as a tool passes it in (1, C, H, W, values 0-255) and
        `test_output.npy` the probabilities the model gave for it. `bioimageio test rdf.yaml` (bioimageio.core)
        runs both weight formats on it, compares with the expected output, and runs them at other sizes and
        batch sizes.

        ## Limitations

        A model is only as good as its training data: expect worse results on tissue, stains or scanners it
        has not seen (domain shift), and check its predictions against your own annotations before relying on
        them.
        """
    )
    return template.format(
        name=card.name,
        description=card.description,
        architecture=card.architecture,
        cite=cite,
        kind=kind or f"A {card.in_channels}-channel image",
        min_size=MIN_SIZE,
        pixel_size=pixel_size,
        channels="\n".join(f"| {i} | {c} |" for i, c in enumerate(card.class_names)),
        halo=halo,
    )
