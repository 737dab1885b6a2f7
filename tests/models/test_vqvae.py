"""VQ-VAE: quantizer mechanics, the bound under the uniform prior, the PixelCNN prior, save/load, CLI."""

import json
import math

import pytest
import torch

import vaekit
from vaekit.errors import VaekitError
from vaekit.models import VQVAE, VQVAEConfig, build
from vaekit.models.code_prior import CodePrior, train_prior
from vaekit.models.quantizer import VectorQuantizer, usage_figures
from vaekit.training.trainer import TrainConfig, Trainer

SMALL = {"input_shape": (1, 8, 8), "channels": [8, 16], "res_blocks": 1, "res_channels": 8, "codebook_size": 16,
         "code_dim": 4, "prior_channels": 8, "prior_layers": 2, "prior_epochs": 2, "dead_code_steps": 0}


def small_model(**overrides) -> VQVAE:
    torch.manual_seed(0)
    return VQVAE(VQVAEConfig(**{**SMALL, **overrides}))


def test_latent_dim_is_derived_and_round_trips():
    config = VQVAEConfig(**SMALL)
    assert config.grid == (2, 2) and config.latent_dim == 4 * 2 * 2
    assert VQVAEConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert VQVAEConfig(input_shape=(1, 28, 28)).latent_dim == 64 * 7 * 7


@pytest.mark.parametrize(("field", "value"), [("codebook_size", 0), ("decay", 1.0), ("likelihood", "poisson"),
                                              ("commitment", -1.0), ("latent_dim", 5), ("channels", [])])
def test_bad_config_field_is_one_line_error_naming_it(field, value):
    with pytest.raises(VaekitError) as e:
        VQVAEConfig(**{**SMALL, field: value})
    assert str(e.value).startswith(f"{field}:") and "\n" not in str(e.value)


def test_straight_through_gradients_reach_the_encoder(digits_tensor):
    model = small_model()
    model.train()
    x = digits_tensor[:32]
    draws = model.infer(x)
    (-draws.log_px_z.mean()).backward()  # the reconstruction term alone
    grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0


def test_ema_update_moves_codes_to_the_mean_of_their_assigned_outputs():
    q = VectorQuantizer(2, 2, decay=0.9, eps=1e-5, kmeans_init=False)
    q.codebook.data = torch.tensor([[0.0, 0.0], [10.0, 10.0]])
    q.ema_count.fill_(1.0)
    q.ema_sum.copy_(q.codebook.data)
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [9.0, 9.0]])  # three near code 0, one near code 1
    q.train()
    out = q(z)
    assert out.indices.tolist() == [0, 0, 0, 1]
    count = 0.9 * torch.ones(2) + 0.1 * torch.tensor([3.0, 1.0])
    total = 0.9 * torch.tensor([[0.0, 0.0], [10.0, 10.0]]) + 0.1 * torch.stack([z[:3].sum(0), z[3]])
    n = count.sum()
    expected = total / ((count + 1e-5) / (n + 2 * 1e-5) * n).unsqueeze(1)
    torch.testing.assert_close(q.codebook.data, expected)
    assert (q.codebook.data[0] - z[:3].mean(0)).norm() < torch.tensor([0.0, 0.0]).sub(z[:3].mean(0)).norm()


def test_eval_mode_leaves_the_codebook_alone():
    q = VectorQuantizer(4, 2, kmeans_init=True)
    before = {k: v.clone() for k, v in q.state_dict().items()}
    q.eval()
    q(torch.randn(20, 2))
    assert all(torch.equal(before[k], v) for k, v in q.state_dict().items())


def test_dead_codes_are_revived_onto_encoder_outputs():
    torch.manual_seed(0)
    q = VectorQuantizer(3, 2, kmeans_init=False, dead_code_steps=3)
    q.codebook.data = torch.tensor([[0.0, 0.0], [100.0, 100.0], [-100.0, 100.0]])  # codes 1 and 2 never win
    q.ema_count.fill_(1.0)
    q.ema_sum.copy_(q.codebook.data)
    q.train()
    z = torch.randn(16, 2) * 0.1 + torch.tensor([5.0, 5.0])
    for _ in range(2):
        q(z)
    assert q.unused_steps[1:].tolist() == [2, 2]
    assert q.codebook.data[1].tolist() == pytest.approx([100.0, 100.0], rel=1e-3)  # not moved yet
    q(z)  # the third unused step: both are moved onto rows of this batch
    for k in (1, 2):
        assert any(torch.allclose(q.codebook.data[k], row) for row in z)
    assert q.unused_steps[1:].tolist() == [0, 0]


def test_kmeans_init_places_codes_at_the_data_clusters():
    torch.manual_seed(0)
    centres = torch.tensor([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0], [0.0, -5.0]])
    z = (centres.repeat_interleave(50, 0) + 0.05 * torch.randn(200, 2))
    q = VectorQuantizer(4, 2, kmeans_init=True)
    q.train()
    q(z[torch.randperm(200)])
    assert bool(q.initialized)
    distances = torch.cdist(centres, q.codebook.data)
    assert distances.min(1).values.max() < 0.1  # every cluster has a code at its centre
    assert sorted(q.ema_count.tolist()) == pytest.approx([50.0] * 4, abs=1.5)


def test_usage_and_perplexity_of_a_constructed_assignment():
    counts = torch.tensor([5, 5, 0, 0])
    figures = usage_figures(counts)
    assert figures["codebook_usage"].item() == pytest.approx(0.5)
    assert figures["perplexity"].item() == pytest.approx(2.0)
    assert usage_figures(torch.tensor([3, 3, 3, 3]))["perplexity"].item() == pytest.approx(4.0)
    model = small_model()
    x = torch.rand(6, 1, 8, 8)
    held = model.held_out_figures(x)
    grids = model.code_grids(x)
    used = torch.bincount(grids.flatten(), minlength=16)
    assert held["codebook_usage"] == pytest.approx((used > 0).float().mean().item())


def test_elbo_terms_under_the_uniform_prior(digits_tensor):
    model = small_model()
    model.eval()
    x = digits_tensor[:10]
    loss = model.loss(x)
    h, w = model.config.grid
    assert loss.kl.item() == pytest.approx(h * w * math.log(16), rel=1e-5)
    assert loss.kl_per_dim.shape == (model.config.latent_dim,)
    draws = model.infer(x, n=3)
    assert draws.z.shape == (3, 10, model.config.latent_dim)
    neg_elbo = -(draws.log_px_z + draws.log_pz - draws.log_qz)[0].mean()
    assert (loss.recon + loss.kl).item() == pytest.approx(neg_elbo.item(), rel=1e-5)
    assert torch.allclose(model.log_likelihood(x, k=4), draws.log_weights[0], atol=1e-3)  # a point mass: exact
    assert set(loss.extras) == {"perplexity", "codebook_usage"} and loss.extras["perplexity"].dim() == 0


def test_prior_masking_is_causal():
    torch.manual_seed(0)
    prior = CodePrior(10, (4, 4), channels=8, layers=3)
    codes = torch.randint(10, (1, 4, 4))
    base = prior(codes)
    for pos in range(16):
        i, j = divmod(pos, 4)
        changed = codes.clone()
        changed[0, i, j] = (changed[0, i, j] + 1) % 10
        diff = (prior(changed) - base).abs().amax(1)[0].flatten()
        assert diff[:pos + 1].max() == 0  # this position and every earlier one: unchanged
    first = prior(torch.zeros(1, 4, 4, dtype=torch.long))
    assert torch.allclose(first[0, :, 0, 0], prior(torch.full((1, 4, 4), 3))[0, :, 0, 0])


def test_prior_logits_of_a_row_need_only_the_rows_above_it():
    """Sampling runs the net on rows 0..i to draw row i: it must give the full grid's logits."""
    torch.manual_seed(0)
    prior = CodePrior(10, (5, 4), channels=8, layers=3).eval()
    codes = torch.randint(10, (3, 5, 4))
    full = prior(codes)
    for i in range(5):
        assert torch.allclose(prior(codes[:, :i + 1])[:, :, i], full[:, :, i], atol=1e-5)


def test_prior_learns_and_samples_with_a_temperature():
    torch.manual_seed(0)
    prior = CodePrior(6, (3, 3), channels=8, layers=2)
    codes = torch.tensor([[0, 1, 2], [3, 4, 5], [0, 1, 2]]).expand(64, 3, 3).clone()
    figures = train_prior(prior, codes, epochs=40, batch_size=16, lr=1e-2, seed=0)
    assert figures["train_nll"] < 9 * math.log(6) / 2
    g = torch.Generator().manual_seed(0)
    cold = prior.sample(20, temperature=0.1, generator=g)
    hot = prior.sample(20, temperature=5.0, generator=g)
    assert cold.shape == (20, 3, 3) and int(hot.min()) >= 0 and int(hot.max()) < 6
    assert (cold == codes[:20]).float().mean() > (hot == codes[:20]).float().mean()


def test_fit_prior_then_sample_and_save_load_round_trip(tmp_path, tiny_digits):
    model = small_model(dead_code_steps=5)
    trainer = Trainer(model, TrainConfig(epochs=2, batch_size=32, seed=0, fused_optimizer=False))
    trainer.fit(tiny_digits)
    assert not bool(model.prior_fitted)
    figures = model.fit_prior(tiny_digits.train, seed=0)
    assert bool(model.prior_fitted) and figures["epochs"] == 2 and figures["val_nll"] is not None
    model.eval()
    samples = model.sample(8, temperature=0.8, generator=torch.Generator().manual_seed(1))
    assert samples.shape == (8, 1, 8, 8) and float(samples.min()) >= 0 and float(samples.max()) <= 1
    model.save(tmp_path / "m")
    loaded = vaekit.load(tmp_path / "m")
    for k, v in model.state_dict().items():  # EMA state, usage counters, init flag, prior
        assert torch.equal(v, loaded.state_dict()[k]), k
    x = tiny_digits.test[:16]
    torch.testing.assert_close(loaded.loss(x).elbo, model.loss(x).elbo)
    torch.testing.assert_close(loaded.log_likelihood(x, k=2), model.log_likelihood(x, k=2))
    torch.testing.assert_close(loaded.sample(4, generator=torch.Generator().manual_seed(2)),
                               model.sample(4, generator=torch.Generator().manual_seed(2)))
    assert loaded.loss(x).kl.item() != pytest.approx(4 * math.log(16))  # the fitted prior, not the uniform


def test_unfitted_prior_samples_uniform_codes_with_a_warning():
    model = small_model()
    with pytest.warns(UserWarning, match="not fitted"):
        z = model.prior_sample(5, generator=torch.Generator().manual_seed(0))
    assert z.shape == (5, model.config.latent_dim)


def test_non_ema_codebook_is_trained_by_its_loss(digits_tensor):
    model = small_model(ema=False)
    model.train()
    loss = model.loss(digits_tensor[:32])
    loss.total.backward()
    assert model.quantizer.codebook.requires_grad and model.quantizer.codebook.grad.abs().sum() > 0
    assert build(model.config.to_dict()).quantizer.codebook.requires_grad


def test_cli_train_sample_evaluate(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from vaekit.cli import app

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    out = tmp_path / "vq"
    result = runner.invoke(app, ["train", "digits", "--model", "vqvae", "--epochs", "1", "--limit", "200",
                                 "--codebook-size", "16", "--code-dim", "4", "--conv-channels", "8,16",
                                 "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())["model"]
    assert (config["model"], config["codebook_size"], config["code_dim"], config["channels"]) == \
        ("vqvae", 16, 4, [8, 16])
    assert "prior" in json.loads((out / "summary.json").read_text())
    assert (out / "samples.png").is_file() and (out / "report.html").is_file()
    result = runner.invoke(app, ["sample", str(out), "-n", "4", "--temperature", "0.8", "-o", str(tmp_path / "s.png")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["evaluate", str(out), "--k", "2", "--limit", "50", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert 0 < figures["codebook_usage"] <= 1 and figures["perplexity"] >= 1


def test_multi_process_training_is_refused_with_one_line(tiny_digits, monkeypatch):
    # Each process would move its own EMA codebook: refused before any step under torchrun.
    from vaekit.training import distributed

    monkeypatch.setattr(distributed, "init_from_env", lambda device: None)
    monkeypatch.setattr(distributed, "active", lambda: True)
    monkeypatch.setattr(distributed, "rank", lambda: 0)
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    trainer = Trainer(small_model(), TrainConfig(epochs=1, batch_size=32), progress=False)
    with pytest.raises(VaekitError, match="does not support multi-process training"):
        trainer.fit(tiny_digits)


def test_evaluate_leaves_out_spread_figures_for_the_point_mass_posterior(digits_tensor):
    figures = vaekit.evaluate(small_model().eval(), digits_tensor[:40], k=2)
    assert "active_units" not in figures and "mutual_info" not in figures
    assert 0 < figures["codebook_usage"] <= 1
