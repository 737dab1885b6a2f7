"""The likelihood's own learning rate: which parameters get it, that the schedule keeps it, and
that a run with it resumes exactly."""

import pytest
import torch

import vaekit
from vaekit.models import VAE, VAEConfig
from vaekit.training.param_groups import LR_FACTOR, parameter_groups
from vaekit.training.trainer import TrainConfig, Trainer

from interrupts import train_interrupted

GAUSSIAN = {"latent_dim": 4, "hidden": [32], "likelihood": "gaussian", "learn_obs_std": True}
DATA = {"source": "digits", "limit": 200}


def _model(**config) -> VAE:
    torch.manual_seed(0)
    return VAE(VAEConfig(input_shape=(1, 8, 8), **{**GAUSSIAN, **config}))


def test_one_group_of_every_parameter_at_factor_1_or_without_a_learned_likelihood():
    model = _model()
    assert [g["params"] for g in parameter_groups(model, 1e-3)] == [list(model.parameters())]
    fixed = _model(learn_obs_std=False)  # its log-variance is a frozen parameter, still listed
    assert [g["params"] for g in parameter_groups(fixed, 1e-3, 30.0)] == [list(fixed.parameters())]


def test_the_observation_parameters_get_their_own_rate():
    model = _model(likelihood="student-t", learn_obs_df=True)
    network, own = parameter_groups(model, 1e-3, 30.0)
    assert {id(p) for p in own["params"]} == {id(model.observation.obs_logvar), id(model.observation.obs_logdf)}
    assert own["lr"] == pytest.approx(3e-2) and own[LR_FACTOR] == 30.0 and "lr" not in network
    assert len(network["params"]) + len(own["params"]) == len(list(model.parameters()))


@pytest.mark.parametrize("schedule", ["cosine", "constant"])
def test_the_schedule_keeps_the_ratio_and_the_scale_travels_further(tiny_digits, schedule):
    travelled = {}
    for factor in (1.0, 30.0):
        model = _model()
        start = model.observation.obs_logvar.detach().clone()
        trainer = Trainer(model, TrainConfig(epochs=2, batch_size=64, lr_schedule=schedule,
                                             likelihood_lr_factor=factor), progress=False)
        trainer.fit(tiny_digits)
        rates = [g["lr"] for g in trainer._optimizer.param_groups]
        if factor != 1.0:
            assert rates[1] == pytest.approx(factor * rates[0])
        travelled[factor] = (model.observation.obs_logvar.detach() - start).abs().mean().item()
    assert travelled[30.0] > 5 * travelled[1.0]


def test_a_run_with_its_own_likelihood_rate_resumes_exactly(tmp_path, monkeypatch):
    train = {"epochs": 3, "batch_size": 64, "likelihood_lr_factor": 10.0}
    full = vaekit.train(DATA, GAUSSIAN, train, tmp_path / "full", progress=False)
    train_interrupted((DATA, GAUSSIAN, train), tmp_path / "cut", monkeypatch, 1)
    resumed = vaekit.resume(tmp_path / "cut", progress=False)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_factor_must_be_positive():
    with pytest.raises(vaekit.VaekitError, match="likelihood_lr_factor"):
        TrainConfig(likelihood_lr_factor=0.0)
