"""Bits-back coding (BB-ANS): the round trip is exact, the coded size is the model's negative
ELBO (plus the one-off clean bits), and input the coder cannot take is one clear error."""

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import vaekit
from vaekit.compression.bitsback import clean_bits, compress_lossless, decompress_lossless, lanes
from vaekit.errors import VaekitError

pytest.importorskip("constriction")


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A small VAE trained on binarized 8x8 digits (0/1 uint8 in a .npy: a Bernoulli likelihood)."""
    root = tmp_path_factory.mktemp("bitsback")
    x = (load_digits().data.reshape(-1, 1, 8, 8) >= 8).astype(np.uint8)
    np.save(root / "digits.npy", x)
    run = vaekit.train(str(root / "digits.npy"), {"latent_dim": 4, "hidden": [64]}, {"epochs": 40, "seed": 0},
                       out=root / "run", progress=False)
    return run


def held_out(run, n):
    return run.load_data().test[:n]


def test_round_trip_is_exact_on_50_held_out_images(digits_run):
    x = held_out(digits_run, 50)
    assert set(x.unique().tolist()) == {0.0, 1.0}
    payload = compress_lossless(digits_run.model, x, seed=3)
    y = decompress_lossless(digits_run.model, payload, len(x), tuple(x.shape[1:]))
    assert y.dtype == torch.float32 and torch.equal(y, x)
    assert len(payload) * 8 > clean_bits(4, len(x))


def test_round_trip_of_one_image_and_of_none(digits_run):
    x = held_out(digits_run, 1)
    assert torch.equal(decompress_lossless(digits_run.model, compress_lossless(digits_run.model, x), 1, (1, 8, 8)), x)
    empty = torch.empty(0, 1, 8, 8)
    assert decompress_lossless(digits_run.model, compress_lossless(digits_run.model, empty), 0, (1, 8, 8)).shape == (
        0, 1, 8, 8)


def test_coded_size_is_the_negative_elbo_within_one_percent_plus_the_clean_bits(digits_run):
    model = digits_run.model
    x = digits_run.load_data().split("train")[:600]
    payload = compress_lossless(model, x)
    coded = len(payload) * 8 - clean_bits(4, len(x))
    torch.manual_seed(0)
    with torch.no_grad():  # the negative ELBO, averaged over 50 posterior draws per image, in bits
        elbo_nats = torch.stack([model.loss(x).elbo for _ in range(50)]).mean().item() * len(x)
    expected = elbo_nats / math.log(2)
    assert abs(coded - expected) / expected < 0.01, (coded, expected)  # measured: within 0.1%


def test_more_images_cost_fewer_clean_bits_per_image_and_the_overhead_is_bounded():
    assert lanes(1) == 1 and lanes(10_000) == lanes(100)
    assert clean_bits(32, 10_000) == clean_bits(32, 100) < 0.002 * 10_000 * 784  # < 0.002 bits/pixel on MNIST


def test_a_grey_image_is_refused_naming_what_was_expected(digits_run):
    x = held_out(digits_run, 4).clone()
    x[2, 0, 3, 3] = 0.5
    with pytest.raises(VaekitError, match=r"binarized images \(every value 0 or 1\); image 2 holds 0.5"):
        compress_lossless(digits_run.model, x)
    with pytest.raises(VaekitError, match=r"shape \(4, 1, 4, 16\), expected \(n, 1, 8, 8\)"):
        compress_lossless(digits_run.model, held_out(digits_run, 4).reshape(4, 1, 4, 16))


def test_a_truncated_payload_or_a_wrong_count_is_an_error_not_wrong_images(digits_run):
    model = digits_run.model
    x = held_out(digits_run, 40)
    payload = compress_lossless(model, x)
    with pytest.raises(VaekitError, match="lossless payload"):
        decompress_lossless(model, payload[:-8], len(x), (1, 8, 8))
    with pytest.raises(VaekitError, match="lossless payload"):
        decompress_lossless(model, payload[:-1], len(x), (1, 8, 8))
    with pytest.raises(VaekitError, match="lossless payload"):
        decompress_lossless(model, payload, len(x) - 3, (1, 8, 8))
    with pytest.raises(VaekitError, match="image shape"):
        decompress_lossless(model, payload, len(x), (1, 8, 9))


def test_only_a_bernoulli_vae_can_code(tmp_path):
    from vaekit.models import build

    gaussian = build({"model": "vae", "input_shape": [1, 8, 8], "latent_dim": 2, "hidden": [8],
                      "likelihood": "gaussian"})
    with pytest.raises(VaekitError, match="Bernoulli likelihood"):
        compress_lossless(gaussian, torch.zeros(1, 1, 8, 8))


DATA_DIR = os.environ.get("VAEKIT_DATA_DIR")


@pytest.mark.slow
@pytest.mark.skipif(not DATA_DIR or not (Path(DATA_DIR) / "mnist").is_dir(), reason="needs VAEKIT_DATA_DIR with MNIST")
def test_round_trip_is_exact_on_every_one_of_the_10000_binarized_mnist_test_images(tmp_path):
    run = vaekit.train("mnist-binarized", {"latent_dim": 32, "hidden": [512, 256]}, {"epochs": 1, "seed": 0},
                       out=tmp_path / "run", progress=False)
    x = run.load_data().test
    assert x.shape == (10_000, 1, 28, 28)
    payload = compress_lossless(run.model, x)
    assert torch.equal(decompress_lossless(run.model, payload, len(x), (1, 28, 28)), x)
    assert len(payload) * 8 / x.numel() < 0.3  # bits per pixel; bz2 needs ~0.25 on this set


@pytest.fixture(scope="module")
def digits_cvae():
    """An untrained CVAE for binarized 8x8 digits, and the digits with their labels: exactness
    and the coded size hold for any weights."""
    from vaekit.models import build

    digits = load_digits()
    x = torch.from_numpy((digits.data.reshape(-1, 1, 8, 8) >= 8).astype(np.float32))
    y = torch.from_numpy(digits.target).long()
    torch.manual_seed(0)
    model = build({"model": "cvae", "input_shape": [1, 8, 8], "latent_dim": 4, "hidden": [64], "num_classes": 10})
    return model.eval(), x, y


def test_a_cvae_codes_images_with_their_labels_and_decodes_both_exactly(digits_cvae):
    model, x, y = digits_cvae
    x, y = x[:40], y[:40]
    payload = compress_lossless(model, x, seed=1, labels=y)
    images, labels = decompress_lossless(model, payload, len(x), (1, 8, 8), with_labels=True)
    assert torch.equal(images, x) and torch.equal(labels, y)
    assert torch.equal(decompress_lossless(model, payload, len(x), (1, 8, 8)), x)


def test_the_label_costs_log2_of_the_classes_on_top_of_the_negative_elbo(digits_cvae):
    model, x, y = digits_cvae
    x, y = x[:400], y[:400]
    coded = len(compress_lossless(model, x, labels=y)) * 8 - clean_bits(4, len(x))
    torch.manual_seed(0)
    with torch.no_grad():
        elbo_nats = torch.stack([model.loss(x, y).elbo for _ in range(50)]).mean().item() * len(x)
    expected = elbo_nats / math.log(2) + len(x) * math.log2(10)
    assert abs(coded - expected) / expected < 0.01, (coded, expected)


def test_a_cvae_file_carries_its_labels_through_the_container(digits_cvae):
    from vaekit.compression import compress, decompress, unpack

    model, x, y = digits_cvae
    data = compress(model, x[:5], lossless=True, labels=y[:5])
    assert unpack(data)[0].mode == "lossless"
    images, labels = decompress(model, data, with_labels=True)
    assert torch.equal(images, x[:5]) and torch.equal(labels, y[:5])


def test_labels_are_required_by_a_conditional_model_and_refused_by_another(digits_cvae, digits_run):
    model, x, y = digits_cvae
    with pytest.raises(VaekitError, match="conditional: pass each image's class label"):
        compress_lossless(model, x[:3])
    with pytest.raises(VaekitError, match=r"3 class indices in 0..9"):
        compress_lossless(model, x[:3], labels=torch.tensor([0, 10, 2]))
    with pytest.raises(VaekitError, match="not conditional"):
        compress_lossless(digits_run.model, held_out(digits_run, 3), labels=y[:3])


def test_a_model_without_one_gaussian_posterior_is_refused():
    from vaekit.models import build

    hvae = build({"model": "hvae", "input_shape": [1, 8, 8], "groups": [2, 2], "hidden": [16]})
    with pytest.raises(VaekitError, match="posterior is not one Gaussian"):
        compress_lossless(hvae, torch.zeros(1, 1, 8, 8))
