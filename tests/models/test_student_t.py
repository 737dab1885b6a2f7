"""The Student-t likelihood: its density, its draws, the models that use it, and why it is there."""

import pytest
import torch
from torch import distributions as td

import vaekit
from vaekit.distributions import StudentT
from vaekit.errors import VaekitError
from vaekit.models import build
from vaekit.models.observation import Observation

T = {"likelihood": "student-t", "learn_obs_std": True}


@pytest.mark.parametrize("df", [1.0, 3.0, 30.0])
def test_log_prob_matches_torch_student_t(df):
    mean, logvar = torch.randn(4, 1, 3, 3), 0.3 * torch.randn(1, 3, 3)
    x = mean + 3 * torch.randn(4, 1, 3, 3)
    ours = StudentT(mean, logvar, event_ndim=3, df=df).log_prob(x)
    ref = td.StudentT(df, mean, torch.exp(0.5 * logvar)).log_prob(x).sum(dim=(1, 2, 3))
    torch.testing.assert_close(ours, ref)


def test_draws_have_the_student_t_moments_and_follow_the_generator():
    mean, logvar = torch.full((200_000,), 2.0), torch.tensor(2.0).log()  # scale² = 2
    lik = StudentT(mean, logvar, event_ndim=1, df=5.0)
    draws = lik.sample(generator=torch.Generator().manual_seed(0))
    assert abs(float(draws.mean()) - 2.0) < 0.02
    assert abs(float(draws.var()) - 2.0 * 5 / 3) < 0.1  # scale² df / (df - 2)
    kurtosis = float(((draws - draws.mean()) ** 4).mean() / draws.var() ** 2)
    assert kurtosis > 5  # 9 in theory, a normal's is 3: heavy tails
    again = lik.sample(generator=torch.Generator().manual_seed(0))
    assert torch.equal(draws, again)


@pytest.mark.parametrize("options", [
    {"model": "vae", "input_shape": [5], "hidden": [16], "latent_dim": 2},
    {"model": "vae", "input_shape": [3, 9, 7], "arch": "conv", "hidden": [16], "channels": [4, 8], "latent_dim": 2},
    {"model": "hvae", "input_shape": [5], "hidden": [16], "groups": [2, 2]},
    {"model": "vae", "input_shape": [5], "hidden": [16], "latent_dim": 2, "heteroscedastic": True},
])
def test_models_decode_to_a_student_t_with_the_configured_df(options):
    model = build({**options, **T, "obs_df": 4.0})
    x = torch.randn(4, *options["input_shape"])
    lik = model.decode(model.encode(x).mean)
    assert isinstance(lik, StudentT) and lik.df == 4.0
    ref = td.StudentT(4.0, lik.mean, torch.exp(0.5 * lik.logvar)).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(lik.log_prob(x), ref)
    assert model.sample(3).shape == (3, *options["input_shape"])
    model.loss(x).total.backward()
    assert model.observation.obs_logvar.grad is not None


def test_save_then_load_keeps_the_df_and_the_learned_scale(tmp_path):
    torch.manual_seed(0)
    model = build({"model": "vae", "input_shape": [6], "hidden": [8], "latent_dim": 2, **T, "obs_df": 2.5})
    with torch.no_grad():
        model.observation.obs_logvar.copy_(torch.linspace(-1, 1, 6))
    model.save(tmp_path / "m")
    loaded = vaekit.load(tmp_path / "m")
    x = torch.randn(3, 6)
    assert loaded.config.obs_df == 2.5
    for_loaded, for_model = loaded.decode(loaded.encode(x).mean), model.decode(model.encode(x).mean)
    torch.testing.assert_close(for_loaded.log_prob(x), for_model.log_prob(x))


def _fitted_scale(likelihood: str, x: torch.Tensor) -> float:
    """The scale a decoder's learned std settles at when its mean is right (0) for every row."""
    observation = Observation(likelihood, (1,), learn=True)
    opt = torch.optim.Adam(observation.parameters(), lr=0.05)
    for _ in range(500):
        opt.zero_grad()
        (-observation(torch.zeros_like(x)).log_prob(x).mean()).backward()
        opt.step()
    return float(observation.obs_logvar.detach().exp().sqrt())


def test_a_few_gross_outliers_inflate_a_gaussian_fit_but_barely_a_student_t():
    """Why the family exists: anomalies left in training data should not set the scale."""
    g = torch.Generator().manual_seed(0)
    clean = torch.randn(500, 1, generator=g)
    dirty = torch.cat([clean, torch.full((25, 1), 30.0)])  # 5% of the rows, 30 stds out
    assert _fitted_scale("gaussian", clean) == pytest.approx(1.0, abs=0.1)
    assert _fitted_scale("gaussian", dirty) > 5  # sqrt(0.05 * 30²) ≈ 6.7: the outliers set it
    assert _fitted_scale("student-t", dirty) < 1.2  # about the clean rows' own scale


@pytest.mark.parametrize(("options", "message"), [
    ({"likelihood": "student-t", "obs_df": 0.0},
     r"obs_df: the Student-t's degrees of freedom must be positive, got 0.0"),
    ({"likelihood": "poisson"}, r"likelihood: 'poisson' is not one of bernoulli, gaussian, student-t"),
])
def test_bad_settings_name_the_field(options, message):
    with pytest.raises(VaekitError, match=message):
        build({"model": "vae", "input_shape": [4], **options})


def test_learned_degrees_of_freedom_follow_each_features_tails():
    """A normal feature's df climbs toward a Gaussian's, a Cauchy-like one's stays low."""
    torch.manual_seed(0)
    x = torch.stack([torch.randn(4000), td.StudentT(1.5).sample((4000,))], dim=1)
    observation = Observation("student-t", (2,), learn=True, obs_df=5.0, learn_df=True)
    opt = torch.optim.Adam(observation.parameters(), lr=0.05)
    for _ in range(600):
        opt.zero_grad()
        (-observation(torch.zeros_like(x)).log_prob(x).mean()).backward()
        opt.step()
    df = observation.obs_logdf.detach().exp()
    assert df[0] > 30 and df[1] < 3, df


def test_a_model_with_learned_df_saves_and_loads_them(tmp_path):
    model = build({"model": "vae", "input_shape": [3], "hidden": [8], "latent_dim": 2, **T, "learn_obs_df": True})
    with torch.no_grad():
        model.observation.obs_logdf.copy_(torch.tensor([0.1, 1.0, 3.0]))
    model.save(tmp_path / "m")
    loaded = vaekit.load(tmp_path / "m")
    assert torch.equal(loaded.observation.obs_logdf, model.observation.obs_logdf)
    lik = loaded.decode(torch.zeros(1, 2))
    torch.testing.assert_close(lik.df, torch.tensor([0.1, 1.0, 3.0]).exp())
    with pytest.raises(VaekitError, match=r"learn_obs_df: needs likelihood student-t \(degrees of freedom\), "
                                          r"got gaussian"):
        build({"model": "vae", "input_shape": [3], "likelihood": "gaussian", "learn_obs_df": True})
