"""Exports: ONNX and TorchScript against torch at other sizes than recorded, and the bioimage.io package.

The optional packages of ``segtutor[export]`` are skipped where absent (``pytest.importorskip``); TorchScript
needs only torch and always runs.
"""

from __future__ import annotations

import importlib
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cpu_and_cuda
from PIL import Image

from segtutor.export import Probabilities, missing_packages, to_bioimageio, to_onnx, to_torchscript
from segtutor.export.files import require
from segtutor.models import create_model, list_models

pytestmark = [
    pytest.mark.usefixtures("one_thread"),  # see tests/conftest.py
    pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning"),  # also in bioimageio.core
]

# (N, C, H, W) inputs: none of them the 64x64 the exports are recorded at, one of them odd
SIZES = [(2, 3, 96, 80), (1, 3, 65, 47)]


def tiny(name: str, num_classes: int = 2) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, num_classes=num_classes, size="tiny").eval()


def images(shape: tuple[int, ...], seed: int = 1) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


# ---- ONNX ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list_models())
def test_onnx_runs_in_onnxruntime_like_torch_at_any_size(name, tmp_path):
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    model = tiny(name)
    path = to_onnx(model, tmp_path / f"{name}.onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (given,), (answer,) = session.get_inputs(), session.get_outputs()
    assert (given.name, given.shape) == ("images", ["batch", 3, "height", "width"])
    assert (answer.name, answer.shape) == ("logits", ["batch", 2, "height", "width"])
    for shape in SIZES:
        x = images(shape)
        with torch.no_grad():
            expected = model(x).numpy()
        got = session.run(None, {"images": x.numpy()})[0]
        assert got.shape == expected.shape == (shape[0], 2, *shape[2:])
        difference = float(np.abs(got - expected).max())
        print(f"onnx {name} {shape}: max abs difference {difference:.2e}")
        assert difference <= 1e-4


@pytest.mark.parametrize("name", ["deeplabv3", "deeplabv3plus"])
def test_onnx_of_a_trained_deeplab_pools_over_the_training_window_at_any_size(name, tmp_path):
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    model = trained_on_48px_crops(name)
    session = ort.InferenceSession(str(to_onnx(model, tmp_path / f"{name}.onnx")), providers=["CPUExecutionProvider"])
    for shape in [*SIZES, (1, 3, 40, 33)]:
        x = images(shape)
        with torch.no_grad():
            expected = model(x).numpy()
        assert float(np.abs(session.run(None, {"images": x.numpy()})[0] - expected).max()) <= 1e-4, shape


def trained_on_48px_crops(name: str) -> torch.nn.Module:
    """A tiny DeepLab after one training step on 48-px crops: its image pooling's window is 6 x 6 (stride 8)."""
    model = tiny(name)
    model.train()(images((2, 3, 48, 48)))
    assert model.head.aspp.convs[-1].window.tolist() == [6, 6]
    return model.eval()


def test_onnx_rejects_a_wrong_suffix_and_a_missing_folder(tmp_path):
    pytest.importorskip("onnxscript")
    with pytest.raises(ValueError, match=r"should end in \.onnx"):
        to_onnx(tiny("unet"), tmp_path / "model.txt")
    with pytest.raises(FileNotFoundError, match="create it first"):
        to_onnx(tiny("unet"), tmp_path / "missing" / "model.onnx")
    with pytest.raises(ValueError, match="opset must be an integer >= 18"):
        to_onnx(tiny("unet"), tmp_path / "model.onnx", opset=11)


def test_a_missing_extra_names_the_package_and_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # makes `import onnxscript` raise ImportError
    with pytest.raises(ImportError, match=r"to_onnx needs the 'onnxscript' package.*segtutor\[export\]"):
        to_onnx(tiny("unet"), tmp_path / "model.onnx")
    with pytest.raises(ImportError, match=r"'bioimageio\.absent' package.*pip install bioimageio\.absent\)"):
        require("bioimageio.absent.model", "to_bioimageio")
    assert not list(tmp_path.iterdir())


def test_missing_packages_lists_what_cannot_be_imported(monkeypatch):
    extra = ["onnx", "onnxscript", "onnxruntime", "bioimageio.core"]  # pyproject's export extra
    importable = []
    for module in extra:
        try:
            importlib.import_module(module)
            importable.append(module)
        except ImportError:
            pass
    assert missing_packages() == [m for m in extra if m not in importable]
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as if it were not installed
    assert "onnxscript" in missing_packages()


# ---- TorchScript ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list_models())
def test_torchscript_matches_torch_at_other_sizes_than_traced(name, tmp_path):
    model = tiny(name)
    loaded = torch.jit.load(str(to_torchscript(model, tmp_path / f"{name}.pt")))
    for shape in SIZES:
        x = images(shape)
        with torch.no_grad():
            expected, got = model(x), loaded(x)
        assert got.shape == expected.shape == (shape[0], 2, *shape[2:])
        difference = float((got - expected).abs().max())
        print(f"torchscript {name} {shape}: max abs difference {difference:.2e}")
        assert difference <= 1e-4


@pytest.mark.parametrize("name", ["deeplabv3", "deeplabv3plus"])
def test_torchscript_of_a_trained_deeplab_pools_over_the_training_window_at_any_size(name, tmp_path):
    model = trained_on_48px_crops(name)
    loaded = torch.jit.load(str(to_torchscript(model, tmp_path / f"{name}.pt")))
    for shape in [*SIZES, (1, 3, 40, 33)]:  # larger maps than the window, and one smaller (averaged whole)
        x = images(shape)
        with torch.no_grad():
            assert float((loaded(x) - model(x)).abs().max()) <= 1e-4, shape


class SizeFromPython(torch.nn.Module):
    """Resizes to ``int(images.shape)``: Python numbers, which tracing fixes at the traced size."""

    in_channels, num_classes = 3, 2

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 2, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        size = (int(images.shape[2]), int(images.shape[3]))
        return torch.nn.functional.interpolate(self.conv(images)[..., ::2, ::2], size=size)


def test_a_trace_that_fixed_the_size_is_refused(tmp_path):
    with pytest.raises(RuntimeError, match="does not reproduce the model on a 65x47 input"):
        to_torchscript(SizeFromPython(), tmp_path / "model.pt")
    assert not list(tmp_path.iterdir())


def test_exporting_leaves_the_model_as_it_was(tmp_path):
    model = create_model("deeplabv3", size="tiny").train()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    to_torchscript(model, tmp_path / "model.pt")
    assert model.training
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())
    assert all(parameter.requires_grad for parameter in model.parameters())


@pytest.mark.parametrize("device", cpu_and_cuda())
def test_a_model_on_any_device_exports_a_cpu_program(device, tmp_path):
    model = tiny("fcn8s").to(device)
    loaded = torch.jit.load(str(to_torchscript(model, tmp_path / "model.pt")), map_location="cpu")
    x = images((1, 3, 64, 64))
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x.to(device)).cpu(), atol=1e-4, rtol=1e-4)
    assert next(model.parameters()).device.type == device


def test_a_failed_export_leaves_the_existing_file_intact(monkeypatch, tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"the earlier export")

    def broken_save(module, destination):
        Path(destination).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(torch.jit, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        to_torchscript(tiny("unet"), path)
    assert path.read_bytes() == b"the earlier export"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temporary file left behind


def test_probabilities_sum_to_one_and_a_binary_model_gets_two_channels():
    x = images((2, 3, 64, 64))
    for num_classes, channels in ((3, 3), (1, 2)):
        model = tiny("unet", num_classes=num_classes)
        probs = Probabilities(model)(x)
        assert probs.shape == (2, channels, 64, 64) and Probabilities(model).num_classes == channels
        torch.testing.assert_close(probs.sum(1), torch.ones(2, 64, 64))
    torch.testing.assert_close(Probabilities(tiny("unet", 3))(x), tiny("unet", 3)(x).softmax(1))


# ---- bioimage.io ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """A package of a tiny UNet, written without the built-in check (the test below runs it)."""
    pytest.importorskip("onnxscript")
    pytest.importorskip("bioimageio.spec")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("bioimageio") / "tumor-vs-stroma"
    to_bioimageio(
        tiny("unet"), path, name="Tumor vs stroma UNet", class_names=["stroma", "tumor"], pixel_size_um=0.5,
        authors=["Ada Lovelace"], check=False,
    )  # fmt: skip
    torch.set_num_threads(previous)
    return path


def test_the_package_passes_bioimageio_cores_own_test_offline(package):
    core = pytest.importorskip("bioimageio.core")
    summary = core.test_model(package / "rdf.yaml")
    tested = [detail.name for detail in summary.details]
    failed = [(detail.name, [e.msg for e in detail.errors]) for detail in summary.details if detail.status != "passed"]
    assert summary.status == "passed", failed
    for weights in ("onnx", "torchscript"):
        assert f"Reproduce test outputs from test inputs ({weights})" in tested
        assert f"Run {weights} inference for inputs with batch_size: 2 and size parameter n: 2" in tested


def test_the_package_says_what_tools_need(package):
    spec = pytest.importorskip("bioimageio.spec")
    descr = spec.load_description(package / "rdf.yaml")
    assert type(descr).__name__ == "ModelDescr", descr.validation_summary.format()
    (inputs,), (outputs,) = descr.inputs, descr.outputs
    assert [a.type for a in inputs.axes] == ["batch", "channel", "space", "space"]
    assert [str(a.id) for a in inputs.axes[2:]] == ["y", "x"]
    assert inputs.axes[1].channel_names == ["red", "green", "blue"]
    assert [(a.size.min, a.size.step, a.unit, a.scale) for a in inputs.axes[2:]] == [(64, 1, "micrometer", 0.5)] * 2
    scale_linear = [p for p in inputs.preprocessing if p.id == "scale_linear"]
    assert len(scale_linear) == 1 and scale_linear[0].kwargs.gain == pytest.approx(1 / 255)
    assert outputs.axes[1].channel_names == ["stroma", "tumor"]
    assert [(a.halo, str(a.size.tensor_id), a.scale) for a in outputs.axes[2:]] == [(16, "images", 0.5)] * 2
    assert descr.weights.torchscript is not None and descr.weights.onnx.opset_version == 18
    assert descr.cite[0].doi == "10.1007/978-3-319-24574-4_28" and str(descr.license) == "CC-BY-4.0"
    assert "## Validation" in (package / "README.md").read_text()


def test_the_test_output_is_the_models_softmax_of_the_test_input_over_255(package):
    test_input, test_output = np.load(package / "test_input.npy"), np.load(package / "test_output.npy")
    assert test_input.shape == (1, 3, 128, 128) and test_input.dtype == np.float32
    assert test_input.max() > 1 and test_input.min() >= 0 and test_input.max() <= 255  # 0-255, as tools pass it
    np.testing.assert_array_equal(test_input, test_input.round())  # whole numbers, like an 8-bit image
    with torch.no_grad():
        expected = tiny("unet")(torch.from_numpy(test_input) / 255).softmax(1).numpy()
    np.testing.assert_allclose(test_output, expected, atol=1e-6)
    with Image.open(package / "cover.png") as cover:
        assert cover.width == 2 * cover.height >= 256


def test_checks_run_before_anything_is_written(tmp_path):
    pytest.importorskip("bioimageio.core")
    model = tiny("unet")
    with pytest.raises(ValueError, match="name must be 5 to 128 letters"):
        to_bioimageio(model, tmp_path / "p", name="UNet/2", class_names=["a", "b"])
    with pytest.raises(ValueError, match="2 output classes but 3 class_names"):
        to_bioimageio(model, tmp_path / "p", name="Tiny UNet", class_names=["a", "b", "c"])
    with pytest.raises(ValueError, match=r"test_image is \(20, 64\) pixels; the models need at least 32x32"):
        to_bioimageio(model, tmp_path / "p", name="Tiny UNet", class_names=["a", "b"], test_image=np.zeros((20, 64, 3)))
    with pytest.raises(ValueError, match="pixel_size_um must be a positive number"):
        to_bioimageio(model, tmp_path / "p", name="Tiny UNet", class_names=["a", "b"], pixel_size_um=0)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        to_bioimageio(model, tmp_path / "notes", name="Tiny UNet", class_names=["a", "b"])
    with pytest.raises(FileExistsError, match="not a bioimage.io package"):
        to_bioimageio(model, tmp_path / "notes", name="Tiny UNet", class_names=["a", "b"], overwrite=True)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["notes", "todo.txt"]


@pytest.fixture
def fake_weights(monkeypatch):
    """Exports replaced by stand-in files: for tests of packaging, not of the weights."""
    import segtutor.export.bioimageio as bioimageio_export

    def write(model, path):
        Path(path).write_bytes(b"stand-in weights")
        return Path(path)

    monkeypatch.setattr(bioimageio_export, "to_onnx", write)
    monkeypatch.setattr(bioimageio_export, "to_torchscript", write)


def test_a_failed_check_leaves_the_earlier_package_intact(monkeypatch, tmp_path, fake_weights):
    core = pytest.importorskip("bioimageio.core")
    pytest.importorskip("bioimageio.spec")
    path = tmp_path / "package"
    path.mkdir()
    (path / "rdf.yaml").write_text("the earlier package")

    class Failed:
        status = "failed"

        def format(self):
            return "Reproduce test outputs from test inputs (onnx): failed"

    monkeypatch.setattr(core, "test_model", lambda source: Failed())
    with pytest.raises(RuntimeError, match=r"(?s)test of the package failed.*\(onnx\): failed"):
        to_bioimageio(tiny("unet"), path, name="Tiny UNet", class_names=["a", "b"], overwrite=True)
    assert (path / "rdf.yaml").read_text() == "the earlier package"
    assert [p.name for p in tmp_path.iterdir()] == ["package"]  # the new package's folder is gone


def test_a_zip_package_holds_the_rdf_and_its_files(tmp_path, fake_weights):
    pytest.importorskip("bioimageio.spec")
    path = to_bioimageio(tiny("fcn8s"), tmp_path / "model.zip", name="Tiny UNet", class_names=["a", "b"], check=False)
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
    assert {"rdf.yaml", "weights.onnx", "weights_torchscript.pt", "test_input.npy", "cover.png", "README.md"} <= names
    assert [p.name for p in tmp_path.iterdir()] == ["model.zip"]
