"""The VAE speaks the protocol: shapes, loss parts, sampling, likelihood, save/load."""

import pytest
import torch

import vaekit
from vaekit.errors import VaekitError
from vaekit.models import VAE, VAEConfig, build


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 20), (3, 17, 23)])
def test_decoder_output_matches_any_input_shape(arch, shape):
    model = VAE(VAEConfig(input_shape=shape, arch=arch, latent_dim=3, hidden=[32], channels=[8, 16]))
    x = torch.rand(2, *shape)
    assert model.reconstruct(x).shape == x.shape
    assert model.sample(5).shape == (5, *shape)


def test_loss_reports_true_terms_and_weights_only_the_objective():
    torch.manual_seed(0)
    model = VAE(VAEConfig(input_shape=(1, 8, 8), latent_dim=4, hidden=[32]))
    x = torch.rand(16, 1, 8, 8)
    torch.manual_seed(1)
    plain = model.loss(x, beta=1.0)
    torch.manual_seed(1)
    beta4 = model.loss(x, beta=4.0)
    assert torch.allclose(plain.recon, beta4.recon) and torch.allclose(plain.kl, beta4.kl)
    assert beta4.total.item() == pytest.approx((beta4.recon + 4 * beta4.kl).item(), rel=1e-6)
    assert plain.kl_per_dim.shape == (4,)
    assert plain.kl_per_dim.sum().item() == pytest.approx(plain.kl.item(), rel=1e-5)


def test_free_bits_raise_the_objective_but_not_the_reported_kl():
    torch.manual_seed(0)
    model = VAE(VAEConfig(input_shape=(1, 8, 8), latent_dim=4, hidden=[32]))
    x = torch.rand(16, 1, 8, 8)
    torch.manual_seed(1)
    plain = model.loss(x)
    torch.manual_seed(1)
    floored = model.loss(x, free_bits=5.0)
    assert floored.kl.item() == pytest.approx(plain.kl.item())
    assert floored.total.item() == pytest.approx(plain.recon.item() + 4 * 5.0, rel=1e-5)


def test_importance_sampled_likelihood_with_one_sample_is_the_elbo_in_expectation():
    torch.manual_seed(0)
    model = VAE(VAEConfig(input_shape=(1, 8, 8), latent_dim=4, hidden=[32]))
    x = torch.rand(8, 1, 8, 8)
    g = torch.Generator().manual_seed(0)
    k1 = torch.stack([model.log_likelihood(x, k=1, generator=g) for _ in range(400)]).mean(0)
    elbo = -torch.stack([model.loss(x).elbo for _ in range(400)]).mean()
    assert k1.mean().item() == pytest.approx(elbo.item(), abs=0.5)
    # and more samples give a tighter (higher) bound
    assert model.log_likelihood(x, k=200, generator=g).mean() > k1.mean()


def test_gaussian_likelihood_learned_std_is_a_parameter():
    model = VAE(VAEConfig(input_shape=(5,), likelihood="gaussian", learn_obs_std=True, latent_dim=2, hidden=[8]))
    assert model.observation.obs_logvar.requires_grad
    model.loss(torch.randn(4, 5)).total.backward()
    assert model.observation.obs_logvar.grad is not None


def test_save_then_load_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = VAE(VAEConfig(input_shape=(1, 8, 8), latent_dim=3, arch="conv", hidden=[16], channels=[4, 8]))
    model.save(tmp_path / "m")
    loaded = vaekit.load(tmp_path / "m")
    x = torch.rand(4, 1, 8, 8)
    assert torch.equal(model.encode(x).mean, loaded.encode(x).mean)
    assert torch.equal(model.decode(torch.ones(2, 3)).mean, loaded.decode(torch.ones(2, 3)).mean)
    assert loaded.config == model.config


def test_truncated_weights_are_refused(tmp_path):
    VAE(VAEConfig(input_shape=(4,), latent_dim=2, hidden=[8])).save(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-20])
    with pytest.raises(VaekitError, match=r"model.safetensors: cannot read weights \(truncated"):
        vaekit.load(tmp_path)


def test_tampered_weights_are_refused(tmp_path):
    VAE(VAEConfig(input_shape=(4,), latent_dim=2, hidden=[8])).save(tmp_path)
    weights = tmp_path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF  # flip bits inside a tensor, leaving the header intact
    weights.write_bytes(bytes(data))
    with pytest.raises(VaekitError, match="do not match their recorded checksum"):
        vaekit.load(tmp_path)


def test_weights_for_another_architecture_are_refused(tmp_path):
    VAE(VAEConfig(input_shape=(4,), latent_dim=2, hidden=[8])).save(tmp_path)
    import json

    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["model"]["hidden"] = [9]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(VaekitError, match=r"has shape .* the model expects"):
        vaekit.load(tmp_path)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("arch", "rnn", "arch: 'rnn' is not one of mlp, conv"),
     ("likelihood", "poisson", "likelihood: 'poisson' is not one of bernoulli, gaussian"),
     ("latent_dim", 0, "latent_dim: expected at least 1, got 0")],
)
def test_bad_model_settings_name_the_field(field, value, message):
    with pytest.raises(VaekitError, match=message):
        build({"model": "vae", "input_shape": [4], field: value})


def test_unknown_model_family_lists_the_known_ones():
    with pytest.raises(VaekitError, match=r"unknown model 'gan' \(known: vae"):
        build({"model": "gan", "input_shape": [4]})


def test_iwae_loss_with_one_sample_is_the_elbo_and_more_samples_give_a_tighter_bound():
    torch.manual_seed(0)
    model = VAE(VAEConfig(input_shape=(1, 8, 8), latent_dim=4, hidden=[32]))
    x = torch.rand(64, 1, 8, 8)
    torch.manual_seed(1)
    elbo = model.loss(x).total
    torch.manual_seed(1)
    assert torch.allclose(model.loss(x, iw_samples=1).total, elbo)
    with torch.no_grad():
        bounds = {k: torch.stack([model.loss(x, iw_samples=k).total for _ in range(30)]).mean() for k in (1, 5, 50)}
    assert bounds[1] > bounds[5] > bounds[50]  # the negative bound falls as K grows


def test_iwae_loss_matches_log_likelihood_estimator_and_has_gradients():
    torch.manual_seed(0)
    model = VAE(VAEConfig(input_shape=(6,), latent_dim=2, hidden=[8], likelihood="gaussian"))
    x = torch.randn(5, 6)
    torch.manual_seed(3)
    loss = model.loss(x, iw_samples=200)
    torch.manual_seed(3)
    ll = model.log_likelihood(x, k=200, chunk=200)
    assert loss.total.item() == pytest.approx(-ll.mean().item(), rel=1e-4)
    loss.total.backward()
    assert all(p.grad is not None for p in model.encoder.parameters())


def test_iwae_with_free_bits_or_a_regularizer_is_refused():
    from vaekit.objectives.regularizers import BetaTCVAE

    model = VAE(VAEConfig(input_shape=(4,), latent_dim=2, hidden=[8]))
    message = r"free_bits, iwae and the regularized objectives \(btcvae, factorvae, capacity\) do not combine"
    with pytest.raises(VaekitError, match=message):
        model.loss(torch.rand(2, 4), iw_samples=5, free_bits=0.5)
    with pytest.raises(VaekitError, match=message):
        model.loss(torch.rand(2, 4), iw_samples=5, regularizer=BetaTCVAE(6.0, 100))


FAMILIES = {
    "vae": {"input_shape": [1, 8, 8], "latent_dim": 2, "hidden": [8]},
    "cvae": {"input_shape": [1, 8, 8], "latent_dim": 2, "hidden": [8], "num_classes": 3},
    "hvae": {"input_shape": [1, 8, 8], "groups": [2, 2], "hidden": [8]},
    "vqvae": {"input_shape": [1, 8, 8], "channels": [4], "codebook_size": 4, "code_dim": 2, "res_blocks": 0},
    "codec": {"input_shape": [1, 8, 8], "channels": 4, "latent_channels": 2, "stages": 1},
}


@pytest.mark.parametrize(("family", "capabilities"), [
    ("vae", {"gaussian_posterior": True, "conditional": False, "point_posterior": False, "entropy_coded": False}),
    ("cvae", {"gaussian_posterior": True, "conditional": True, "point_posterior": False, "entropy_coded": False}),
    ("hvae", {"gaussian_posterior": False, "conditional": False, "learned_prior": False}),
    ("vqvae", {"gaussian_posterior": False, "point_posterior": True, "learned_prior": True, "entropy_coded": False}),
    ("codec", {"gaussian_posterior": False, "point_posterior": True, "learned_prior": True, "entropy_coded": True}),
])
def test_each_family_declares_its_capabilities_and_encodes_to_a_posterior(family, capabilities):
    from vaekit.distributions import Posterior

    model = build({"model": family, **FAMILIES[family]}).eval()
    assert {k: getattr(model, k) for k in capabilities} == capabilities
    assert model.sequences is False and model.config.sequences is False
    x = (torch.rand(3, 1, 8, 8) > 0.5).float()
    cond = model.sample_cond(3)
    q = model.encode(x, cond)
    assert isinstance(q, Posterior) and q.gaussian == (family in ("vae", "cvae", "hvae"))
    assert q.mean.shape == q.logvar.shape == q.std.shape == (3, model.config.latent_dim)
    assert q.rsample(4).shape == (4, 3, model.config.latent_dim) and q.kl().shape == (3,)
    assert torch.isfinite(q.kl_per_dim()).all() and q.log_prob(q.mode()).shape == (3,)


def test_the_default_run_name_is_the_architecture_or_the_family():
    assert VAEConfig(arch="conv").run_name == "conv"
    assert build({"model": "hvae", **FAMILIES["hvae"]}).config.run_name == "hvae"
