"""Encoder and decoder building blocks, sized from the data's shape.

Encoders map ``(B, *input_shape)`` to a flat feature vector; decoders map a latent
``(B, latent_dim)`` to ``(B, out_channels, *spatial)`` output parameters. The conv pair
records the spatial size at every stage so the decoder reproduces any input size
exactly (8x8 digits, 28x20 Frey faces, 64x64 photos) without padding tricks.
"""

from __future__ import annotations

import math
from itertools import pairwise

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh, "elu": nn.ELU}


def activation(name: str) -> nn.Module:
    return ACTIVATIONS[name]()


def mlp(sizes: list[int], act: str, final_activation: bool) -> nn.Sequential:
    """Linear layers between consecutive ``sizes``, an activation after each but the last."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or final_activation:
            layers.append(activation(act))
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """Flatten, then hidden layers; ``out_features`` is the last hidden size."""

    def __init__(self, input_shape: tuple[int, ...], hidden: list[int], act: str) -> None:
        super().__init__()
        sizes = [math.prod(input_shape), *hidden]
        self.net = mlp(sizes, act, final_activation=True)
        self.out_features = sizes[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


class MLPDecoder(nn.Module):
    """Latent -> hidden layers -> ``out_channels`` parameters per input element."""

    def __init__(self, latent_dim: int, hidden: list[int], output_shape: tuple[int, ...], act: str,
                 out_channels: int = 1) -> None:
        super().__init__()
        self.output_shape = output_shape
        self.out_channels = out_channels
        out = math.prod(output_shape) * out_channels
        self.net = mlp([latent_dim, *hidden, out], act, final_activation=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        lead = z.shape[:-1]
        y = self.net(z)
        if self.out_channels == 1:
            return y.reshape(*lead, *self.output_shape)
        return y.reshape(*lead, *self.output_shape, self.out_channels)


def _conv_out(size: int) -> int:
    # kernel 4, stride 2, padding 1 halves a size (rounding down).
    return (size + 2 - 4) // 2 + 1


class ConvEncoder(nn.Module):
    """Stride-2 convolutions (each halves H and W), then dense layers.

    ``stage_sizes`` lists the spatial size before each conv, for the decoder.
    """

    def __init__(self, input_shape: tuple[int, ...], channels: list[int], hidden: list[int], act: str) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"conv encoder needs (C, H, W) inputs, got shape {input_shape}")
        c, h, w = input_shape
        layers: list[nn.Module] = []
        self.stage_sizes: list[tuple[int, int]] = []
        for out_c in channels:
            if min(h, w) < 2:
                break
            self.stage_sizes.append((h, w))
            layers += [nn.Conv2d(c, out_c, 4, 2, 1), activation(act)]
            c, h, w = out_c, _conv_out(h), _conv_out(w)
        self.convs = nn.Sequential(*layers)
        self.feature_shape = (c, h, w)
        flat = c * h * w
        self.dense = mlp([flat, *hidden], act, final_activation=True) if hidden else nn.Identity()
        self.out_features = hidden[-1] if hidden else flat

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(self.convs(x).flatten(1))


class ConvDecoder(nn.Module):
    """Mirror of ``ConvEncoder``: dense layers, then transposed convs to the exact size."""

    def __init__(self, latent_dim: int, encoder: ConvEncoder, output_channels: int, hidden: list[int],
                 act: str) -> None:
        super().__init__()
        self.feature_shape = encoder.feature_shape
        self.stage_sizes = list(reversed(encoder.stage_sizes))
        flat = math.prod(self.feature_shape)
        self.dense = mlp([latent_dim, *reversed(hidden), flat], act, final_activation=True)
        conv_channels = [m.out_channels for m in encoder.convs if isinstance(m, nn.Conv2d)]
        ins = list(reversed(conv_channels))
        outs = [*ins[1:], output_channels]
        self.deconvs = nn.ModuleList(nn.ConvTranspose2d(i, o, 4, 2, 1) for i, o in zip(ins, outs, strict=True))
        self.act = activation(act)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        lead = z.shape[:-1]
        y = self.dense(z.reshape(-1, z.shape[-1])).reshape(-1, *self.feature_shape)
        for i, (deconv, size) in enumerate(zip(self.deconvs, self.stage_sizes, strict=True)):
            y = deconv(y, output_size=list(size))
            if i < len(self.deconvs) - 1:
                y = self.act(y)
        return y.reshape(*lead, *y.shape[1:])
