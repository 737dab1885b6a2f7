"""The in-memory dataset bundle that every loader returns and every tool consumes.

Small datasets (MNIST-sized and below) live as whole tensors so the trainer can batch
them by index permutation, which is far faster on a CPU than a per-sample DataLoader.
``DataInfo`` carries what a model needs to know about the data (shape, value range,
the likelihood that fits) and is stored in ``config.json`` so a run can be rebuilt
without the data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from vaekit.data.standardize import Standardizer
from vaekit.errors import VaekitError

#: Sequences: batches per length bucket of ``Dataset.train_order`` (sorted within a bucket,
#: so a larger bucket wastes less padding but mixes the data less).
BUCKET_BATCHES = 50


@dataclass
class DataInfo:
    """What a model and the tools need to know about a dataset, JSON round-trippable.

    ``shape`` is one example's shape: ``(C, H, W)`` for images, ``(D,)`` for tables and
    flat arrays. ``likelihood`` is ``"bernoulli"`` for data in [0, 1] (pixels, binary)
    and ``"gaussian"`` for real-valued data (standardized tables) and grey-level images
    (``loading._image_likelihood``), whose Gaussian std ``obs_std`` the data fixes (``None``:
    the model's own default).

    Sequences (``kind == "sequence"``, molecules: ``vaekit.data.molecules.sequences``): each example
    is a row of ``max_length`` token ids (padded) followed by the standardized values of the
    ``targets`` columns, so ``shape == (max_length + len(targets),)``; ``vocabulary`` lists
    the tokens by id (made by ``tokenizer``), ``target_mean`` / ``target_std`` undo the
    targets' standardization, and ``likelihood`` is ``"categorical"``.
    """

    name: str
    shape: tuple[int, ...]
    kind: str = "array"  # "image" | "table" | "array" | "sequence"
    value_range: tuple[float, float] = (0.0, 1.0)
    likelihood: str = "bernoulli"
    obs_std: float | None = None
    dynamic_binarization: bool = False
    columns: list[str] | None = None
    class_names: list[str] | None = None
    source: str = ""
    vocabulary: list[str] | None = None
    tokenizer: str | None = None
    targets: list[str] | None = None
    target_mean: list[float] | None = None
    target_std: list[float] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["value_range"] = list(self.value_range)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataInfo:
        d = dict(d)
        d["shape"] = tuple(d["shape"])
        d["value_range"] = tuple(d.get("value_range", (0.0, 1.0)))
        return cls(**d)


@dataclass
class Dataset:
    """Train / validation / test tensors (float32, shape ``(N, *info.shape)``) and labels.

    ``val`` and ``test`` may be ``None``. Labels are int64 tensors or ``None``.
    ``standardizer`` is set for tables: it was fitted on the training rows and must be
    applied to any new data given to a model trained on this bundle.
    """

    train: torch.Tensor
    info: DataInfo
    val: torch.Tensor | None = None
    test: torch.Tensor | None = None
    train_labels: torch.Tensor | None = None
    val_labels: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None
    standardizer: Standardizer | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    #: Sequences: each training example's length in tokens; ``train_order`` buckets by it.
    train_lengths: torch.Tensor | None = None

    def train_epoch_view(self, generator: torch.Generator) -> torch.Tensor:
        """The training tensor for one epoch.

        With dynamic binarization (Burda et al. 2015) every epoch sees a fresh
        Bernoulli(pixel) draw of the grey-level training images; otherwise the data
        as stored.
        """
        if self.info.dynamic_binarization:
            return torch.bernoulli(self.train, generator=generator)
        return self.train

    def train_order(self, generator: torch.Generator, batch_size: int) -> torch.Tensor:
        """The order of the training examples for one epoch; the trainer takes batches of
        ``batch_size`` consecutive positions of it.

        A random permutation; with ``train_lengths`` (sequences) the permutation is cut into
        buckets of ``BUCKET_BATCHES`` batches, each bucket sorted by length and cut into
        batches, and the full batches shuffled (the one short batch, if any, stays last so
        every batch starts at a multiple of ``batch_size``). Batches then hold sequences of
        similar length, so padding costs little, while each epoch still sees the data in a
        new random order. Drawn only from ``generator``, so resume stays exact.
        """
        n = len(self.train)
        perm = torch.randperm(n, generator=generator)
        if self.train_lengths is None or batch_size >= n:
            return perm
        lengths = self.train_lengths[perm]
        bucket = batch_size * BUCKET_BATCHES
        sorted_perm = torch.cat([perm[s:s + bucket][torch.sort(lengths[s:s + bucket], stable=True).indices]
                                 for s in range(0, n, bucket)])
        full = n // batch_size
        batches = sorted_perm[:full * batch_size].reshape(full, batch_size)
        batches = batches[torch.randperm(full, generator=generator)]
        return torch.cat([batches.reshape(-1), sorted_perm[full * batch_size:]])

    def split(self, name: str) -> torch.Tensor:
        """The tensor of split ``name`` ("train", "val" or "test"), or a clear error."""

        tensor = getattr(self, name, None) if name in ("train", "val", "test") else None
        if tensor is None:
            raise VaekitError(f"dataset '{self.info.name}' has no '{name}' split (expected one of: train, val, test)")
        return tensor
