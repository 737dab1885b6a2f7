"""The pretrained models shipped in the package: usable at once (no training, no network),
from Python and as ``pretrained:NAME`` wherever a command takes a RUN, each file checked
against the registry's sha256."""

import shutil

import pytest
import torch
from PIL import Image

import vaekit
from vaekit import sharing
from vaekit.cli import main
from vaekit.errors import VaekitError

REGISTRY = sharing.zoo_registry()
pytestmark = pytest.mark.skipif("mnist-vae" not in REGISTRY, reason="the zoo is not built (benchmarks/build_zoo.py)")


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_pretrained_model_loads_and_samples(name):
    model = vaekit.pretrained(name)
    assert not model.training and model.config.model == REGISTRY[name]["family"]
    images = model.sample(4, generator=torch.Generator().manual_seed(0))
    assert images.shape == (4, 1, 28, 28) and torch.isfinite(images).all()
    if isinstance(model.decode(model.prior_sample(1), model.sample_cond(1)), vaekit.Bernoulli):  # a codec: means
        assert images.min() >= 0 and images.max() <= 1
    assert name in vaekit.list_pretrained() and "sha256" not in vaekit.list_pretrained()[name]
    assert sum((sharing.ZOO / name / f).stat().st_size for f in REGISTRY[name]["sha256"]) == REGISTRY[name]["bytes"]


def test_the_registry_figures_are_what_the_shipped_weights_give_on_the_test_set():
    """Recomputed from the weights on MNIST's 10,000 test images, not read back from the
    files the build wrote: a registry figure that drifted from its model fails here."""
    test = vaekit.data.load("mnist")
    for name, entry in REGISTRY.items():
        model = vaekit.pretrained(name)
        torch.manual_seed(0)
        with torch.no_grad():
            loss = model.loss(test.test, cond=test.test_labels if model.config.conditional else None)
        # one posterior draw per image: the mean over 10,000 images moves by ~0.1 nats between seeds
        assert float(loss.total) == pytest.approx(entry["test"]["elbo"], abs=0.5), name
        assert float(loss.kl) == pytest.approx(entry["test"]["kl"], abs=0.5), name


def test_sample_pretrained_from_the_command_line(tmp_path):
    out = tmp_path / "s.png"
    assert main(["sample", "pretrained:mnist-vae", "-n", "16", "-o", str(out), "--threads", "1"]) == 0
    assert Image.open(out).size[0] > 28


def test_an_altered_file_or_unknown_name_is_refused(tmp_path, monkeypatch, capsys):
    shutil.copytree(sharing.ZOO, tmp_path / "zoo")
    monkeypatch.setattr(sharing, "ZOO", tmp_path / "zoo")
    weights = tmp_path / "zoo" / "mnist-vae" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(VaekitError, match="does not match its recorded sha256"):
        vaekit.pretrained("mnist-vae")
    assert main(["sample", "pretrained:no-such-model", "-o", str(tmp_path / "x.png")]) == 2
    assert "no such pretrained model (known: " in capsys.readouterr().err


def test_a_pretrained_model_is_read_only(tmp_path, capsys):
    folder = sharing.ZOO / "mnist-vae"
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    for command in (["reconstruct", "pretrained:mnist-vae", "-n", "4"], ["report", "pretrained:mnist-vae"]):
        assert main(command) == 2
        assert "a pretrained model is read-only; give --out/-o" in capsys.readouterr().err
    out = tmp_path / "gmm.png"  # the GMM is fitted in memory, not saved into the package
    assert main(["sample", "pretrained:mnist-vae", "-n", "4", "--sampler", "gmm", "-o", str(out),
                 "--threads", "1"]) == 0
    assert out.is_file()
    assert main(["report", "pretrained:mnist-vae", "-o", str(tmp_path / "card.html")]) == 0
    assert (tmp_path / "card.html").read_text().startswith("<!DOCTYPE html>")
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before


@pytest.mark.skipif("mnist-codec" not in REGISTRY, reason="the codec is not built")
def test_the_pretrained_codec_compresses_from_the_command_line(tmp_path):
    digit = tmp_path / "digit.png"
    Image.fromarray((vaekit.pretrained("mnist-vae").sample(1)[0, 0] * 255).byte().numpy()).save(digit)
    vkc, back = tmp_path / "digit.vkc", tmp_path / "back.png"
    assert main(["compress", "pretrained:mnist-codec", str(digit), "-o", str(vkc)]) == 0
    assert main(["decompress", "pretrained:mnist-codec", str(vkc), "-o", str(back)]) == 0
    assert 0 < vkc.stat().st_size < digit.stat().st_size and Image.open(back).size == (28, 28)
    figures = REGISTRY["mnist-codec"]["compression"]
    assert figures["test_images"] == 10_000 and 0 < figures["bpp"] < 8 and figures["psnr_db"] > 20
