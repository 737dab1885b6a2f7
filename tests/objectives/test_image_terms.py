"""SSIM and perceptual reconstruction terms: the index itself, gradients into the decoder, training with them."""

import dataclasses

import pytest
import torch

import vaekit
from vaekit.errors import VaekitError
from vaekit.models import VAE, VAEConfig
from vaekit.objectives.image_terms import PerceptualTerm, SSIMTerm, build_recon_term, ssim, train_feature_net


def test_ssim_is_one_for_identical_images_and_falls_with_noise_and_blur():
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(4, 1, 16, 16, generator=g) > 0.5).float()
    assert torch.allclose(ssim(x, x), torch.ones(4), atol=1e-5)
    noise = torch.randn(x.shape, generator=g)
    noisy, noisier = (x + 0.3 * noise).clamp(0, 1), (x + 0.6 * noise).clamp(0, 1)
    blurred = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1)
    assert (ssim(noisier, x) < ssim(noisy, x)).all() and (ssim(noisy, x) < 0.95).all()
    assert (ssim(blurred, x) < 0.9).all()
    assert (ssim(x, noisy) - ssim(noisy, x)).abs().max() < 1e-5  # symmetric


def test_ssim_of_two_flat_images_is_the_luminance_formula():
    a, b = torch.full((1, 1, 9, 9), 0.2), torch.full((1, 1, 9, 9), 0.6)
    c1 = 0.01**2
    expected = (2 * 0.2 * 0.6 + c1) / (0.2**2 + 0.6**2 + c1)  # no variance: only the luminance term is left
    assert float(ssim(a, b)) == pytest.approx(expected, rel=1e-4)


def _model() -> VAE:
    torch.manual_seed(0)
    return VAE(VAEConfig(input_shape=(1, 8, 8), latent_dim=3, hidden=[16]))


@pytest.mark.parametrize("make_term", [
    lambda x, y: SSIMTerm(),
    lambda x, y: PerceptualTerm(train_feature_net(x, y, epochs=1)[0]),
])
def test_the_term_reaches_the_decoder_and_not_the_feature_network(make_term):
    digits = vaekit.data.load("digits")
    x, y = digits.train[:64], digits.train_labels[:64].long()
    term = make_term(x, y)
    model = _model()
    torch.manual_seed(1)
    unweighted = float(model.loss(x, recon_term=term, recon_weight=0.0).total.detach())
    torch.manual_seed(1)  # the same draws: the difference is the weighted term alone
    loss = model.loss(x, recon_term=term, recon_weight=2.0)
    assert float(loss.total.detach()) > unweighted
    loss.total.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.decoder.parameters() if p.dim() > 1)
    if isinstance(term, PerceptualTerm):
        assert all(p.grad is None for p in term.net.parameters())
        assert "perceptual" in loss.extras
    else:
        assert -1 <= float(loss.extras["ssim"]) < 1


def test_training_with_ssim_logs_it_and_perceptual_resumes_with_its_network(tmp_path):
    data = {"source": "digits", "limit": 300}
    run = vaekit.train(data, {"latent_dim": 3, "hidden": [32]}, {"epochs": 2, "recon_term": "ssim",
                                                                   "recon_weight": 0.5}, tmp_path / "s", progress=False)
    assert 0 < run.metrics[-1]["train_ssim"] <= 1
    train = {"epochs": 2, "recon_term": "perceptual", "lr_schedule": "constant"}  # resume extends cosine
    full = vaekit.train(data, {"latent_dim": 3, "hidden": [32]}, train, tmp_path / "p", progress=False)
    cut = vaekit.train(data, {"latent_dim": 3, "hidden": [32]}, {**train, "epochs": 1}, tmp_path / "c",
                       progress=False)
    resumed = vaekit.resume(cut.path, epochs=2, progress=False)
    assert "train_perceptual" in full.metrics[-1]
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.allclose(a[k], b[k]) for k in a)


def test_perceptual_without_labels_and_terms_on_tables_are_one_line_errors(tiny_digits):
    assert tiny_digits.train_labels is None
    with pytest.raises(VaekitError, match="recon_term perceptual: trains its feature network on class labels"):
        build_recon_term("perceptual", tiny_digits)
    table = dataclasses.replace(tiny_digits, info=dataclasses.replace(tiny_digits.info, kind="table"))
    with pytest.raises(VaekitError, match="recon_term ssim: needs image data, got table data"):
        build_recon_term("ssim", table)
    with pytest.raises(VaekitError, match="recon_term: expected none or ssim or perceptual"):
        vaekit.training.TrainConfig(recon_term="vgg")
