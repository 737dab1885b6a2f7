"""Paths between two codes, and what the decoder draws along them.

``lerp`` is the straight line. ``slerp`` follows the great circle between the two
directions while the norm changes linearly: under a Gaussian prior almost all mass sits
on a shell of radius ~sqrt(D), and the straight line between two typical codes cuts
through the low-norm interior the decoder rarely saw (White 2016, "Sampling generative
networks"). Keeping the norm between the endpoints' norms avoids that.
"""

from __future__ import annotations

import torch

from vaekit.errors import VaekitError
from vaekit.latent.encoding import as_batch, decode_means, encode_means
from vaekit.models.base import Model

METHODS = ("slerp", "lerp")


def _endpoints(z1: torch.Tensor, z2: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = z1.reshape(-1), z2.reshape(-1)
    if a.shape != b.shape:
        raise VaekitError(f"interpolation: endpoints differ in size ({a.numel()} vs {b.numel()} dimensions)")
    if steps < 2:
        raise VaekitError(f"steps: expected at least 2 (the two endpoints), got {steps}")
    return a, b


def _pin_ends(path: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Endpoints exactly as given (no rounding), so they decode to the inputs' reconstructions."""
    path = path.to(a.dtype)
    path[0], path[-1] = a, b
    return path


def lerp(z1: torch.Tensor, z2: torch.Tensor, steps: int) -> torch.Tensor:
    """``steps`` points ``(steps, D)`` on the segment from ``z1`` to ``z2``, both included."""
    a, b = _endpoints(z1, z2, steps)
    t = torch.linspace(0, 1, steps, dtype=torch.float64)[:, None]
    return _pin_ends((1 - t) * a.double() + t * b.double(), a, b)


def slerp(z1: torch.Tensor, z2: torch.Tensor, steps: int) -> torch.Tensor:
    """``steps`` points ``(steps, D)`` from ``z1`` to ``z2`` (both included): the direction
    turns along the great circle at constant speed, the norm goes linearly, so every
    point's norm lies between the endpoints' norms."""
    a, b = _endpoints(z1, z2, steps)
    a64, b64 = a.double(), b.double()
    na, nb = a64.norm(), b64.norm()
    t = torch.linspace(0, 1, steps, dtype=torch.float64)[:, None]
    if na < 1e-12 or nb < 1e-12:  # a zero endpoint has no direction: the segment is the path
        return lerp(a, b, steps)
    ua, ub = a64 / na, b64 / nb
    cos = (ua @ ub).clamp(-1.0, 1.0)
    if cos > 1 - 1e-12:  # the same direction
        directions = ua.expand(steps, -1)
    else:
        if cos < -1 + 1e-12:  # opposite: every great circle joins them; take one through a fixed axis
            axis = torch.zeros_like(ua)
            axis[ua.abs().argmin()] = 1.0
            ortho = axis - (axis @ ua) * ua
            ub_turn = ortho / ortho.norm()
            omega = torch.tensor(torch.pi, dtype=torch.float64)
            directions = torch.cos(t * omega) * ua + torch.sin(t * omega) * ub_turn
        else:
            omega = torch.arccos(cos)
            directions = (torch.sin((1 - t) * omega) * ua + torch.sin(t * omega) * ub) / torch.sin(omega)
    norms = (1 - t) * na + t * nb
    return _pin_ends(directions * norms, a, b)


def latent_path(z1: torch.Tensor, z2: torch.Tensor, steps: int, method: str = "slerp") -> torch.Tensor:
    """``slerp`` or ``lerp`` by name."""
    if method not in METHODS:
        raise VaekitError(f"method: expected slerp or lerp, got '{method}'")
    return (slerp if method == "slerp" else lerp)(z1, z2, steps)


def label_path(model: Model, label1: int | torch.Tensor, label2: int | torch.Tensor, steps: int
               ) -> torch.Tensor | None:
    """The condition along a path from class ``label1`` to ``label2`` for a conditional model:
    the labels themselves when equal, else class weights ``(steps, K)`` moving linearly from
    one one-hot to the other (so the decoded class changes smoothly with the code). ``None``
    for an unconditional model."""
    if not model.config.conditional:
        return None
    a, b = int(label1), int(label2)
    if a == b:
        return torch.full((steps,), a, dtype=torch.long)
    t = torch.linspace(0, 1, steps)[:, None]
    eye = torch.eye(model.config.num_classes)
    return (1 - t) * eye[a] + t * eye[b]


def decode_path(model: Model, z1: torch.Tensor, z2: torch.Tensor, *, steps: int = 10, method: str = "slerp",
                cond: torch.Tensor | None = None) -> torch.Tensor:
    """Decoder means ``(steps, *shape)`` along the path between two codes (e.g. class means).
    ``cond``: what a conditional model decodes each point with (``label_path``)."""
    return decode_means(model, latent_path(z1, z2, steps, method), cond)


def interpolate(model: Model, x1: torch.Tensor, x2: torch.Tensor, *, steps: int = 10, method: str = "slerp",
                cond: torch.Tensor | None = None) -> torch.Tensor:
    """Decoded path ``(steps, *shape)`` between the codes of two inputs; its first and last
    images are the inputs' reconstructions. ``cond``: the two inputs' labels ``(2,)``, which a
    conditional model encodes them with; the label then changes smoothly along the path."""
    shape = tuple(model.config.input_shape)
    z = encode_means(model, torch.cat([as_batch(x1, shape)[:1], as_batch(x2, shape)[:1]]), cond)
    path_cond = None if cond is None else label_path(model, cond[0], cond[1], steps)
    return decode_path(model, z[0], z[1], steps=steps, method=method, cond=path_cond)
