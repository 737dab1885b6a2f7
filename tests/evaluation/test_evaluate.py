"""Evaluation and diagnosis: the NLL estimator against a model whose likelihood is known
exactly, active units and mutual information on models built to have them, the findings,
and the ``evaluate`` command."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from vaekit.cli import main
from vaekit.distributions import DiagonalGaussian, Gaussian
from vaekit.evaluation.evaluate import evaluate, evaluate_run, gradient_magnitude
from vaekit.models import VAE, VAEConfig
from vaekit.models.base import Model, ModelConfig
from vaekit.training.config import TrainConfig
from vaekit.training.diagnosis import Finding, diagnose
from vaekit.training.runs import open_run


class LinearGaussian(Model):
    """p(z) = N(0, I), p(x|z) = N(Wz + b, s^2 I), so p(x) = N(b, WW^T + s^2 I) exactly.

    The encoder is the exact posterior N(Sigma W^T (x - b) / s^2, Sigma) with the mean
    shrunk by ``shrink`` and the log-variance raised by ``widen``: deliberately imperfect
    unless shrink=1 and widen=0.
    """

    def __init__(self, shrink: float = 0.7, widen: float = 0.5, d: int = 5, latent: int = 2, s: float = 0.5):
        super().__init__(ModelConfig(input_shape=(d,), latent_dim=latent))
        g = torch.Generator().manual_seed(0)
        w, b = torch.randn(d, latent, generator=g), torch.randn(d, generator=g)
        cov = torch.linalg.inv(torch.eye(latent) + w.T @ w / s**2)
        self.w, self.b = nn.Parameter(w, requires_grad=False), nn.Parameter(b, requires_grad=False)
        self.a = nn.Parameter(shrink * cov @ w.T / s**2, requires_grad=False)
        self.logvar = nn.Parameter(torch.log(torch.diagonal(cov)) + widen, requires_grad=False)
        self.s = s

    def encode(self, x, cond=None):
        return DiagonalGaussian((x - self.b) @ self.a.T, self.logvar.expand(len(x), -1))

    def decode(self, z, cond=None):
        return Gaussian(z @ self.w.T + self.b, torch.tensor(2 * math.log(self.s)), event_ndim=1)

    def true_nll(self, x: torch.Tensor) -> float:
        cov = self.w @ self.w.T + self.s**2 * torch.eye(len(self.b))
        return -torch.distributions.MultivariateNormal(self.b, cov).log_prob(x).mean().item()

    def true_elbo(self, x: torch.Tensor) -> float:
        """The negative ELBO in closed form (Gaussian expectations of a linear decoder)."""
        q = self.encode(x)
        residual = (x - q.mean @ self.w.T - self.b).pow(2).sum(1) + (q.var @ self.w.T.pow(2)).sum(1)
        expected_ll = -0.5 * len(self.b) * math.log(2 * math.pi * self.s**2) - residual / (2 * self.s**2)
        return -(expected_ll - q.kl()).mean().item()

    def data(self, n: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(1)
        z = torch.randn(n, self.w.shape[1], generator=g)
        return z @ self.w.T + self.b + self.s * torch.randn(n, len(self.b), generator=g)


KEYS = {"elbo", "recon", "kl", "nll", "bits_per_dim", "kl_per_dim", "active_units", "mutual_info", "k", "n"}


def test_elbo_is_the_closed_form_and_k1_nll_equals_it_in_expectation():
    model = LinearGaussian()
    x = model.data(200)
    result = evaluate(model, x, k=1)
    assert set(result) >= KEYS and "sharpness_ratio" not in result  # not an image model
    assert result["elbo"] == pytest.approx(model.true_elbo(x), abs=0.15)
    assert result["kl"] == pytest.approx(sum(result["kl_per_dim"]))
    repeats = torch.tensor([evaluate(model, x, k=1, seed=s)["nll"] for s in range(40)])
    standard_error = repeats.std().item() / math.sqrt(len(repeats))
    assert abs(repeats.mean().item() - model.true_elbo(x)) < 4 * standard_error + 0.02


def test_nll_tightens_with_k_to_the_true_likelihood():
    model = LinearGaussian()
    x = model.data(200)
    true = model.true_nll(x)
    nll = {k: evaluate(model, x, k=k)["nll"] for k in (1, 100, 5000)}
    assert nll[1] > nll[100] > nll[5000] > true - 0.02
    assert abs(nll[5000] - true) < 0.06
    assert nll[1] - true > 2  # the imperfect encoder leaves a real gap for k to close
    ten = evaluate(model, x, k=10)
    assert ten["bits_per_dim"] == pytest.approx(ten["nll"] / (5 * math.log(2)))


def test_with_the_exact_posterior_nll_is_exact_and_mutual_information_is_the_kl():
    """q(z|x) = p(z|x): every importance weight equals p(x), and the aggregate posterior is
    the prior, so I(x; z) = E_x KL(q(z|x) || p(z))."""
    model = LinearGaussian(shrink=1.0, widen=0.0)
    x = model.data(2000)
    result = evaluate(model, x, k=3)
    assert result["nll"] == pytest.approx(model.true_nll(x), abs=0.005)
    assert result["mutual_info"] == pytest.approx(result["kl"], abs=0.05)
    assert result["mutual_info"] <= math.log(2000)


def _digits_vae(dead_dims=(), scale=10.0, ignore_x=False) -> VAE:
    """A VAE on 8x8 digits whose encoder means are strong in every dimension but ``dead_dims``
    (mean weights zeroed: the same posterior mean for every x); ``ignore_x``: q(z|x) = N(0, I)."""
    torch.manual_seed(0)
    model = VAE(VAEConfig(input_shape=(1, 8, 8), latent_dim=6, hidden=[32]))
    with torch.no_grad():
        head = model.to_posterior
        if ignore_x:
            head.weight.zero_()
            head.bias.zero_()
        else:
            head.weight[:6] *= scale
            head.weight[list(dead_dims)] = 0.0
    return model


def test_active_units_counts_the_dimensions_that_depend_on_x(digits_tensor):
    x = digits_tensor[:300]
    assert evaluate(_digits_vae(), x, k=2)["active_units"] == 6
    result = evaluate(_digits_vae(dead_dims=(0, 2, 5)), x, k=2)
    assert result["active_units"] == 3
    assert evaluate(_digits_vae(ignore_x=True), x, k=2)["active_units"] == 0


def test_mutual_information_is_zero_when_the_encoder_ignores_x(digits_tensor):
    x = digits_tensor[:300]
    collapsed = evaluate(_digits_vae(ignore_x=True), x, k=2)
    assert collapsed["mutual_info"] == pytest.approx(0.0, abs=1e-9)
    assert collapsed["kl"] == pytest.approx(0.0, abs=1e-6)
    informative = evaluate(_digits_vae(), x, k=2)
    assert 1.0 < informative["mutual_info"] <= math.log(300) + 1e-9


def test_image_models_get_reconstruction_error_and_sharpness(digits_tensor):
    result = evaluate(_digits_vae(ignore_x=True), digits_tensor[:200], k=2)
    assert 0 < result["recon_mse"] < 1 and 0 < result["sharpness_ratio"] < 1  # an untrained net: flat greys
    checkers = (torch.arange(8)[:, None] + torch.arange(8)[None, :]).remainder(2).float().expand(2, 1, 8, 8)
    blurred = torch.nn.functional.avg_pool2d(checkers, 3, stride=1, padding=1, count_include_pad=False)
    assert (gradient_magnitude(blurred) < gradient_magnitude(checkers)).all()
    assert gradient_magnitude(torch.ones(1, 1, 8, 8)).item() == 0


def test_a_collapsed_model_is_diagnosed_with_the_flags_to_try(digits_tensor):
    model = _digits_vae(ignore_x=True)
    metrics = evaluate(model, digits_tensor[:200], k=5)
    config = {"model": model.config.to_dict(), "train": TrainConfig().to_dict()}
    findings = diagnose(metrics, config)
    collapse = [f for f in findings if f.kind == "posterior-collapse"]
    assert len(collapse) == 1
    text = str(collapse[0])
    assert "0 of 6 latent dimensions active" in text
    assert "--free-bits 0.5" in text and "--kl-anneal linear:10" in text and "--hidden 16" in text


def test_remedies_already_in_use_are_not_suggested():
    metrics = {"kl": 0.01, "kl_per_dim": [0.005, 0.005], "active_units": 0, "mutual_info": 0.0}
    used = {"model": {"hidden": [64], "arch": "mlp"},
            "train": {"kl_anneal": "linear:10", "free_bits": 0.5, "beta": 0.5}}
    (finding,) = diagnose(metrics, used)
    text = str(finding)
    assert "--free-bits" not in text and "--beta" not in text and "--kl-anneal cyclical:4" in text
    partial = {"kl": 5.0, "kl_per_dim": [2.5, 2.5] + [0.001] * 6, "active_units": 2}
    (finding,) = diagnose(partial)
    assert finding.kind == "partial-collapse" and "2 of 8 latent dimensions active" in finding.seen
    assert "--latent-dim 2" in str(finding)


def test_blur_is_flagged_below_the_sharpness_threshold_with_capacity_remedies():
    healthy = {"kl": 20.0, "kl_per_dim": [1.0] * 20, "active_units": 20, "sharpness_ratio": 0.9, "recon_mse": 0.01}
    assert diagnose(healthy) == []
    blurry = dict(healthy, sharpness_ratio=0.3)
    (finding,) = diagnose(blurry, {"model": {"arch": "mlp", "hidden": [512, 256], "latent_dim": 20},
                                   "train": {"beta": 4.0}})
    assert isinstance(finding, Finding) and finding.kind == "blur" and "0.30" in finding.seen
    assert finding.remedies[0].startswith("--latent-dim 40")
    assert any(r.startswith("--beta 1") for r in finding.remedies)
    assert any(r.startswith("--hidden 1024,512") for r in finding.remedies)
    assert any(r.startswith("--arch conv") for r in finding.remedies)


# -- the command ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("evaluate") / "digits"
    # lr 3e-3, batch 32: enough steps on 500 digits for reconstructions well better than the mean
    # digit (MSE ~0.046 vs 0.074), so no flag of the diagnosis should fire
    assert main(["train", "digits", "--epochs", "25", "--latent-dim", "3", "--hidden", "64", "--limit", "500",
                 "--lr", "3e-3", "--batch-size", "32", "--quiet", "--out", str(out)]) == 0
    return out


def test_a_healthy_digits_model_has_no_finding(digits_run):
    metrics = evaluate_run(open_run(digits_run), k=10)
    assert metrics["active_units"] == 3 and metrics["kl"] > 1
    assert metrics["sharpness_ratio"] > metrics["sharpness_reference"] > 0
    assert metrics["findings"] == []  # no collapse, partial collapse (floor, MI) or blur


def test_evaluate_json_prints_one_object_with_every_figure(digits_run, capsys):
    assert main(["evaluate", str(digits_run), "--json", "--k", "10"]) == 0
    out = capsys.readouterr().out
    result = json.loads(out)
    assert set(result) >= KEYS | {"recon_mse", "sharpness_ratio", "findings", "split"}
    assert result["k"] == 10 and result["split"] == "test" and len(result["kl_per_dim"]) == 3
    assert isinstance(result["findings"], list)
    assert main(["evaluate", str(digits_run), "--k", "5", "--limit", "20"]) == 0
    table = capsys.readouterr().out
    assert "NLL" in table and "active units" in table and "20 examples" in table and "diagnosis" in table


def test_evaluate_with_a_bad_split_is_one_line_and_exit_2(digits_run):
    result = subprocess.run([sys.executable, "-m", "vaekit", "evaluate", str(digits_run), "--split", "dev"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0] == "error: --split: expected one of train, val, test, got 'dev'"


def test_train_objective_flags_reach_the_train_config(tmp_path):
    out = tmp_path / "iwae"
    assert main(["train", "digits", "--epochs", "1", "--latent-dim", "2", "--hidden", "16", "--limit", "100",
                 "--objective", "iwae", "--iw-samples", "3", "--quiet", "--out", str(out)]) == 0
    train = json.loads((out / "config.json").read_text())["train"]
    assert train["objective"] == "iwae" and train["iw_samples"] == 3
