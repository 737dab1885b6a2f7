"""`vaekit compress` / `vaekit decompress` on a tiny codec run trained through `vaekit train`."""

import numpy as np
import pytest
import torch
from PIL import Image

from vaekit.cli import main
from vaekit.training import runs


@pytest.fixture(scope="module")
def codec_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("codec") / "run"
    code = main(["train", "digits", "--model", "codec", "--lmbda", "0.002", "--epochs", "1", "--limit", "300",
                 "--conv-channels", "16", "--out", str(out), "--quiet"])
    assert code == 0
    return out


@pytest.fixture
def pngs(tmp_path, digits_tensor):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(5):
        Image.fromarray((digits_tensor[1000 + i, 0] * 255).round().to(torch.uint8).numpy()).save(folder / f"d{i}.png")
    return folder


def _pixels(path):
    return torch.from_numpy(np.asarray(Image.open(path), dtype=np.uint8).copy()).float() / 255


def test_train_passes_lmbda_into_the_run(codec_run):
    run = runs.open_run(codec_run)
    assert run.config["model"]["model"] == "codec" and run.config["model"]["lmbda"] == 0.002
    assert run.config["model"]["channels"] == 16


def test_file_round_trip(codec_run, pngs, tmp_path, capsys):
    assert main(["compress", str(codec_run), str(pngs / "d0.png"), "-o", str(tmp_path / "d0.vkc")]) == 0
    assert "bits per pixel" in capsys.readouterr().out
    assert main(["decompress", str(codec_run), str(tmp_path / "d0.vkc"), "-o", str(tmp_path / "d0.png")]) == 0
    model = runs.load(codec_run)
    expected = (model.reconstruct(_pixels(pngs / "d0.png")[None, None]) * 255).round() / 255
    assert torch.equal(_pixels(tmp_path / "d0.png"), expected[0, 0])


def test_folder_round_trip(codec_run, pngs, tmp_path):
    assert main(["compress", str(codec_run), str(pngs), "-o", str(tmp_path / "vkc")]) == 0
    assert sorted(p.name for p in (tmp_path / "vkc").iterdir()) == [f"d{i}.vkc" for i in range(5)]
    assert main(["decompress", str(codec_run), str(tmp_path / "vkc"), "-o", str(tmp_path / "out")]) == 0
    model = runs.load(codec_run)
    for i in range(5):
        expected = (model.reconstruct(_pixels(pngs / f"d{i}.png")[None, None]) * 255).round() / 255
        assert torch.equal(_pixels(tmp_path / "out" / f"d{i}.png"), expected[0, 0])


def test_bad_files_are_one_line_errors_and_write_nothing(codec_run, pngs, tmp_path, capsys):
    vkc = tmp_path / "d0.vkc"
    assert main(["compress", str(codec_run), str(pngs / "d0.png"), "-o", str(vkc)]) == 0
    data = vkc.read_bytes()
    (tmp_path / "cut.vkc").write_bytes(data[:-2])
    flipped = bytearray(data)
    flipped[-1] ^= 1
    (tmp_path / "flip.vkc").write_bytes(bytes(flipped))
    for name, message in (("cut", "truncated"), ("flip", "corrupted")):
        capsys.readouterr()
        assert main(["decompress", str(codec_run), str(tmp_path / f"{name}.vkc"), "-o", str(tmp_path / "x.png")]) == 2
        err = capsys.readouterr().err
        assert message in err and f"{name}.vkc" in err and "Traceback" not in err
        assert not (tmp_path / "x.png").exists()
    Image.new("L", (9, 8)).save(tmp_path / "big.png")
    assert main(["compress", str(codec_run), str(tmp_path / "big.png")]) == 2
    assert "8x8" in capsys.readouterr().err
    assert main(["compress", str(codec_run), str(pngs / "d0.png"), "-o", str(vkc)]) == 2  # exists
    assert "already exists" in capsys.readouterr().err


def test_decompress_checks_every_output_before_it_decodes(codec_run, pngs, tmp_path, capsys, monkeypatch):
    """An output that exists (one of a several-image file's <stem>_<i>.png too) is refused, exit 2,
    before any file is decoded; the existing file is left byte for byte."""
    from vaekit.compression import commands, compress

    assert main(["compress", str(codec_run), str(pngs / "d0.png"), "-o", str(tmp_path / "one.vkc")]) == 0
    two = torch.stack([_pixels(pngs / f"d{i}.png")[None] for i in (1, 2)])
    (tmp_path / "two.vkc").write_bytes(compress(runs.load(codec_run), two))
    (tmp_path / "one.png").write_bytes(b"mine")
    (tmp_path / "two_1.png").write_bytes(b"mine too")

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded before the outputs were checked")

    monkeypatch.setattr(commands, "decompress", no_decoding)
    for name, taken in (("one", "one.png"), ("two", "two_1.png")):
        capsys.readouterr()
        assert main(["decompress", str(codec_run), str(tmp_path / f"{name}.vkc")]) == 2
        err = capsys.readouterr().err
        assert f"{tmp_path / taken}: already exists (use --overwrite to replace it)" in err and "Traceback" not in err
    assert (tmp_path / "one.png").read_bytes() == b"mine" and (tmp_path / "two_1.png").read_bytes() == b"mine too"
    assert not (tmp_path / "two_0.png").exists()
    monkeypatch.undo()
    assert main(["decompress", str(codec_run), str(tmp_path / "two.vkc"), "--overwrite"]) == 0
    assert (tmp_path / "two_0.png").is_file() and (tmp_path / "two_1.png").read_bytes() != b"mine too"


def test_lossless_round_trip_is_exact(tmp_path):
    """--lossless: the container carries mode=lossless and bits-back coding (compression.bitsback)."""
    bitsback = pytest.importorskip("vaekit.compression.bitsback")
    if not hasattr(bitsback, "compress_lossless"):
        pytest.skip("bits-back coding not available yet")
    from vaekit.compression import compress, decompress, unpack
    from vaekit.models import build

    torch.manual_seed(0)
    vae = build({"model": "vae", "input_shape": [1, 8, 8], "latent_dim": 4, "hidden": [32]}).eval()
    vae.save(tmp_path / "vae")
    x = (torch.rand(6, 1, 8, 8) > 0.5).float()
    data = compress(vae, x, lossless=True)
    assert unpack(data)[0].mode == "lossless"
    assert torch.equal(decompress(vae, data).float(), x)
    (tmp_path / "in").mkdir()
    for i in range(3):
        Image.fromarray((x[i, 0] * 255).to(torch.uint8).numpy()).save(tmp_path / "in" / f"b{i}.png")
    assert main(["compress", str(tmp_path / "vae"), str(tmp_path / "in"), "-o", str(tmp_path / "vkc"),
                 "--lossless"]) == 0
    assert main(["decompress", str(tmp_path / "vae"), str(tmp_path / "vkc"), "-o", str(tmp_path / "out")]) == 0
    for i in range(3):
        assert torch.equal(_pixels(tmp_path / "out" / f"b{i}.png"), x[i, 0])


def test_inputs_with_the_same_stem_are_refused(codec_run, pngs, tmp_path, capsys):
    Image.open(pngs / "d0.png").convert("L").save(pngs / "d0.jpg")
    capsys.readouterr()
    assert main(["compress", str(codec_run), str(pngs), "-o", str(tmp_path / "vkc")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "d0.png" in err and "d0.jpg" in err
    assert not (tmp_path / "vkc").exists()
