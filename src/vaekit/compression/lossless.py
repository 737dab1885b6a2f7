"""Lossless mode: bits-back ANS coding with a VAE, from ``vaekit.compression.bitsback``.

That module (a sibling, written separately) provides ``compress_lossless(model, images,
seed, labels)`` and ``decompress_lossless(model, payload, n, shape, with_labels)``; this
one imports it lazily so lossy compression works without it and a missing one is one
clear line.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch

from vaekit.errors import VaekitError


def _bitsback() -> Any:
    try:
        return importlib.import_module("vaekit.compression.bitsback")
    except ModuleNotFoundError as e:
        if e.name != "vaekit.compression.bitsback":
            raise
        raise VaekitError("lossless compression (bits-back coding) is not available in this vaekit "
                          "(vaekit.compression.bitsback is missing)") from None


def compress_lossless(model: Any, images: torch.Tensor, seed: int = 0, labels: torch.Tensor | None = None) -> bytes:
    """Binary images (and a conditional model's labels) -> a bits-back payload (no header:
    the container adds it)."""
    return _bitsback().compress_lossless(model, images, seed=seed, labels=labels)


def decompress_lossless(model: Any, payload: bytes, n: int, shape: tuple[int, ...], with_labels: bool = False
                        ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
    """A bits-back payload -> the ``n`` binary images of ``shape``, exactly (with
    ``with_labels``: and the labels a conditional model coded them with)."""
    return _bitsback().decompress_lossless(model, payload, n, tuple(shape), with_labels=with_labels)
