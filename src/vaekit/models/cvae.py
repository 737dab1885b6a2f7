"""The conditional VAE (Sohn et al. 2015): q(z|x, y) and p(x|z, y) for class labels y.

The label enters both networks (``vaekit.nn.LabelEncoder``: one-hot, or a learned
embedding). Because the encoder is told the class, z has no reason to spend KL on it and
carries what the label does not say (slant, stroke width, style), so decoding one z with
every label draws "the same handwriting" as each class. The networks are the VAE's (MLP or
conv), so this file is only the config: ``VAE`` builds the conditioning from it.

    vaekit train mnist --model cvae --epochs 10
    vaekit sample runs/mnist-cvae --label 7 -n 64
    vaekit restyle runs/mnist-cvae --from 0,1,2,3     # each test digit's z decoded as every class

Labels come from the data (named datasets, image sub-folders, a table's label column);
``num_classes`` and ``class_names`` are filled in from it by ``vaekit.runs.model_config_for``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from vaekit.models.base import ConditionalConfig
from vaekit.models.vae import VAE, VAEConfig


@dataclass
class CVAEConfig(VAEConfig, ConditionalConfig):
    """A VAE's architecture (``VAEConfig``) plus the conditioning fields (``ConditionalConfig``:
    ``num_classes``, ``class_names``, ``condition`` onehot|embedding, ``embedding_dim``)."""

    model: ClassVar[str] = "cvae"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_condition()


class CVAE(VAE):
    """The VAE with a class label in ``encode(x, cond)`` and ``decode(z, cond)`` (required)."""

    config: CVAEConfig
