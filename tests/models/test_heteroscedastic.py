"""A Gaussian decoder with a std per example: its likelihood, its floor, its layout, and that it learns."""

import math

import numpy as np
import pytest
import torch

import vaekit
from vaekit.anomaly import AnomalyInputError, VAEAnomalyDetector, load_detector
from vaekit.errors import VaekitError
from vaekit.models import build

HET = {"likelihood": "gaussian", "heteroscedastic": True}


@pytest.mark.parametrize("options", [
    {"model": "vae", "input_shape": [5], "hidden": [16], "latent_dim": 2},
    {"model": "vae", "input_shape": [3, 9, 7], "arch": "conv", "hidden": [16], "channels": [4, 8], "latent_dim": 2},
    {"model": "hvae", "input_shape": [5], "hidden": [16], "groups": [2, 2]},
])
def test_each_example_gets_its_own_std_and_the_likelihood_is_the_normal_density(options):
    model = build({**options, **HET})
    x = torch.randn(4, *options["input_shape"])
    lik = model.decode(model.encode(x).mean)
    assert lik.mean.shape == x.shape and lik.logvar.shape == x.shape
    assert not torch.allclose(lik.logvar[0], lik.logvar[1])  # the std depends on the example
    normal = torch.distributions.Normal(lik.mean, torch.exp(0.5 * lik.logvar))
    expected = normal.log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(lik.log_prob(x), expected)
    assert model.sample(3).shape == (3, *options["input_shape"])
    model.loss(x).total.backward()
    assert model.observation.obs_logvar.grad is not None


def test_the_std_never_falls_below_the_floor():
    model = build({"model": "vae", "input_shape": [4], "hidden": [8], "latent_dim": 2, **HET, "min_obs_std": 0.2})
    with torch.no_grad():
        model.decoder.net[-1].bias.fill_(-1e4)  # every raw std output far below the floor
    lik = model.decode(torch.zeros(2, 2))
    torch.testing.assert_close(torch.exp(0.5 * lik.logvar), torch.full((2, 4), 0.2))


def test_conv_decoder_puts_each_elements_parameters_last():
    """Channel 2c of the last transposed conv is element c's mean, channel 2c + 1 its std."""
    model = build({"model": "vae", "input_shape": [2, 8, 8], "arch": "conv", "hidden": [8], "channels": [4],
                   "latent_dim": 2, **HET})
    last = model.decoder.deconvs[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([1.0, 0.0, -1.0, 3.0]))
    with torch.no_grad():
        lik = model.decode(torch.zeros(1, 2))
    assert torch.all(lik.mean[0, 0] == 1.0) and torch.all(lik.mean[0, 1] == -1.0)
    assert float(lik.logvar[0, 1].mean()) > float(lik.logvar[0, 0].mean()) + 2.5


def test_it_learns_a_noise_level_that_varies_between_examples():
    """x2's noise grows with |x1|: a per-example std models that, one std per feature cannot."""
    def data(n, seed):
        g = torch.Generator().manual_seed(seed)
        u = torch.randn(n, generator=g)
        return torch.stack([u, (0.05 + 0.9 * u.abs()) * torch.randn(n, generator=g)], dim=1)

    train, test = data(2000, 0), data(1000, 1)
    nll = {}
    for het in (False, True):
        torch.manual_seed(0)
        model = build({"model": "vae", "input_shape": [2], "hidden": [32, 32], "latent_dim": 1,
                       "likelihood": "gaussian", "learn_obs_std": True, "heteroscedastic": het})
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(600):
            batch = train[torch.randint(0, len(train), (128,))]
            opt.zero_grad()
            model.loss(batch).total.backward()
            opt.step()
        with torch.no_grad():
            nll[het] = float(-model.log_likelihood(test, k=50).mean())
    assert nll[True] < nll[False] - 0.2, nll


@pytest.mark.parametrize(("options", "message"), [
    ({"likelihood": "bernoulli", "heteroscedastic": True},
     r"heteroscedastic: needs likelihood gaussian or student-t \(a per-example std\), got bernoulli"),
    ({**HET, "min_obs_std": 1.5}, r"min_obs_std: must be positive and below obs_std \(1\), got 1.5"),
    ({**HET, "min_obs_std": 0.0}, r"min_obs_std: must be positive and below obs_std \(1\), got 0.0"),
])
def test_bad_settings_name_the_field(options, message):
    with pytest.raises(VaekitError, match=message):
        build({"model": "vae", "input_shape": [4], **options})


def test_save_then_load_gives_identical_likelihoods(tmp_path):
    torch.manual_seed(0)
    model = build({"model": "vae", "input_shape": [1, 8, 8], "arch": "conv", "hidden": [16], "channels": [4, 8],
                   "latent_dim": 3, **HET})
    model.save(tmp_path / "m")
    loaded = vaekit.load(tmp_path / "m")
    lik, again = model.decode(torch.ones(2, 3)), loaded.decode(torch.ones(2, 3))
    assert torch.equal(lik.mean, again.mean) and torch.equal(lik.logvar, again.logvar)
    assert loaded.config == model.config


def test_detector_with_a_per_example_std_fits_scores_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    u = rng.normal(size=(400, 1))
    rows = np.hstack([u, u ** 2, (0.05 + np.abs(u)) * rng.normal(size=(400, 1))]).astype(np.float32)
    network = {"hidden": (16,), "heteroscedastic": True, "min_obs_std": 0.1, "k": 4}
    det = VAEAnomalyDetector(epochs=3, model=network).fit(rows)
    assert det.model_.config.heteroscedastic and det.model_.config.min_obs_std == 0.1
    det.save(tmp_path / "det")
    loaded = load_detector(tmp_path / "det")
    np.testing.assert_array_equal(loaded.decision_function(rows[:50]), det.decision_function(rows[:50]))
    assert loaded.get_params() == det.get_params()
    images = rng.random((40, 1, 6, 6), dtype=np.float32)
    on_images = VAEAnomalyDetector(epochs=1, model={"heteroscedastic": True}).fit(images)
    assert on_images.model_.config.likelihood == "gaussian"
    with pytest.raises(AnomalyInputError, match=r"heteroscedastic: needs a Gaussian or Student-t likelihood "
                                                r"\(a std per example\), got likelihood='bernoulli'"):
        VAEAnomalyDetector(epochs=1, model={"heteroscedastic": True, "likelihood": "bernoulli"}).fit(images)
    with pytest.raises(AnomalyInputError, match=r"min_obs_std: expected a number in \(0, obs_std=1.0\), got 2"):
        VAEAnomalyDetector(epochs=1, model={"heteroscedastic": True, "min_obs_std": 2}).fit(rows)
    with pytest.raises(AnomalyInputError, match=r"heteroscedastic: expected True or False, got 'yes'"):
        VAEAnomalyDetector(epochs=1, model={"heteroscedastic": "yes"}).fit(rows)
    assert math.isfinite(float(det.threshold_))
