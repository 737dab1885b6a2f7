"""The optimizer's parameter groups: the network's weights, and the likelihood's own parameters.

Adam moves each parameter by about its learning rate per update, whatever the size of the
gradient, so how far a parameter can travel in a fit is the rate times the updates. A weight
needs hundredths; a likelihood's per-feature log-variance and log degrees of freedom (a
learned ``Observation``) may need several nats, which a short fit at the network's rate never
covers: the decoder's scale then stays near its starting value, every feature looks equally
noisy, and a latent that would explain a strongly predictable feature is not worth its KL.
``likelihood_lr_factor`` gives those parameters a rate of their own.
"""

from __future__ import annotations

from typing import Any

import torch

from vaekit.models.observation import Observation

#: The key of a parameter group holding its rate as a multiple of the run's (the schedule applies to both).
LR_FACTOR = "lr_factor"


def parameter_groups(model: torch.nn.Module, lr: float, likelihood_lr_factor: float = 1.0) -> list[dict[str, Any]]:
    """``model``'s parameters for the optimizer: one group at ``lr``; with a factor other than 1,
    the trainable parameters of its ``Observation`` modules in a second group at ``lr * factor``."""
    params = list(model.parameters())  # frozen ones too: a checkpoint's optimizer state counts them
    own = {id(p) for module in model.modules() if isinstance(module, Observation)
           for p in module.parameters() if p.requires_grad}
    if likelihood_lr_factor == 1.0 or not own:
        return [{"params": params}]
    return [{"params": [p for p in params if id(p) not in own]},
            {"params": [p for p in params if id(p) in own], "lr": lr * likelihood_lr_factor,
             LR_FACTOR: likelihood_lr_factor}]
