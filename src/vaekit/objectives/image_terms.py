"""Reconstruction terms beside the likelihood, for sharper images: SSIM and a perceptual loss.

A pixel-wise likelihood (Bernoulli, Gaussian) scores each pixel on its own, so under
uncertainty the decoder hedges with a blurred mean. Terms that compare structure punish
the blur: SSIM (Wang et al. 2004: local means, contrasts and correlations in Gaussian
windows) and a perceptual loss (Johnson et al. 2016: distances between a network's
activations on the input and the reconstruction). Pretrained VGG/LPIPS weights cannot be
fetched here, so the perceptual network is a small CNN trained on the run's own
training images and class labels before the VAE (a couple of epochs; its weights travel
in the checkpoint, so a resumed run uses the same one).

Each term compares the decoder mean for the training draw with the input and is scaled
by the number of pixels, so ``recon_weight`` 1 weighs it like the per-pixel nats of the
likelihood: ``total = recon + KL-term + recon_weight * term``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from vaekit.errors import VaekitError
from vaekit.objectives.terms import ObjectiveTerm

if TYPE_CHECKING:
    from vaekit.data.bundle import Dataset
    from vaekit.objectives.bounds import Inference

RECON_TERMS = ("none", "ssim", "perceptual")


def gaussian_window(size: int, sigma: float) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-coords.pow(2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(a: torch.Tensor, b: torch.Tensor, *, data_range: float = 1.0, window: int = 7, sigma: float = 1.5
         ) -> torch.Tensor:
    """Mean SSIM of each image pair ``(N, C, H, W)`` -> ``(N,)`` (Wang et al. 2004, K1 0.01, K2 0.03).

    The window shrinks to the image for tiny inputs; 7 pixels (rather than the paper's 11)
    suits 28x28 images, where an 11-pixel window would average away most of the structure.
    """
    channels = a.shape[1]
    size = min(window, a.shape[-1], a.shape[-2])
    kernel = gaussian_window(size, sigma).to(a).expand(channels, 1, size, size)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, kernel, groups=channels)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a.pow(2)
    var_b = blur(b * b) - mu_b.pow(2)
    cov = blur(a * b) - mu_a * mu_b
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a.pow(2) + mu_b.pow(2) + c1) * (var_a + var_b + c2))
    return index.flatten(1).mean(dim=1)


class ReconstructionTerm(ObjectiveTerm):
    """An extra reconstruction term: ``term(x, draws) -> (per-batch tensor, parts to log)``."""

    def term(self, x: torch.Tensor, draws: Inference) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError


def _decoded_images(x: torch.Tensor, draws: Inference, name: str) -> torch.Tensor:
    if draws.likelihood is None or x.dim() != 4:
        raise VaekitError(f"recon_term {name}: needs image data (N, C, H, W) and a decoder with a mean image")
    return draws.likelihood.mean.reshape(-1, *x.shape[1:])[: len(x)]  # the first draw of each example


class SSIMTerm(ReconstructionTerm):
    """(1 - SSIM(x, x_hat)) times the pixel count, batch mean."""

    def term(self, x: torch.Tensor, draws: Inference) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x_hat = _decoded_images(x, draws, "ssim")
        value = ssim(x_hat.float(), x.float())
        return (1 - value).mean() * x[0].numel(), {"ssim": value.mean().detach()}


class FeatureNet(nn.Module):
    """A small CNN classifier whose two conv blocks give the perceptual features."""

    def __init__(self, channels: int, classes: int) -> None:
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1),
                                    nn.ReLU())
        self.block2 = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes))

    def activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        first = self.block1(x)
        return [first, self.block2(first)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.activations(x)[-1])


def train_feature_net(x: torch.Tensor, labels: torch.Tensor, *, epochs: int = 2, seed: int = 0,
                      batch_size: int = 128) -> tuple[FeatureNet, float]:
    """The perceptual network trained on images ``x`` and integer ``labels``; returns it and
    its training accuracy in the last epoch (a weak one gives weak features)."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = FeatureNet(x.shape[1], int(labels.max()) + 1)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    correct = 0
    for _ in range(epochs):
        order, correct = torch.randperm(len(x), generator=generator), 0
        for i in range(math.ceil(len(x) / batch_size)):
            idx = order[i * batch_size:(i + 1) * batch_size]
            logits = net(x[idx].float())
            loss = F.cross_entropy(logits, labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            correct += int((logits.argmax(1) == labels[idx]).sum())
    optimizer.zero_grad(set_to_none=True)
    return net.eval().requires_grad_(False), correct / len(x)


class PerceptualTerm(ReconstructionTerm):
    """Sum over the feature net's layers of the mean squared activation difference, times the pixel count."""

    def __init__(self, net: FeatureNet, accuracy: float = math.nan) -> None:
        self.net, self.accuracy = net, accuracy

    def to(self, device: torch.device) -> PerceptualTerm:
        self.net.to(device)
        return self

    def term(self, x: torch.Tensor, draws: Inference) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x_hat = _decoded_images(x, draws, "perceptual")
        with torch.autocast(x.device.type, enabled=False):
            with torch.no_grad():
                targets = self.net.activations(x.float())
            outputs = self.net.activations(x_hat.float())
            distance = sum(F.mse_loss(o, t) for o, t in zip(outputs, targets, strict=True))
        return distance * x[0].numel(), {"perceptual": distance.detach()}

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "accuracy": self.accuracy}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.accuracy = state["accuracy"]


def build_recon_term(name: str, data: Dataset, *, seed: int = 0) -> ReconstructionTerm | None:
    """The term ``name`` asks for (None for ``none``); a perceptual term trains its network on
    ``data``'s training images and labels here, or says in one line why it cannot."""
    if name == "none":
        return None
    if data.info.kind != "image" or data.train.dim() != 4:
        raise VaekitError(f"recon_term {name}: needs image data, got {data.info.kind} data")
    if name == "ssim":
        return SSIMTerm()
    if data.train_labels is None:
        raise VaekitError("recon_term perceptual: trains its feature network on class labels; this dataset has "
                          "none (use --recon-term ssim)")
    net, accuracy = train_feature_net(data.train, data.train_labels.long(), seed=seed)
    return PerceptualTerm(net, accuracy)
