"""Latent arithmetic: attribute vectors, moving inputs along them, and analogies.

An attribute vector is the difference between the mean codes of examples with and
without the attribute (White 2016; Larsen et al. 2016). Adding it to a code and decoding
adds the attribute. A run keeps all its named vectors in one safetensors file, so a
vector built once (from labels or two folders) can be reused by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from vaekit.atomic import atomic_path
from vaekit.errors import VaekitError
from vaekit.latent.encoding import as_batch, decode_means, encode_means
from vaekit.models.base import Model

VECTORS_FILE = "attribute_vectors.safetensors"


def attribute_vector(model: Model, x_with: torch.Tensor, x_without: torch.Tensor, *,
                     cond_with: torch.Tensor | None = None, cond_without: torch.Tensor | None = None
                     ) -> torch.Tensor:
    """Mean code of ``x_with`` minus mean code of ``x_without``: ``(D,)`` (a conditional model
    encodes each side with its labels ``cond_with`` / ``cond_without``)."""
    if len(x_with) == 0 or len(x_without) == 0:
        raise VaekitError(f"attribute vector: need examples on both sides, got {len(x_with)} with "
                          f"and {len(x_without)} without")
    return encode_means(model, x_with, cond_with).mean(0) - encode_means(model, x_without, cond_without).mean(0)


def class_vector(model: Model, x: torch.Tensor, labels: torch.Tensor, target: int) -> torch.Tensor:
    """``mean(z | label == target) - mean(z | label != target)``: ``(D,)``."""
    labels = labels.reshape(-1)
    if len(labels) != len(x):
        raise VaekitError(f"class vector: {len(x)} examples but {len(labels)} labels")
    chosen = labels == target
    if not chosen.any():
        raise VaekitError(f"class {target}: no examples with this label (labels present: "
                          f"{sorted(set(labels.tolist()))})")
    if chosen.all():
        raise VaekitError(f"class {target}: every example has this label; nothing to contrast it with")
    if not model.config.conditional:
        return attribute_vector(model, x[chosen], x[~chosen])
    return attribute_vector(model, x[chosen], x[~chosen], cond_with=labels[chosen], cond_without=labels[~chosen])


def _check_vector(model: Model, vector: torch.Tensor) -> torch.Tensor:
    vector = vector.reshape(-1)
    if vector.numel() != model.config.latent_dim:
        raise VaekitError(f"vector has {vector.numel()} dimensions, the model's latent space "
                          f"{model.config.latent_dim}")
    return vector


def apply_vector(model: Model, x: torch.Tensor, vector: torch.Tensor, alphas: Sequence[float],
                 cond: torch.Tensor | None = None) -> torch.Tensor:
    """Decoded ``z(x) + alpha * vector`` for every input and alpha: ``(len(x), len(alphas), *shape)``
    (a conditional model encodes and decodes each input with its label in ``cond``)."""
    vector = _check_vector(model, vector)
    x = as_batch(x, tuple(model.config.input_shape))
    z = encode_means(model, x, cond)
    a = torch.as_tensor(list(alphas), dtype=z.dtype, device=z.device)
    moved = z[:, None, :] + a[None, :, None] * vector.to(z)[None, None, :]
    decoded = decode_means(model, moved.reshape(-1, z.shape[1]),
                           None if cond is None else cond.repeat_interleave(len(a)))
    return decoded.reshape(len(x), len(a), *decoded.shape[1:])


def analogy(model: Model, xa: torch.Tensor, xb: torch.Tensor, xc: torch.Tensor,
            labels: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Decoded ``z_a - z_b + z_c`` ("a is to b as ? is to c"): ``(N, *shape)`` for N triples.
    A conditional model needs ``labels`` (of a, b and c, each ``(N,)``) and decodes with c's."""
    shape = tuple(model.config.input_shape)
    conds = labels if labels is not None else (None, None, None)
    za, zb, zc = (encode_means(model, as_batch(x, shape), c) for x, c in zip((xa, xb, xc), conds, strict=True))
    return decode_means(model, za - zb + zc, conds[2])


def _vectors_file(run_or_dir: Any) -> Path:
    return Path(getattr(run_or_dir, "path", run_or_dir)) / VECTORS_FILE


def _read_vectors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        return {}
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise VaekitError(f"{path}: cannot read attribute vectors (truncated or not a safetensors file): {e}") from None


def saved_vector_names(run_or_dir: Any) -> list[str]:
    """Names of the vectors saved for a run (or in a directory), sorted."""
    return sorted(_read_vectors(_vectors_file(run_or_dir)))


def save_vector(run_or_dir: Any, name: str, vector: torch.Tensor) -> Path:
    """Add (or replace) vector ``name`` in the run's ``attribute_vectors.safetensors``; returns the file."""
    from safetensors.torch import save_file

    if not name or not name.strip():
        raise VaekitError("vector name: expected a non-empty name")
    if getattr(run_or_dir, "read_only", False):
        raise VaekitError(f"{run_or_dir.path.name}: a pretrained model is read-only; its vectors cannot be saved "
                          "(use the vector without --name, or save the model as a run of your own)")
    path = _vectors_file(run_or_dir)
    vectors = _read_vectors(path)
    vectors[name] = vector.detach().reshape(-1).float().cpu().contiguous()
    with atomic_path(path) as tmp:
        save_file(vectors, str(tmp), metadata={"format": "vaekit-attribute-vectors-1"})
    return path


def load_vector(run_or_dir: Any, name: str) -> torch.Tensor:
    """Vector ``name`` ``(D,)``; an unknown name is a ``VaekitError`` listing the saved ones."""
    path = _vectors_file(run_or_dir)
    vectors = _read_vectors(path)
    if name not in vectors:
        saved = ", ".join(sorted(vectors)) if vectors else "none saved yet"
        raise VaekitError(f"no attribute vector '{name}' in {path} (saved: {saved})")
    return vectors[name]
