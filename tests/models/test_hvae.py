"""The hierarchical VAE: per-group KL terms, the ELBO as the sum of its parts, the
hierarchical proposal in the importance-sampled NLL, save/load, config errors, the CLI."""

from __future__ import annotations

import json

import pytest
import torch

import vaekit
from vaekit.errors import VaekitError
from vaekit.models import HVAE, HVAEConfig, build


@pytest.fixture
def model() -> HVAE:
    torch.manual_seed(0)
    net = build(HVAEConfig(input_shape=(1, 8, 8), groups=[3, 5], hidden=[32, 16]))
    with torch.no_grad():  # random, x-dependent posteriors and priors (the default init is gentle)
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net.eval()


@pytest.fixture
def x() -> torch.Tensor:
    return (torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(1)) > 0.5).float()


def test_latent_is_the_concatenation_of_the_groups(model: HVAE, x: torch.Tensor) -> None:
    assert model.config.latent_dim == 8
    draws = model.infer(x, n=4)
    assert draws.z.shape == (4, 6, 8)
    assert draws.kl_by_dim.shape == (6, 8)
    assert model.encode(x).mean.shape == (6, 8)
    assert model.sample(5).shape == (5, 1, 8, 8)


def test_kl_terms_are_per_group_and_add_up(model: HVAE, x: torch.Tensor) -> None:
    torch.manual_seed(5)
    draws = model.infer(x)
    per_group = [draws.extras["kl_group0"], draws.extras["kl_group1"]]
    assert torch.allclose(draws.kl_by_dim[:, :3].sum(1).mean(), per_group[0])
    assert torch.allclose(draws.kl_by_dim[:, 3:].sum(1).mean(), per_group[1])
    assert per_group[0] > 0.01 and per_group[1] > 0.01  # both groups carry information here
    torch.manual_seed(5)  # the same posterior draw
    loss = model.loss(x)
    assert torch.allclose(loss.kl, per_group[0] + per_group[1])
    # The ELBO is the sum of its parts: reconstruction plus every group's KL.
    assert torch.allclose(loss.elbo, loss.recon + loss.kl)
    assert torch.allclose(loss.total, loss.recon + loss.kl)


def test_closed_form_group_kls_match_their_monte_carlo_estimate(model: HVAE, x: torch.Tensor) -> None:
    # E_q[log q(z|x) - log p(z)] over many draws equals the sum of the per-group closed-form
    # KLs (each conditional on the drawn parents), averaged over the same draws.
    torch.manual_seed(3)
    draws = model.infer(x, n=20000, generator=torch.Generator().manual_seed(2))
    monte_carlo = (draws.log_qz - draws.log_pz).mean(0)
    assert torch.allclose(monte_carlo, draws.kl_by_dim.sum(1), rtol=0.03, atol=0.03)


def test_prior_density_matches_the_top_down_pass(model: HVAE, x: torch.Tensor) -> None:
    draws = model.infer(x, n=3)
    assert torch.allclose(model.prior_log_prob(draws.z), draws.log_pz, atol=1e-5)
    assert torch.allclose(model.decode(draws.z).log_prob(x), draws.log_px_z, atol=1e-4)


def test_importance_sampled_likelihood_uses_the_hierarchical_posterior(model: HVAE, x: torch.Tensor) -> None:
    g = torch.Generator().manual_seed(0)
    elbo = -model.loss(x).elbo.item()
    ll_1 = torch.stack([model.log_likelihood(x, k=1, generator=g) for _ in range(400)]).mean(0)
    ll_big = model.log_likelihood(x, k=2000, generator=g)
    assert ll_1.mean().item() == pytest.approx(elbo, abs=1.0)  # k=1 is the ELBO in expectation
    assert (ll_big > ll_1).all()  # and the bound tightens with k


def test_iwae_objective_trains_an_hvae(x: torch.Tensor) -> None:
    torch.manual_seed(0)
    net = build(HVAEConfig(input_shape=(1, 8, 8), groups=[2, 3], hidden=[16]))
    loss = net.loss(x, iw_samples=4)
    loss.total.backward()
    assert all(p.grad is not None for n, p in net.named_parameters() if "obs" not in n)


def test_save_and_load_give_the_same_model(model: HVAE, x: torch.Tensor, tmp_path) -> None:
    model.save(tmp_path)
    loaded = vaekit.load(tmp_path)
    assert isinstance(loaded, HVAE) and loaded.config.groups == [3, 5]
    assert torch.equal(loaded.encode(x).mean, model.encode(x).mean)


@pytest.mark.parametrize("fields, message", [
    ({"groups": []}, "groups"),
    ({"groups": [4, 0]}, "groups"),
    ({"groups": [4, 4], "latent_dim": 5}, "latent_dim"),
    ({"cell_blocks": -1}, "cell_blocks"),
    ({"likelihood": "poisson"}, "likelihood"),
])
def test_bad_config_fields_are_named(fields: dict, message: str) -> None:
    with pytest.raises(VaekitError, match=message):
        HVAEConfig(**fields)


def test_cli_trains_and_evaluates_an_hvae(tmp_path) -> None:
    from typer.testing import CliRunner

    from vaekit.cli import app

    def cli(*args: str):
        return CliRunner().invoke(app, list(args))

    out = tmp_path / "run"
    result = cli("train", "digits", "--model", "hvae", "--latent-groups", "2,4", "--hidden", "32",
                 "--epochs", "2", "--quiet", "--out", str(out))
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["model"] == "hvae" and config["model"]["latent_dim"] == 6
    assert "train_kl_group1" in json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    result = cli("evaluate", str(out), "--k", "5", "--limit", "100", "--json")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert len(figures["kl_per_group"]) == 2
    assert figures["kl"] == pytest.approx(sum(figures["kl_per_group"]), rel=0.2)


def test_resampling_below_keeps_the_top_group_and_varies_the_others(model: HVAE, x: torch.Tensor) -> None:
    """Keeping the top group of two: the decodings differ between draws (the lower group is
    drawn), yet each is the decoding of z whose top group is x's posterior mean."""
    draws = [model.resample_below(x, 1, generator=torch.Generator().manual_seed(s)) for s in (0, 1)]
    assert not torch.allclose(draws[0], draws[1])
    top = model.encode(x).mean[:, :3]
    descent = model._descend((len(x),), features=model._ascend(x), draw="mean", inferred=1,
                             generator=torch.Generator().manual_seed(0))
    assert torch.allclose(descent.z[0], top, atol=1e-6)
    assert torch.allclose(model.decode(torch.cat(descent.z, dim=-1)).mean, draws[0], atol=1e-6)


def test_a_convolutional_hvae_trains_saves_and_draws_its_levels_picture(tmp_path) -> None:
    run = vaekit.train({"source": "digits", "limit": 200}, {"model": "hvae", "arch": "conv", "channels": [8, 16],
                                                            "groups": [2, 4], "hidden": [32]},
                       {"epochs": 2, "batch_size": 50}, tmp_path / "run", progress=False)
    assert isinstance(run.model.trunk, torch.nn.Module) and run.model.config.arch == "conv"
    assert any(isinstance(m, torch.nn.Conv2d) for m in run.model.modules())
    from PIL import Image

    picture = Image.open(tmp_path / "run" / "levels.png")
    assert picture.size[0] == picture.size[1]  # 8 held-out digits x (input, reconstruction, 6 draws)
    assert "What each level controls" in (tmp_path / "run" / "report.html").read_text()
    x = vaekit.data.load("digits", limit=200).test[:4]
    loaded = vaekit.load(tmp_path / "run")
    assert torch.equal(loaded.reconstruct(x), run.model.reconstruct(x))


def test_conv_is_refused_for_tables() -> None:
    with pytest.raises(VaekitError, match="arch conv needs image data"):
        HVAEConfig(input_shape=(5,), arch="conv")
