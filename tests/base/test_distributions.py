"""The numerics of the objective: closed forms against Monte Carlo and torch.distributions."""

import math

import pytest
import torch
from torch import distributions as td

from vaekit.distributions import Bernoulli, Categorical, DiagonalGaussian, Gaussian, standard_normal_log_prob


def test_kl_closed_form_matches_monte_carlo_estimate():
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(3, 5, generator=g)
    logvar = torch.randn(3, 5, generator=g) * 0.5
    q = DiagonalGaussian(mean, logvar)
    z = q.sample(200_000, generator=g)
    mc = (q.log_prob(z) - standard_normal_log_prob(z)).mean(dim=0)
    closed = q.kl()
    assert torch.allclose(mc, closed, atol=0.03), (mc, closed)
    # and the formula written in the brief, term by term
    brief = 0.5 * (mean.pow(2) + logvar.exp() - logvar - 1).sum(dim=1)
    assert torch.allclose(closed, brief, atol=1e-6)


def test_kl_between_two_gaussians_matches_torch():
    g = torch.Generator().manual_seed(1)
    q = DiagonalGaussian(torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g))
    p = DiagonalGaussian(torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g))
    ref = td.kl_divergence(td.Normal(q.mean, q.std), td.Normal(p.mean, p.std)).sum(-1)
    assert torch.allclose(q.kl(p), ref, atol=1e-5)


def test_reparameterization_sends_gradients_to_mean_and_logvar():
    mean = torch.zeros(2, 4, requires_grad=True)
    logvar = torch.zeros(2, 4, requires_grad=True)
    z = DiagonalGaussian(mean, logvar).rsample(generator=torch.Generator().manual_seed(0))
    (z ** 2).sum().backward()
    assert mean.grad is not None and mean.grad.abs().sum() > 0
    assert logvar.grad is not None and logvar.grad.abs().sum() > 0
    # d(z^2)/d mu = 2 z at mu = 0, logvar = 0 (sigma = 1): exactly the sampled noise doubled
    assert torch.allclose(mean.grad, 2 * z.detach())


def test_rsample_with_n_adds_a_leading_sample_dimension():
    q = DiagonalGaussian(torch.zeros(3, 2), torch.zeros(3, 2))
    assert q.rsample(7).shape == (7, 3, 2)
    assert q.log_prob(q.rsample(7)).shape == (7, 3)


def test_gaussian_log_prob_matches_torch_normal():
    x = torch.randn(4, 1, 3, 3)
    mean, logvar = torch.randn(4, 1, 3, 3), torch.tensor(0.3)
    ours = DiagonalGaussian(mean, logvar.expand_as(mean), event_ndim=3).log_prob(x)
    ref = td.Normal(mean, torch.exp(0.5 * logvar)).log_prob(x).sum(dim=(1, 2, 3))
    assert torch.allclose(ours, ref, atol=1e-5)
    assert torch.allclose(Gaussian(mean, logvar, event_ndim=3).log_prob(x), ref, atol=1e-5)


def test_bernoulli_log_prob_is_the_brief_cross_entropy_for_grey_levels():
    logits = torch.randn(5, 10)
    x = torch.rand(5, 10)  # grey levels, not only 0/1
    p = torch.sigmoid(logits)
    expected = (x * torch.log(p) + (1 - x) * torch.log(1 - p)).sum(-1)
    assert torch.allclose(Bernoulli(logits, 1).log_prob(x), expected, atol=1e-5)


def test_bernoulli_log_prob_is_finite_for_saturated_logits():
    logits = torch.tensor([[200.0, -200.0]])
    assert torch.isfinite(Bernoulli(logits, 1).log_prob(torch.tensor([[0.0, 1.0]]))).all()


def test_categorical_log_prob_matches_torch():
    logits = torch.randn(2, 6, 4)
    x = torch.randint(0, 4, (2, 6))
    ref = td.Categorical(logits=logits).log_prob(x).sum(-1)
    assert torch.allclose(Categorical(logits, 1).log_prob(x), ref, atol=1e-5)


def test_logvar_is_clamped_so_extreme_values_stay_finite():
    q = DiagonalGaussian(torch.zeros(1, 2), torch.tensor([[1e4, -1e4]]))
    assert torch.isfinite(q.kl()).all()


@pytest.mark.parametrize("sigma", [0.5, 2.0])
def test_standard_normal_log_prob_value(sigma):
    z = torch.full((1, 1), sigma)
    assert standard_normal_log_prob(z).item() == pytest.approx(-0.5 * (math.log(2 * math.pi) + sigma**2))


def test_a_point_mass_draws_its_point_and_takes_its_kl_from_the_model():
    from vaekit.distributions import LOGVAR_MIN, PointMass, Posterior

    point = torch.randn(3, 4)
    q = PointMass(point, lambda: torch.full((3, 4), 0.5))
    assert isinstance(q, Posterior) and not q.gaussian
    assert torch.equal(q.rsample(), point) and torch.equal(q.sample(5), point.expand(5, 3, 4))
    assert torch.equal(q.mode(), point) and torch.equal(q.log_prob(q.rsample(2)), torch.zeros(2, 3))
    assert torch.equal(q.kl(), torch.full((3,), 2.0)) and bool((q.logvar == LOGVAR_MIN).all())


def test_a_diagonal_gaussian_is_the_gaussian_posterior():
    q = DiagonalGaussian(torch.zeros(2, 3), torch.zeros(2, 3))
    assert q.gaussian and torch.equal(q.std, torch.ones(2, 3)) and torch.equal(q.kl(), torch.zeros(2))
