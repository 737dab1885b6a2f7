"""The per-run HTML report: self-contained, faithful to the run's files, atomic."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import vaekit
from vaekit.report.page import REPORT_FILE, write_report

IMG_SRC = re.compile(r'<img\b[^>]*?\bsrc="([^"]*)"', re.S)
PNG_URI = "data:image/png;base64,"


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "run"
    return vaekit.train({"source": "digits", "limit": 200}, {"latent_dim": 2, "hidden": [32]}, {"epochs": 3},
                        out=out, progress=False)


@pytest.fixture(scope="module")
def digits_html(digits_run):
    return write_report(digits_run).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("table")
    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 1))
    x = np.c_[170 + 8 * z, 70 + 10 * z + rng.normal(size=(300, 1)), 40 + 12 * rng.normal(size=(300, 1))]
    csv = root / "people.csv"
    np.savetxt(csv, x, delimiter=",", header="height_cm,weight_kg,age", comments="", fmt="%.3f")
    return vaekit.train(str(csv), {"latent_dim": 2, "hidden": [16]}, {"epochs": 1}, out=root / "run", progress=False)


def _images(html: str) -> list[Image.Image]:
    srcs = IMG_SRC.findall(html)
    assert html.count("<img") == len(srcs)
    images = []
    for src in srcs:
        assert src.startswith(PNG_URI), src[:60]
        img = Image.open(io.BytesIO(base64.b64decode(src[len(PNG_URI):], validate=True)))
        assert img.format == "PNG"
        img.load()
        images.append(img)
    return images


def _assert_self_contained(html: str) -> None:
    low = html.lower()
    assert 'src="http' not in low and "src='http" not in low
    assert "<script" not in low  # no scripts at all, inline or external
    assert '<link rel="stylesheet"' not in low and "@import" not in low and "url(" not in low
    assert "<style>" in low  # the CSS is inline


def test_report_is_written_self_contained_with_every_section(digits_run, digits_html):
    path = digits_run.path / REPORT_FILE
    assert path.is_file()
    _assert_self_contained(digits_html)
    images = _images(digits_html)
    # curves, reconstruction strips, prior samples, traversal strips, KL bars, latent map
    assert len(images) >= 6
    order = [digits_html.index(f'id="{a}"') for a in
             ("curves", "reconstructions", "samples", "traversal", "kl", "latent-map")]
    assert order == sorted(order)
    assert "image-rendering: pixelated" in digits_html


def test_header_shows_the_run_and_its_test_figures(digits_run, digits_html):
    summary = json.loads((digits_run.path / "summary.json").read_text())
    test = summary["test"]
    assert f"{test['elbo']:.2f}" in digits_html
    assert f"{test['recon']:.2f}" in digits_html and f"{test['kl']:.2f}" in digits_html
    assert f"{test['elbo'] / (np.log(2) * 64):.3f}" in digits_html  # bits/dim over 1x8x8 values
    n_params = sum(p.numel() for p in digits_run.model.parameters())
    assert f"{n_params:,}" in digits_html
    assert digits_run.path.name in digits_html


def _active_units_in(html: str) -> int:
    m = re.search(r'class="active-units">(\d+)</span> of (\d+) latent dimensions active', html)
    assert m, "KL caption missing"
    return int(m.group(1))


def test_kl_caption_counts_the_active_units_of_the_summary(digits_run, digits_html, tmp_path):
    kl = json.loads((digits_run.path / "summary.json").read_text())["test"]["kl_per_dim"]
    assert _active_units_in(digits_html) == sum(k > 0.01 for k in kl)

    # a run with one collapsed unit: the caption says 1, and the traversal marks the row
    copy = Path(shutil.copytree(digits_run.path, tmp_path / "collapsed"))
    summary = json.loads((copy / "summary.json").read_text())
    summary["test"]["kl_per_dim"] = [0.8, 0.004]
    (copy / "summary.json").write_text(json.dumps(summary))
    html = write_report(vaekit.open_run(copy)).read_text(encoding="utf-8")
    assert _active_units_in(html) == 1
    assert '<span class="badge">collapsed</span>' in html


def test_table_run_gets_a_values_table_instead_of_images(table_run):
    html = write_report(table_run).read_text(encoding="utf-8")
    _assert_self_contained(html)
    _images(html)
    for absent in ('id="reconstructions"', 'id="samples"', 'id="traversal"'):
        assert absent not in html
    for present in ('id="curves"', 'id="values"', 'id="kl"', 'id="latent-map"'):
        assert present in html
    for column in ("height_cm", "weight_kg", "age"):
        assert f"<th>{column}</th>" in html
    # the originals are shown in the CSV's units, not standardized
    data = table_run.load_data()
    first = table_run.standardizer.inverse_transform(data.test[:1])[0]
    row = re.search(r'<tr class="orig"><td>#1 original</td>(.*?)</tr>', html).group(1)
    assert re.findall(r"<td>([^<]*)</td>", row) == [f"{v:.4g}" for v in first.tolist()]


def test_writing_is_atomic_and_replaces_an_old_report(digits_run, monkeypatch):
    path = digits_run.path / REPORT_FILE
    path.write_text("old report", encoding="utf-8")
    assert write_report(digits_run) == path
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert not [p for p in digits_run.path.iterdir() if p.name.endswith(".tmp")]

    # a failure while building leaves the previous report untouched and no temporary file
    path.write_text("old report", encoding="utf-8")
    import vaekit.report.sections as report_sections

    def boom(*args, **kwargs):
        raise RuntimeError("broken section")

    monkeypatch.setattr(report_sections, "curves_section", boom)
    with pytest.raises(RuntimeError, match="broken section"):
        write_report(digits_run)
    assert path.read_text(encoding="utf-8") == "old report"
    assert not [p for p in digits_run.path.iterdir() if p.name.endswith(".tmp")]


def test_extra_sections_are_appended_and_given_data_is_used(digits_run, monkeypatch):
    data = digits_run.load_data()

    def no_loading(**kwargs):
        raise AssertionError("write_report loaded the data although it was given")

    monkeypatch.setattr(digits_run, "load_data", no_loading)
    fragment = '<p id="anomaly-fragment">anomaly scores go here</p>'
    html = write_report(digits_run, data=data, sections={"Anomaly <scores>": fragment}).read_text(encoding="utf-8")
    assert fragment in html
    assert "<h2>Anomaly &lt;scores&gt;</h2>" in html
    assert html.index('id="latent-map"') < html.index(fragment) < html.index("<footer>")


def test_a_higher_dimensional_run_gets_a_tsne_map_and_ranked_traversal(tmp_path):
    run = vaekit.train({"source": "digits", "limit": 100}, {"latent_dim": 3, "hidden": [16]}, {"epochs": 1},
                       out=tmp_path / "run3", progress=False)
    html = write_report(run).read_text(encoding="utf-8")
    _images(html)
    assert "placed by a t-SNE map of their 3-D posterior means" in html
    kl = json.loads((run.path / "summary.json").read_text())["test"]["kl_per_dim"]
    rows = [int(d) for d in re.findall(r'<div class="label"><b>z(\d+)</b>', html)]
    assert rows == sorted(range(3), key=lambda d: -kl[d])  # the bar chart's order


def test_gmm_samples_appear_only_when_the_run_has_a_sampler(digits_run, tmp_path):
    copy = Path(shutil.copytree(digits_run.path, tmp_path / "gmm"))
    run = vaekit.open_run(copy)
    (copy / vaekit.latent.GMM_FILE).unlink()  # training saved one; a run without it has no GMM panel
    html = write_report(run).read_text(encoding="utf-8")
    assert 'id="samples"' in html and "Gaussian mixture" not in html

    vaekit.latent.fit_gmm_sampler(run, n_components=3)
    html = write_report(run).read_text(encoding="utf-8")
    assert "Gaussian mixture on the codes" in html
    _images(html)


def test_figure_helpers_make_png_data_uris():
    from vaekit.plotting.figures import array_to_data_uri, figure_to_data_uri, new_figure

    fig = new_figure(2, 1)
    fig.subplots().plot([0, 1], [1, 0])
    uri = figure_to_data_uri(fig)
    assert uri.startswith(PNG_URI)
    assert Image.open(io.BytesIO(base64.b64decode(uri[len(PNG_URI):]))).size == (220, 110)

    grey = (np.arange(12, dtype=np.uint8) * 20).reshape(3, 4, 1)
    img = Image.open(io.BytesIO(base64.b64decode(array_to_data_uri(grey, scale=3)[len(PNG_URI):])))
    assert img.size == (12, 9) and img.mode == "L"
    assert np.array_equal(np.asarray(img)[::3, ::3], grey[:, :, 0])
    with pytest.raises(ValueError):
        array_to_data_uri(torch.zeros(3, 4).numpy())  # float, not uint8
