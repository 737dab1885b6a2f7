"""`vaekit export`: the ONNX graphs under onnxruntime and the TorchScript file give what the
PyTorch model gives, at another batch size than the one traced."""

import numpy as np
import pytest
import torch

from vaekit import open_run
from vaekit.cli import main

ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install vaekit[onnx])")

QUICK = ["--epochs", "2", "--hidden", "32", "--limit", "300", "--quiet"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    assert main(["train", "digits", *QUICK, "--latent-dim", "3", "--out", str(root / "mlp")]) == 0
    assert main(["train", "digits", *QUICK, "--arch", "conv", "--conv-channels", "8,16", "--latent-dim", "3",
                 "--out", str(root / "conv")]) == 0
    assert main(["train", "digits", "--model", "cvae", *QUICK, "--latent-dim", "2", "--out", str(root / "cvae")]) == 0
    return root


@pytest.mark.parametrize("name", ["mlp", "conv", "cvae"])
def test_onnx_graphs_match_pytorch(runs, tmp_path, name):
    assert main(["export", str(runs / name), "--format", "onnx", "-o", str(tmp_path / "m.onnx")]) == 0
    model = open_run(runs / name).model
    x, z = torch.rand(5, 1, 8, 8), torch.randn(5, model.config.latent_dim)
    label = torch.tensor([0, 3, 9, 1, 2]) if model.config.conditional else None
    extra = {} if label is None else {"label": label.numpy()}
    encoder = ort.InferenceSession(str(tmp_path / "m.encoder.onnx"))
    decoder = ort.InferenceSession(str(tmp_path / "m.decoder.onnx"))
    assert [o.name for o in encoder.get_outputs()] == ["mean", "logvar"]
    mean, logvar = encoder.run(None, {"x": x.numpy(), **extra})
    with torch.no_grad():
        posterior = model.encode(x, label)
        decoded = model.decode(z, label).mean
    np.testing.assert_allclose(mean, posterior.mean.numpy(), atol=1e-5)
    np.testing.assert_allclose(logvar, posterior.logvar.numpy(), atol=1e-5)
    (x_mean,) = decoder.run(["x_mean"], {"z": z.numpy(), **extra})
    np.testing.assert_allclose(x_mean, decoded.numpy(), atol=1e-5)


def test_torchscript_file_has_encode_and_decode(runs, tmp_path):
    assert main(["export", str(runs / "mlp"), "--format", "torchscript", "-o", str(tmp_path / "m.pt")]) == 0
    scripted = torch.jit.load(str(tmp_path / "m.pt"))
    model = open_run(runs / "mlp").model
    x, z = torch.rand(7, 1, 8, 8), torch.randn(7, 3)
    with torch.no_grad():
        mean, logvar = scripted.encode(x)
        torch.testing.assert_close(mean, model.encode(x).mean)
        torch.testing.assert_close(logvar, model.encode(x).logvar)
        torch.testing.assert_close(scripted.decode(z), model.decode(z).mean)


def test_export_errors_are_one_line(runs, tmp_path, capsys):
    assert main(["export", str(runs / "mlp"), "--format", "tflite", "-o", str(tmp_path / "m.x")]) == 2
    assert "format: expected onnx or torchscript" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nope"), "-o", str(tmp_path / "m.onnx")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.onnx"))
