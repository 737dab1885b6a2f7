"""The latent flow-matching sampler: learns a non-Gaussian code distribution, saves and loads exactly."""

import math

import pytest
import torch

import vaekit
from vaekit.errors import VaekitError
from vaekit.latent import DiffusionSampler, diffusion_sampler, sample
from vaekit.latent.diffusion import DIFFUSION_FILE

QUICK = {"hidden": 64, "blocks": 2, "train_steps": 800, "batch_size": 256, "steps": 16}


def _ring(n: int, seed: int = 0) -> torch.Tensor:
    """Codes on a circle of radius 3 in the first two of four dimensions: far from N(0, I)."""
    g = torch.Generator().manual_seed(seed)
    angle = torch.rand(n, generator=g) * 2 * math.pi
    z = torch.zeros(n, 4)
    z[:, 0], z[:, 1] = 3 * torch.cos(angle), 3 * torch.sin(angle)
    return z + 0.1 * torch.randn(n, 4, generator=g)


def _distance_to_data(draws: torch.Tensor, data: torch.Tensor) -> float:
    return float(torch.cdist(draws, data).min(dim=1).values.median())


@pytest.fixture(scope="module")
def ring_sampler():
    return DiffusionSampler(**QUICK).fit(_ring(2000))


def test_draws_lie_nearer_the_training_codes_than_prior_draws(ring_sampler):
    data = _ring(2000)
    flow = ring_sampler.sample(500, seed=1)
    prior = torch.randn(500, 4) * data.std(dim=0)  # the prior, even matched to the codes' spread
    assert _distance_to_data(flow, data) < 0.5 * _distance_to_data(prior, data)
    radius = flow[:, :2].norm(dim=1)
    assert 2.5 < float(radius.median()) < 3.5


def test_save_and_load_give_the_same_draws(ring_sampler, tmp_path):
    ring_sampler.save(tmp_path / "s.safetensors")
    loaded = DiffusionSampler.load(tmp_path / "s.safetensors")
    assert torch.equal(loaded.sample(20, seed=3, steps=4), ring_sampler.sample(20, seed=3, steps=4))
    assert loaded.settings() == ring_sampler.settings()
    assert loaded.train_loss_ == ring_sampler.train_loss_


def test_the_recorded_training_loss_beats_predicting_no_velocity(ring_sampler):
    # Predicting zero velocity costs E|noise - code|^2 = 2 per standardised dimension.
    assert 0 < ring_sampler.train_loss_ < 1.8


def test_a_damaged_file_and_bad_arguments_are_one_line_errors(ring_sampler, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not safetensors")
    with pytest.raises(VaekitError, match=r"bad\.safetensors: not a readable vaekit diffusion sampler"):
        DiffusionSampler.load(bad)
    with pytest.raises(VaekitError, match="steps: expected at least 1"):
        ring_sampler.sample(4, steps=0)
    with pytest.raises(VaekitError, match="not fitted yet"):
        DiffusionSampler().sample(4)


def test_a_run_fits_saves_and_reuses_its_sampler(tmp_path):
    run = vaekit.train({"source": "digits", "limit": 300}, {"latent_dim": 3, "hidden": [32]}, {"epochs": 2},
                       tmp_path / "r", progress=False)
    from vaekit.latent.diffusion import fit_diffusion_sampler

    fitted = fit_diffusion_sampler(run, **QUICK)
    assert (run.path / DIFFUSION_FILE).is_file()
    again = diffusion_sampler(run)  # the saved one, not a new fit
    assert torch.equal(again.sample(8, seed=2), fitted.sample(8, seed=2))
    images = sample(run.model, 8, sampler=again, seed=2)
    assert images.shape == (8, 1, 8, 8)
