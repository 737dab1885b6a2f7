"""`vaekit serve --pretrained`: the zoo's models served as ``pretrained:NAME`` beside (or instead
of) a runs folder, usable like any run, and nothing ever written into the zoo."""

import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install vaekit[serve])")
from fastapi.testclient import TestClient

from vaekit import latent, open_run
from vaekit.cli import main
from vaekit.errors import VaekitError
from vaekit.serve import create_app
from vaekit.sharing import ZOO, zoo_path, zoo_registry

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
VAE = "/api/runs/pretrained:mnist-vae"


def zoo_files():
    return {str(p.relative_to(ZOO)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(ZOO.rglob("*"))}


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-pretrained") / "runs"
    assert main(["train", "digits", "--epochs", "1", "--hidden", "16", "--limit", "200", "--latent-dim", "2",
                 "--quiet", "--out", str(root / "digits2")]) == 0
    return root


@pytest.fixture(scope="module")
def zoo_before():
    return zoo_files()


@pytest.fixture(scope="module")
def client(runs_dir, zoo_before):
    with TestClient(create_app(runs_dir, token=None, pretrained=True)) as c:
        yield c


def test_the_zoo_is_listed_beside_the_runs(client):
    runs = {r["name"]: r for r in client.get("/api/runs").json()}
    assert set(runs) == {f"pretrained:{name}" for name in zoo_registry()} | {"digits2"}
    assert runs["pretrained:mnist-vae"]["input_shape"] == [1, 28, 28] and runs["pretrained:mnist-vae"]["image"]
    assert runs["pretrained:mnist-cvae"]["conditional"] and runs["pretrained:mnist-cvae"]["num_classes"] == 10
    assert "elbo" in runs["pretrained:mnist-vae"]["metrics"]["test"]
    detail = client.get("/api/runs/pretrained%3Amnist-vae").json()  # as the page's encodeURIComponent sends it
    assert len(detail["kl_per_dim"]) == 16 and sorted(detail["dims_by_kl"]) == list(range(16))


def test_decode_and_encode_a_pretrained_model(client):
    z = [0.5] * 16
    expected = latent.decode_means(open_run("pretrained:mnist-vae").model, torch.tensor([z]))[0, 0]
    values = client.post(f"{VAE}/decode", json={"z": z, "format": "values"}).json()
    assert values["shape"] == [1, 28, 28] and values["values"] == pytest.approx(expected.flatten().tolist(), abs=1e-6)
    image = (expected.numpy() * 255).round().astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG")
    posterior = client.post(f"{VAE}/encode", files={"file": ("x.png", out.getvalue())}).json()
    assert len(posterior["mean"]) == 16 and len(posterior["logvar"]) == 16


def test_sample_with_the_prior_and_an_in_memory_gmm(client):
    prior = client.post(f"{VAE}/sample", json={"n": 4, "nrow": 2})
    assert prior.status_code == 200 and prior.headers["content-type"] == "image/png"
    gmm = client.post(f"{VAE}/sample", json={"n": 4, "sampler": "gmm", "format": "base64"})
    assert gmm.status_code == 200 and base64.b64decode(gmm.json()["image"])[:4] == b"\x89PNG"
    cvae = client.post("/api/runs/pretrained:mnist-cvae/sample", json={"n": 3, "label": 7})
    assert cvae.status_code == 200
    diffusion = client.post(f"{VAE}/sample", json={"n": 4, "sampler": "diffusion"})
    assert diffusion.status_code == 409 and "pretrained model" in diffusion.json()["error"]


def test_the_local_runs_are_still_served(client):
    assert client.post("/api/runs/digits2/decode", json={"z": [0, 0], "format": "values"}).status_code == 200
    assert client.get("/api/runs/mnist-vae").status_code == 404  # only by its pretrained: name


def test_nothing_was_written_into_the_zoo(client, zoo_before):
    client.post(f"{VAE}/sample", json={"n": 2, "sampler": "gmm"})  # the GMM again: from memory
    assert zoo_files() == zoo_before
    zoo_path("mnist-vae"), zoo_path("mnist-cvae")  # every file still matches its recorded sha256


def test_the_zoo_alone():
    with TestClient(create_app(None, pretrained=True)) as c:
        assert {r["name"] for r in c.get("/api/runs").json()} == {f"pretrained:{name}" for name in zoo_registry()}


def test_nothing_to_serve_is_one_error_line(capsys):
    with pytest.raises(VaekitError, match="--pretrained"):
        create_app(None)
    assert main(["serve"]) == 2
    assert "nothing to serve" in capsys.readouterr().err
