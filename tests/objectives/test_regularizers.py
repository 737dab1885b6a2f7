"""The disentangling objectives: the total-correlation split, capacity annealing, FactorVAE's discriminator."""

import math

import pytest
import torch

import vaekit
from vaekit.distributions import DiagonalGaussian
from vaekit.errors import VaekitError
from vaekit.models import VAE, VAEConfig
from vaekit.objectives.regularizers import CapacityKL, FactorVAE, parse_capacity, permute_dims, tc_decomposition
from vaekit.training.config import TrainConfig

DATA = {"source": "digits", "limit": 200}
SMALL_MODEL = {"latent_dim": 4, "hidden": [32]}


def _posterior(batch: int, dim: int, seed: int = 0) -> DiagonalGaussian:
    g = torch.Generator().manual_seed(seed)
    return DiagonalGaussian(torch.randn(batch, dim, generator=g), torch.randn(batch, dim, generator=g) * 0.3 - 1.0)


def test_the_three_terms_add_up_to_the_one_sample_kl_and_in_expectation_to_the_closed_form():
    q = _posterior(64, 5)
    draws = [q.sample() for _ in range(400)]
    sums, one_sample = [], []
    for z in draws:
        parts = tc_decomposition(z, q.mean, q.logvar, dataset_size=10_000)
        sums.append(float(parts["mi"] + parts["tc"] + parts["dwkl"]))
        one_sample.append(float((q.log_prob(z) - (-0.5 * (math.log(2 * math.pi) + z.pow(2))).sum(1)).mean()))
    assert sums == pytest.approx(one_sample, abs=1e-4)  # exact per draw: the terms telescope
    closed_form = float(q.kl_per_dim().sum(1).mean())
    assert sum(sums) / len(sums) == pytest.approx(closed_form, rel=0.02)  # the KL in expectation


def test_total_correlation_is_larger_for_correlated_codes():
    # MWS estimates carry the same constant, (D - 1) log(N B), for any codes: compare two sets
    g = torch.Generator().manual_seed(1)
    base = torch.randn(1024, 1, generator=g)
    correlated = base.repeat(1, 2) + 0.05 * torch.randn(1024, 2, generator=g)
    independent = torch.randn(1024, 2, generator=g)
    logvar = torch.full((1024, 2), math.log(0.1**2))
    tc_corr = tc_decomposition(correlated, correlated, logvar, dataset_size=1024)["tc"]
    tc_ind = tc_decomposition(independent, independent, logvar, dataset_size=1024)["tc"]
    assert tc_corr > tc_ind + 1


def test_permuted_dims_keep_each_marginal_and_break_the_joint():
    z = torch.arange(40.0).reshape(20, 2).repeat(1, 1)
    z[:, 1] = z[:, 0]  # perfectly correlated
    torch.manual_seed(0)
    shuffled = permute_dims(z)
    for d in range(2):
        assert torch.equal(shuffled[:, d].sort().values, z[:, d].sort().values)
    assert not torch.equal(shuffled[:, 0], shuffled[:, 1])


def test_capacity_rises_linearly_then_holds_and_the_term_is_beta_times_the_gap():
    reg = CapacityKL(20.0, 10.0)
    reg.epoch = 5.0
    assert reg.capacity() == 10.0
    reg.epoch = 30.0
    assert reg.capacity() == 20.0
    model = VAE(VAEConfig(input_shape=(1, 8, 8), latent_dim=3, hidden=[16]))
    draws = model.infer(torch.rand(16, 1, 8, 8))
    term, parts = reg.term(draws, beta=100.0)
    kl = float(draws.kl_by_dim.sum(1).mean().detach())
    assert float(term) == pytest.approx(100 * abs(kl - 20.0), rel=1e-5) and float(parts["capacity"]) == 20.0


@pytest.mark.parametrize("spec", ["25", "a:b", "-1:10", "10:0", "1:2:3"])
def test_bad_capacity_specs_name_the_expected_form(spec):
    with pytest.raises(VaekitError, match=r"capacity: cannot read .* \(expected none or C_MAX:EPOCHS"):
        parse_capacity(spec)


def test_objectives_that_do_not_combine_are_refused_in_one_line():
    with pytest.raises(VaekitError, match="capacity: applies to the plain ELBO only"):
        TrainConfig(objective="btcvae", capacity="10:5")
    with pytest.raises(VaekitError, match="free_bits: does not combine with objective factorvae"):
        TrainConfig(objective="factorvae", free_bits=0.5)
    assert TrainConfig(objective="btcvae").tc_weight == 6.0 and TrainConfig(objective="elbo").tc_weight is None


def test_the_discriminator_learns_to_tell_correlated_codes_from_shuffled_ones():
    torch.manual_seed(0)
    reg = FactorVAE(tc_weight=1.0, latent_dim=2, hidden=32, layers=2, lr=1e-3)
    losses = []
    for _ in range(300):
        base = torch.randn(128, 1)
        losses.append(float(reg.train_discriminator(torch.cat([base, base + 0.1 * torch.randn(128, 1)], 1))))
    assert sum(losses[-20:]) / 20 < 0.5 < losses[0]  # log 2 = 0.69 is chance


def test_factorvae_gradients_reach_the_encoder_but_not_the_discriminator():
    model = VAE(VAEConfig(input_shape=(1, 8, 8), latent_dim=3, hidden=[16]))
    reg = FactorVAE(tc_weight=10.0, latent_dim=3, hidden=16, layers=1)
    loss = model.loss(torch.rand(8, 1, 8, 8), regularizer=reg)
    for p in reg.discriminator.parameters():
        p.grad = None
    loss.total.backward()
    assert all(p.grad is None for p in reg.discriminator.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())
    assert {"tc", "discriminator_loss"} <= set(loss.extras)


@pytest.mark.parametrize("objective", ["btcvae", "factorvae"])
def test_training_logs_the_decomposition_terms(tmp_path, objective):
    run = vaekit.train(DATA, SMALL_MODEL, {"epochs": 2, "batch_size": 50, "objective": objective}, tmp_path / "r",
                       progress=False)
    row = run.metrics[-1]
    assert math.isfinite(row["train_tc"]) and math.isfinite(row["val_elbo"])
    if objective == "btcvae":
        assert row["train_mi"] + row["train_tc"] + row["train_dwkl"] == pytest.approx(row["train_kl"], abs=0.05)


def test_capacity_training_logs_the_capacity(tmp_path):
    run = vaekit.train(DATA, SMALL_MODEL, {"epochs": 2, "batch_size": 50, "beta": 50, "capacity": "4:2"},
                       tmp_path / "r", progress=False)
    first, second = (r["train_capacity"] for r in run.metrics)  # means over each epoch's steps of C = 2 * epoch
    assert 0.5 < first < 1.0 < 2.5 < second < 3.0


def test_a_hierarchical_model_is_refused_by_btcvae_in_one_line():
    from vaekit.models import HVAE, HVAEConfig
    from vaekit.objectives.regularizers import BetaTCVAE

    model = HVAE(HVAEConfig(input_shape=(1, 8, 8), groups=[2, 2], hidden=[16]))
    with pytest.raises(VaekitError, match="objective btcvae: needs a model with one diagonal-Gaussian posterior"):
        model.loss(torch.rand(4, 1, 8, 8), regularizer=BetaTCVAE(6.0, 100))
