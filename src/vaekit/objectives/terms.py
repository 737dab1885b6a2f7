"""The part every extra term of the objective shares, whichever side of the ELBO it sits on.

An objective term is built by the trainer from ``TrainConfig`` and handed to ``Model.loss``:
a ``LatentRegularizer`` (``vaekit.objectives.regularizers``) replaces beta * KL, a ``ReconstructionTerm``
(``vaekit.objectives.image_terms``) adds to the likelihood term. Both may hold state of their own (a
FactorVAE discriminator, a perceptual loss's feature network) that must move to the
training device and travel in the checkpoint so a resumed run continues exactly, and both
may depend on training progress; this base gives them that once, so the trainer treats
every term alike.
"""

from __future__ import annotations

from typing import Any

import torch


class ObjectiveTerm:
    """State, device and progress handling shared by every term the trainer adds to the loss."""

    #: The training progress in (fractional) epochs, set by the trainer before each step.
    epoch: float = 0.0

    def state_dict(self) -> dict[str, Any]:
        """State to keep in the checkpoint so a resumed run continues exactly (none by default)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None

    def to(self, device: torch.device) -> ObjectiveTerm:
        return self
