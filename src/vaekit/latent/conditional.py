"""What only a conditional model can draw: the same code decoded as every class.

A conditional VAE's encoder is told the label, so the code z keeps what the label does
not say (for digits: slant, stroke width, size). Decoding one z with each label in turn
therefore redraws "the same handwriting" as every class: style transfer across classes
(Kingma et al. 2014, "Semi-supervised learning with deep generative models", fig. 1;
Sohn et al. 2015).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vaekit.errors import VaekitError
from vaekit.latent.encoding import decode_means, encode_means
from vaekit.models.base import Model


def require_conditional(model: Model, what: str) -> None:
    """A one-line error when ``what`` is asked of a model that takes no labels."""
    if not model.config.conditional:
        raise VaekitError(f"{what} needs a conditional model (train with --model cvae); this run's model is "
                          f"'{model.config.model}'")


def restyle(model: Model, z: torch.Tensor, classes: Sequence[int] | None = None) -> torch.Tensor:
    """Decode every code of ``z`` ``(N, D)`` with each class of ``classes`` (default: all):
    ``(N, len(classes), *shape)``, row i = code i, column j = class ``classes[j]``."""
    require_conditional(model, "restyle")
    k = model.config.num_classes
    chosen = list(range(k)) if classes is None else [int(c) for c in classes]
    if not chosen or any(not 0 <= c < k for c in chosen):
        raise VaekitError(f"classes: expected labels in 0..{k - 1}, got {chosen}")
    z = z.reshape(len(z), -1)
    labels = torch.tensor(chosen).repeat(len(z))
    decoded = decode_means(model, z.repeat_interleave(len(chosen), dim=0), labels)
    return decoded.reshape(len(z), len(chosen), *decoded.shape[1:])


def restyle_examples(model: Model, x: torch.Tensor, labels: torch.Tensor,
                     classes: Sequence[int] | None = None) -> torch.Tensor:
    """``restyle`` of the codes of examples ``x`` encoded with their own ``labels``."""
    require_conditional(model, "restyle")
    return restyle(model, encode_means(model, x, labels), classes)
