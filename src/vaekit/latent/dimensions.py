"""Which latent dimensions the model uses, and what each one does.

A dimension's average KL to the prior says how much information it carries: a
dimension whose posterior equals the prior for every input (KL ~ 0, "posterior
collapse") is ignored by the decoder. Traversals sweep one dimension at a time from a
real input's code, most informative dimensions first, and flag the collapsed ones, so a
person sees both what the used dimensions encode and that the others do nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vaekit.errors import VaekitError
from vaekit.latent.encoding import as_batch, decode_means, encode_means, mean_kl_per_dim
from vaekit.models.base import Model
from vaekit.training.diagnosis import COLLAPSED_KL


def kl_order(model: Model, x: torch.Tensor, cond: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Dimensions sorted by mean KL over ``x`` (labels ``cond`` for a conditional model), most
    used first, and the mean KL per dimension ``(D,)``."""
    kl = mean_kl_per_dim(model, x, cond)
    return torch.argsort(kl, descending=True, stable=True), kl


def _pick_dims(dims: int | Sequence[int] | None, order: torch.Tensor) -> list[int]:
    d = len(order)
    if dims is None:
        return order.tolist()
    if isinstance(dims, int):
        if dims < 1:
            raise VaekitError(f"dims: expected at least 1 dimension, got {dims}")
        return order[:dims].tolist()
    chosen = [int(i) for i in dims]
    bad = [i for i in chosen if not 0 <= i < d]
    if bad or not chosen:
        raise VaekitError(f"dims: expected dimensions in 0..{d - 1}, got {chosen}")
    rank = {dim: r for r, dim in enumerate(order.tolist())}
    return sorted(chosen, key=rank.__getitem__)


def traversal(model: Model, x: torch.Tensor, *, values: Sequence[float] | torch.Tensor = torch.linspace(-3, 3, 9),
              dims: int | Sequence[int] | None = None, reference: torch.Tensor | None = None,
              kl: Sequence[float] | torch.Tensor | None = None, cond: torch.Tensor | None = None,
              reference_cond: torch.Tensor | None = None) -> tuple[torch.Tensor, list[int], list[bool]]:
    """Sweep single latent dimensions of one input's code.

    ``x``: one input ``(1, *shape)`` (or ``shape``). Each chosen dimension in turn is set
    to every value in ``values`` (absolute latent values; the prior is N(0, 1)) while the
    others stay at the input's posterior mean. ``dims``: ``None`` for all, ``k`` for the
    ``k`` most used, or a list of dimensions; rows are always ordered by mean KL, most used
    first. The KL is measured on ``reference`` (a batch of data; default ``x`` itself), or
    given as ``kl`` (mean KL per dimension) by a caller that already has it. A conditional
    model needs ``cond`` (the input's label, ``(1,)``; every image is decoded with it) and
    ``reference_cond`` (the reference's labels).

    Returns decoded images ``(len(dims), len(values), *shape)``, the dimensions of the
    rows, and per row whether the dimension is collapsed (mean KL < ``COLLAPSED_KL``).
    """
    x = as_batch(x, tuple(model.config.input_shape))
    if len(x) != 1:
        raise VaekitError(f"traversal: expected one input (1, *shape), got {len(x)}")
    if kl is None:
        order, kl = kl_order(model, x if reference is None else reference, cond if reference is None else
                             reference_cond)
    else:
        kl = torch.as_tensor(kl, dtype=torch.float64).reshape(-1)
        order = torch.argsort(kl, descending=True, stable=True)
    rows = _pick_dims(dims, order)
    v = torch.as_tensor(values, dtype=torch.float32).reshape(-1)
    if len(v) == 0:
        raise VaekitError("values: expected at least one latent value")
    z = encode_means(model, x, cond)[0]
    codes = z.repeat(len(rows), len(v), 1)  # (rows, values, D)
    for r, dim in enumerate(rows):
        codes[r, :, dim] = v.to(z)
    decoded = decode_means(model, codes.reshape(-1, z.numel()), None if cond is None else cond.reshape(-1)[0])
    return decoded.reshape(len(rows), len(v), *decoded.shape[1:]), rows, [bool(kl[d] < COLLAPSED_KL) for d in rows]
