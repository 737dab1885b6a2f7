"""Model families by name: the ``model`` field of a config picks the class to build."""

from __future__ import annotations

from typing import Any

from vaekit.errors import VaekitError
from vaekit.models.base import ConditionalConfig, Loss, Model, ModelConfig
from vaekit.models.codec import Codec, CodecConfig
from vaekit.models.cvae import CVAE, CVAEConfig
from vaekit.models.hvae import HVAE, HVAEConfig
from vaekit.models.seqvae import SeqVAE, SeqVAEConfig
from vaekit.models.vae import VAE, VAEConfig
from vaekit.models.vqvae import VQVAE, VQVAEConfig

MODELS: dict[str, tuple[type[Model], type[ModelConfig]]] = {
    "vae": (VAE, VAEConfig),
    "cvae": (CVAE, CVAEConfig),
    "hvae": (HVAE, HVAEConfig),
    "vqvae": (VQVAE, VQVAEConfig),
    "seqvae": (SeqVAE, SeqVAEConfig),
    "codec": (Codec, CodecConfig),
}


def build(config: dict[str, Any] | ModelConfig) -> Model:
    """Build a model from its config object or its ``config.json`` dict (a field missing from
    an older file gets the behaviour that file's run was trained with: ``ModelConfig.from_saved``)."""
    if isinstance(config, ModelConfig):
        return MODELS[config.model][0](config)
    name = config.get("model", "vae")
    if name not in MODELS:
        raise VaekitError(f"model: unknown model '{name}' (known: {', '.join(MODELS)})")
    model_cls, config_cls = MODELS[name]
    return model_cls(config_cls.from_saved(config))


__all__ = [
    "CVAE",
    "HVAE",
    "MODELS",
    "VAE",
    "VQVAE",
    "CVAEConfig",
    "Codec",
    "CodecConfig",
    "ConditionalConfig",
    "HVAEConfig",
    "Loss",
    "Model",
    "ModelConfig",
    "SeqVAE",
    "SeqVAEConfig",
    "VAEConfig",
    "VQVAEConfig",
    "build",
]
