"""The HTTP API end to end with FastAPI's TestClient on tiny digits runs: every endpoint's
answer, and every kind of bad input answered by a 4xx JSON error (never a 500)."""

import base64
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install vaekit[serve])")
from fastapi.testclient import TestClient

from vaekit import latent, open_run
from vaekit.cli import main
from vaekit.serve import create_app

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
QUICK = ["--epochs", "3", "--hidden", "32", "--limit", "300", "--quiet"]


def make_runs(root):
    """RUNS_DIR with a 4-D digits VAE, a 2-D digits CVAE and an anomaly detector fitted on zeros."""
    assert main(["train", "digits", *QUICK, "--latent-dim", "4", "--out", str(root / "digits4")]) == 0
    assert main(["train", "digits", "--model", "cvae", *QUICK, "--latent-dim", "2", "--out", str(root / "cvae")]) == 0
    digits = load_digits()
    zeros = root.parent / "zeros"
    zeros.mkdir()
    for i, img in enumerate((digits.images[digits.target == 0][:100] / 16 * 255).astype(np.uint8)):
        Image.fromarray(img).save(zeros / f"{i:03d}.png")
    assert main(["anomaly", "fit", str(zeros), "--out", str(root / "detector"), "--epochs", "3", "--latent-dim", "2",
                 "--set", "hidden=32", "--quiet"]) == 0
    (root / "not-a-run").mkdir()
    return root


def png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def digit_png(k: int, size: int = 8) -> bytes:
    digits = load_digits()
    img = Image.fromarray((digits.images[k] / 16 * 255).astype(np.uint8))
    return png(np.asarray(img.resize((size, size))))


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    return make_runs(tmp_path_factory.mktemp("serve") / "runs")


@pytest.fixture(scope="module")
def client(runs_dir):
    with TestClient(create_app(runs_dir, token=None)) as c:
        yield c


def is_error(response, status):
    body = response.json()
    return response.status_code == status and isinstance(body["error"], str) and body["error"]


def test_lists_runs_with_config_and_metrics(client):
    runs = {r["name"]: r for r in client.get("/api/runs").json()}
    assert set(runs) == {"digits4", "cvae", "detector"}
    assert runs["digits4"]["latent_dim"] == 4 and runs["digits4"]["input_shape"] == [1, 8, 8]
    assert runs["digits4"]["metrics"]["epochs"] == 3 and "elbo" in runs["digits4"]["metrics"]["test"]
    assert runs["cvae"]["conditional"] and runs["cvae"]["num_classes"] == 10
    assert runs["detector"]["kind"] == "anomaly" and runs["digits4"]["kind"] == "model"


def test_run_detail_orders_dimensions_by_kl(client, runs_dir):
    detail = client.get("/api/runs/digits4").json()
    kl = detail["kl_per_dim"]
    assert sorted(detail["dims_by_kl"]) == [0, 1, 2, 3]
    assert [kl[d] for d in detail["dims_by_kl"]] == sorted(kl, reverse=True)
    assert kl == pytest.approx(json.loads((runs_dir / "digits4" / "summary.json").read_text())["test"]["kl_per_dim"])
    detector = client.get("/api/runs/detector").json()
    assert detector["threshold"] > 0 and detector["score_name"] == "recon+knn"


def test_encode_upload_equals_the_library(client, runs_dir):
    data = digit_png(5)
    body = client.post("/api/runs/digits4/encode", files={"file": ("x.png", data)}).json()
    x = torch.tensor(np.asarray(Image.open(io.BytesIO(data)), dtype=np.float32) / 255)
    posterior = open_run(runs_dir / "digits4").model.encode(x.reshape(1, 1, 8, 8))
    assert body["mean"] == pytest.approx(posterior.mean[0].tolist(), abs=1e-5)
    assert body["logvar"] == pytest.approx(posterior.logvar[0].tolist(), abs=1e-5)


def test_encode_row_and_a_larger_upload_is_resized(client):
    row = client.post("/api/runs/digits4/encode/row", json={"x": [0.5] * 64}).json()
    assert len(row["mean"]) == 4 and len(row["logvar"]) == 4
    big = client.post("/api/runs/digits4/encode", files={"file": ("x.png", digit_png(5, size=32))})
    assert big.status_code == 200 and len(big.json()["mean"]) == 4


def test_decode_png_base64_and_values_agree_with_the_decoder(client, runs_dir):
    z = [0.3, -1.0, 0.5, 2.0]
    expected = latent.decode_means(open_run(runs_dir / "digits4").model, torch.tensor([z]))[0, 0]
    r = client.post("/api/runs/digits4/decode", json={"z": z})
    assert r.headers["content-type"] == "image/png"
    image = np.asarray(Image.open(io.BytesIO(r.content)), dtype=np.float32) / 255
    assert image.shape == (8, 8) and np.abs(image - expected.numpy()).max() <= 0.5 / 255 + 1e-6
    b64 = client.post("/api/runs/digits4/decode", json={"z": z, "format": "base64"}).json()
    assert base64.b64decode(b64["image"]) == r.content and (b64["width"], b64["height"]) == (8, 8)
    values = client.post("/api/runs/digits4/decode", json={"z": z, "format": "values"}).json()
    assert values["shape"] == [1, 8, 8] and values["values"] == pytest.approx(expected.flatten().tolist(), abs=1e-6)


def test_conditional_decode_depends_on_the_label(client):
    a = client.post("/api/runs/cvae/decode", json={"z": [0, 0], "label": 1, "format": "values"}).json()["values"]
    b = client.post("/api/runs/cvae/decode", json={"z": [0, 0], "label": 7, "format": "values"}).json()["values"]
    assert a != b


def test_sample_grid_prior_and_gmm(client):
    r = client.post("/api/runs/digits4/sample", json={"n": 6, "nrow": 3, "temperature": 0.5})
    grid = Image.open(io.BytesIO(r.content))
    assert r.status_code == 200 and grid.size == (3 * 9 + 1, 2 * 9 + 1)
    again = client.post("/api/runs/digits4/sample", json={"n": 6, "nrow": 3, "temperature": 0.5})
    other = client.post("/api/runs/digits4/sample", json={"n": 6, "nrow": 3, "temperature": 0.5, "seed": 1})
    assert again.content == r.content and other.content != r.content
    gmm = client.post("/api/runs/digits4/sample", json={"n": 4, "sampler": "gmm", "format": "base64"})
    assert gmm.status_code == 200 and gmm.json()["width"] == 2 * 9 + 1
    cvae = client.post("/api/runs/cvae/sample", json={"n": 3, "label": 4})
    assert cvae.status_code == 200


def test_the_diffusion_sampler_is_served_once_the_run_has_one(client, runs_dir):
    import vaekit
    from vaekit.latent.diffusion import fit_diffusion_sampler

    before = client.post("/api/runs/cvae/sample", json={"n": 4, "sampler": "diffusion"})
    assert before.status_code == 409 and "vaekit sample cvae --sampler diffusion" in before.json()["error"]
    assert client.get("/api/runs/cvae").json()["has_diffusion"] is False
    fit_diffusion_sampler(vaekit.open_run(runs_dir / "cvae"), hidden=16, blocks=1, train_steps=50, batch_size=64)
    after = client.post("/api/runs/cvae/sample", json={"n": 4, "sampler": "diffusion", "label": 1})
    assert after.status_code == 200 and client.get("/api/runs/cvae").json()["has_diffusion"] is True


def test_interpolate_uploads_and_indices(client):
    files = {"file_a": ("a.png", digit_png(0)), "file_b": ("b.png", digit_png(1))}
    r = client.post("/api/runs/digits4/interpolate", files=files, data={"steps": "5"})
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (5 * 9 + 1, 10)
    by_index = client.post("/api/runs/digits4/interpolate/indices", json={"a": 0, "b": 1, "steps": 4})
    assert by_index.status_code == 200 and Image.open(io.BytesIO(by_index.content)).size == (4 * 9 + 1, 10)
    cond = client.post("/api/runs/cvae/interpolate", files=files, data={"label_a": "0", "label_b": "1"})
    assert cond.status_code == 200


def test_traversal_sweeps_one_dimension(client):
    r = client.post("/api/runs/digits4/traversal", json={"dim": 1, "index": 3, "steps": 5})
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (5 * 9 + 1, 10)
    from_z = client.post("/api/runs/digits4/traversal", json={"dim": 0, "z": [0, 0, 0, 0], "steps": 3})
    assert from_z.status_code == 200


def test_latent_map_gives_points_with_their_codes(client):
    body = client.get("/api/runs/digits4/map", params={"n": 50, "method": "pca"}).json()
    assert body["method"] == "pca" and len(body["points"]) == len(body["codes"]) == len(body["indices"]) == 50
    assert len(body["labels"]) == 50 and all(len(c) == 4 for c in body["codes"])
    two_d = client.get("/api/runs/cvae/map", params={"n": 20}).json()
    assert two_d["method"] == "latent" and np.allclose(two_d["points"], two_d["codes"])


def test_anomaly_scores_a_one_above_zeros(client):
    zero = client.post("/api/runs/detector/anomaly", files={"file": ("z.png", digit_png(0))}).json()
    one = client.post("/api/runs/detector/anomaly", files={"file": ("o.png", digit_png(1))}).json()
    assert one["score"] > zero["score"] and one["threshold"] == zero["threshold"]
    assert one["anomaly"] == (one["score"] > one["threshold"])
    row = client.post("/api/runs/detector/anomaly/row", json={"x": [0.0] * 64}).json()
    assert row["score_name"] == "recon+knn"


# -- bad input: a 4xx with a JSON error, never a 500 ----------------------------------------

@pytest.mark.parametrize(("method", "path", "kwargs", "status"), [
    ("get", "/api/runs/nope", {}, 404),
    ("get", "/api/runs/..%2F..%2Fetc", {}, 404),
    ("get", "/api/runs/../../etc/passwd", {}, 404),
    ("post", "/api/runs/not-a-run/decode", {"json": {"z": [0, 0, 0, 0]}}, 404),
    ("post", "/api/runs/digits4/decode", {"json": {"z": [0, 0, 0]}}, 400),
    ("post", "/api/runs/digits4/decode", {"content": b'{"z": [NaN, 0, 0, 0]}',
                                          "headers": {"content-type": "application/json"}}, 422),
    ("post", "/api/runs/digits4/decode", {"content": b'{"z": [Infinity, 0, 0, 0]}',
                                          "headers": {"content-type": "application/json"}}, 422),
    ("post", "/api/runs/digits4/decode", {"content": b'{"z": [0, 0', "headers": {"content-type": "application/json"}},
     422),
    ("post", "/api/runs/digits4/decode", {"json": {"z": "abc"}}, 422),
    ("post", "/api/runs/digits4/decode", {"json": {"z": [0, 0, 0, 0], "label": 1}}, 400),
    ("post", "/api/runs/cvae/decode", {"json": {"z": [0, 0], "label": 10}}, 400),
    ("post", "/api/runs/digits4/encode/row", {"json": {"x": [0.5] * 63}}, 400),
    ("post", "/api/runs/digits4/encode", {"files": {"file": ("x.png", b"this is not an image")}}, 415),
    ("post", "/api/runs/digits4/encode", {"files": {"file": ("x.png", b"")}}, 400),
    ("post", "/api/runs/digits4/encode", {"files": {"file": ("x.png", digit_png(0)[:60])}}, 400),
    ("post", "/api/runs/digits4/encode", {}, 422),
    ("post", "/api/runs/cvae/encode", {"files": {"file": ("x.png", digit_png(0))}}, 400),
    ("post", "/api/runs/digits4/sample", {"json": {"n": 0}}, 422),
    ("post", "/api/runs/digits4/sample", {"json": {"n": 100000}}, 422),
    ("post", "/api/runs/digits4/sample", {"json": {"temperature": -1}}, 422),
    ("post", "/api/runs/digits4/interpolate/indices", {"json": {"a": 0, "b": 10**6}}, 400),
    ("post", "/api/runs/digits4/traversal", {"json": {"dim": 4}}, 400),
    ("post", "/api/runs/digits4/anomaly", {"files": {"file": ("x.png", digit_png(0))}}, 400),
    ("post", "/api/runs/detector/anomaly/row", {"json": {"x": [0.0] * 3}}, 400),
])
def test_bad_input_is_a_json_4xx(client, method, path, kwargs, status):
    assert is_error(getattr(client, method)(path, **kwargs), status)


def test_decompression_bomb_and_byte_limit(runs_dir):
    bomb = io.BytesIO()
    Image.new("L", (6000, 6000)).save(bomb, format="PNG")  # ~30 KB that expands to 36 megapixels
    with TestClient(create_app(runs_dir, max_upload_pixels=1_000_000, max_upload_bytes=20_000)) as c:
        r = c.post("/api/runs/digits4/encode", files={"file": ("bomb.png", bomb.getvalue()[:20_000])})
        assert is_error(r, 413)  # too many bytes: refused before decoding
    with TestClient(create_app(runs_dir, max_upload_pixels=1_000_000)) as c:
        r = c.post("/api/runs/digits4/encode", files={"file": ("bomb.png", bomb.getvalue())})
        assert is_error(r, 413) and "pixels" in r.json()["error"]
        huge = c.post("/api/runs/digits4/encode/row", content=b"0" * (25 * 1024 * 1024),
                      headers={"content-type": "application/json"})
        assert is_error(huge, 413)


def test_token_is_required_when_set(runs_dir):
    with TestClient(create_app(runs_dir, token="s3cret")) as c:
        assert is_error(c.get("/api/runs"), 401)
        assert is_error(c.get("/api/runs", headers={"Authorization": "Bearer wrong"}), 401)
        assert c.get("/api/runs", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/").status_code == 200  # the page itself holds no data
        assert "HTTPBearer" in c.get("/openapi.json").json()["components"]["securitySchemes"]


def test_token_from_the_environment(runs_dir, monkeypatch):
    monkeypatch.setenv("VAEKIT_SERVE_TOKEN", "from-env")
    with TestClient(create_app(runs_dir)) as c:
        assert c.get("/api/runs").status_code == 401
        assert c.get("/api/runs", headers={"Authorization": "Bearer from-env"}).status_code == 200


def test_concurrent_decodes_share_forward_passes(runs_dir):
    """Requests arriving together are decoded in fewer passes than requests, each getting its own image."""
    import asyncio

    import httpx

    app = create_app(runs_dir, batch_window_ms=20)

    async def burst():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            zs = [[float(i), 0.0, 0.0, 0.0] for i in range(16)]
            return await asyncio.gather(*(c.post("/api/runs/digits4/decode", json={"z": z, "format": "values"})
                                          for z in zs))

    answers = asyncio.run(burst())
    run = app.state.registry.get("digits4")
    expected = latent.decode_means(run.model, torch.tensor([[float(i), 0, 0, 0] for i in range(16)]))
    assert [a.json()["values"] for a in answers] == [pytest.approx(e.flatten().tolist(), abs=1e-6) for e in expected]
    assert run.decoder.rows == 16 and run.decoder.batches < 16


def test_page_and_openapi_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "<script" in page.text
    assert client.get("/static/app.js").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/runs", "/api/runs/{name}/decode", "/api/runs/{name}/encode", "/api/runs/{name}/sample",
            "/api/runs/{name}/interpolate", "/api/runs/{name}/traversal", "/api/runs/{name}/anomaly",
            "/api/runs/{name}/map"} <= set(paths)


@pytest.fixture(scope="module")
def codec_client(runs_dir):
    pytest.importorskip("constriction", reason="the compress extra is not installed (pip install vaekit[compress])")
    assert main(["train", "digits", "--model", "codec", "--epochs", "2", "--limit", "300", "--quiet",
                 "--out", str(runs_dir.parent / "codec-runs" / "codec")]) == 0
    with TestClient(create_app(runs_dir.parent / "codec-runs")) as c:
        yield c


def test_compress_and_decompress_round_trip(codec_client, runs_dir):
    from vaekit.compression import decompress

    vkc = codec_client.post("/api/runs/codec/compress", files={"file": ("x.png", digit_png(3))})
    assert vkc.status_code == 200 and vkc.content.startswith(b"VKC")
    png_answer = codec_client.post("/api/runs/codec/decompress", files={"file": ("x.vkc", vkc.content)})
    image = np.asarray(Image.open(io.BytesIO(png_answer.content)), dtype=np.float32) / 255
    expected = decompress(runs_dir.parent / "codec-runs" / "codec", vkc.content)[0, 0].numpy()
    assert np.abs(image - expected).max() <= 0.5 / 255 + 1e-6
    assert is_error(codec_client.post("/api/runs/codec/decompress", files={"file": ("x.vkc", vkc.content[:-3])}), 400)
    assert is_error(codec_client.post("/api/runs/codec/decompress", files={"file": ("x.vkc", b"garbage")}), 400)


def test_compress_needs_a_codec_run(client):
    assert is_error(client.post("/api/runs/digits4/compress", files={"file": ("x.png", digit_png(3))}), 400)


def test_serve_command_refuses_a_missing_directory(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nope")]) == 2
    assert "no such directory of runs" in capsys.readouterr().err


def test_while_serving_the_startup_objects_are_frozen_out_of_the_garbage_collector(tmp_path):
    """A full collection over every module's objects would pause the requests in flight; the app
    freezes what exists at startup, and gives it back (and stops its model thread) at shutdown."""
    import gc

    app = create_app(tmp_path)
    before = gc.get_freeze_count()
    with TestClient(app) as c:
        assert gc.get_freeze_count() > before
        assert c.get("/api/runs").status_code == 200
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError, match="shutdown"):
        app.state.executor.submit(print)
