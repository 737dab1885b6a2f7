"""The conditional VAE (Sohn et al. 2015): q(z|x, y) and p(x|z, y) for class labels y.

The label enters both networks (``vaekit.nn.LabelEncoder``: one-hot, or a learned
embedding), and by default every layer of the decoder (``label_layers``). Because the
encoder is told the class, z has no reason to spend KL on it and carries what the label
does not say (slant, stroke width, style), so decoding one z with every label draws "the
same handwriting" as each class. The networks are the VAE's (MLP or conv); this file adds
the config and the centring of each class's codes.

    vaekit train mnist --model cvae --epochs 10
    vaekit sample runs/mnist-cvae --label 7 -n 64
    vaekit restyle runs/mnist-cvae --from 0,1,2,3     # each test digit's z decoded as every class

Labels come from the data (named datasets, image sub-folders, a table's label column);
``num_classes`` and ``class_names`` are filled in from it by ``vaekit.runs.model_config_for``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from vaekit.distributions import DiagonalGaussian
from vaekit.models.base import ConditionalConfig
from vaekit.models.vae import VAE, VAEConfig

#: Weight of a batch's class means in the running means (batch norm's running-statistics momentum).
CENTER_MOMENTUM = 0.1


@dataclass
class CVAEConfig(VAEConfig, ConditionalConfig):
    """A VAE's architecture (``VAEConfig``) plus the conditioning fields (``ConditionalConfig``:
    ``num_classes``, ``class_names``, ``condition`` onehot|embedding, ``embedding_dim``).

    ``center_codes`` (default on): the encoder's code of an example is taken relative to
    the running mean of its class's codes, so every class's codes are centred on the
    prior's mean. Why: the encoder sees x, which shows the class, and early in training it
    puts the class into z as well (it costs only about log K nats of KL); the decoder then
    reads the class from z and ignores the label, and ``sample --label 5`` draws whatever
    class the prior draw lands on. Centred codes cannot say the class by where they lie, so
    the decoder has to take it from the label, and a prior draw decoded with label y is
    drawn as class y (docs/benchmarks/samples.md has the figures and the options measured
    against it). The running means are updated in training mode like batch norm's
    statistics and saved with the weights. Runs saved before this field keep their
    uncentred codes (``saved_defaults``).

    ``label_layers`` (default ``decoder``): the label is concatenated to the first layer's
    input of each network and, in every later layer of the decoder (the output layer
    included), scales and shifts that layer's output (FiLM: ``h (1 + G c) + W c``, both
    starting at zero; ``vaekit.nn.LabelFiLM``). Why: the label reaches every layer of the
    decoder as directly as the code reaches the first, and the scale lets each class turn
    each unit up or down, so the decoder draws each class with a function of z of its own
    rather than reading the class through one layer; a short run then draws the asked class
    more often, at a better test -ELBO (measured in docs/benchmarks/samples.md).
    ``first`` is that first-layer-only network; ``all`` modulates every layer of the encoder
    too. Runs saved before this field keep ``first`` (``saved_defaults``).
    """

    model: ClassVar[str] = "cvae"
    saved_defaults: ClassVar[dict[str, Any]] = {"center_codes": False, "label_layers": "first"}
    center_codes: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_condition()


class CVAE(VAE):
    """The VAE with a class label in ``encode(x, cond)`` and ``decode(z, cond)`` (required)."""

    config: CVAEConfig

    def __init__(self, config: CVAEConfig) -> None:
        super().__init__(config)
        if config.center_codes:
            #: running mean of each class's posterior means (before centring), (num_classes, latent_dim)
            self.register_buffer("class_means", torch.zeros(config.num_classes, config.latent_dim))

    def encode(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> DiagonalGaussian:
        posterior = super().encode(x, cond)
        if not self.config.center_codes:
            return posterior
        return DiagonalGaussian(self._centered(posterior.mean, self.check_cond(cond)), posterior.logvar)

    def _centered(self, mean: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``mean`` less its class's running mean (class weights: the weighted running means);
        in training mode the running means first take in this batch's class means."""
        means = self.class_means
        if cond.is_floating_point():
            return mean - cond.to(mean.dtype) @ means.to(mean.dtype)
        if self.training:
            with torch.no_grad():
                sums = torch.zeros_like(means).index_add_(0, cond, mean.detach().to(means.dtype))
                counts = torch.bincount(cond, minlength=len(means)).to(means.dtype)[:, None]
                moved = (1 - CENTER_MOMENTUM) * means + CENTER_MOMENTUM * sums / counts.clamp(min=1)
                means.copy_(torch.where(counts > 0, moved, means))  # classes absent from the batch keep theirs
        return mean - means[cond].to(mean.dtype)
