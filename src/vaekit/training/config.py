"""``TrainConfig``: every training setting, its default and its valid range, in one dataclass.

It is the single source for the Python API, settings files, ``--set``, ``config.json`` and
the ``vaekit train`` flags.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from vaekit.errors import VaekitError
from vaekit.objectives.image_terms import RECON_TERMS
from vaekit.objectives.regularizers import DEFAULT_TC_WEIGHT, parse_capacity
from vaekit.objectives.schedules import KLSchedule
from vaekit.schema import at_least, check_fields
from vaekit.threads import parse_threads
from vaekit.training.devices import DEVICE_CHOICES, native_bfloat16, valid_device
from vaekit.training.tracking.registry import parse_loggers

if TYPE_CHECKING:
    import torch


@dataclass
class TrainConfig:
    """How to train. ``kl_anneal`` is a schedule spec (see ``vaekit.objectives.schedules``);
    ``anneal_per`` is ``step`` (smooth) or ``epoch`` (the weight changes at epoch
    starts). ``lr_schedule``: ``cosine`` decay from ``lr`` to 0 over the run's steps
    (computed from the step count, so resume needs no extra state; extending a run with
    ``resume(epochs=...)`` stretches the decay to the new total) or ``constant``. The
    defaults (batch 64, cosine) gave ~4 nats better test ELBO than batch 128 at a constant
    rate on 10-epoch MNIST runs (benchmarks in the README).
    ``objective``: ``elbo``, or ``iwae`` with ``iw_samples`` importance samples per
    example (Burda et al. 2015; validation and early stopping still use the ELBO);
    ``btcvae`` (Chen et al. 2018) or ``factorvae`` (Kim & Mnih 2018), which penalise the
    latents' total correlation with weight ``tc_weight`` (default 6 and 35). ``capacity``
    (``C_MAX:EPOCHS``, with the ELBO) trains beta * |KL - C| with C rising to C_MAX nats
    (Burgess et al. 2018). See ``vaekit.objectives.regularizers``. ``recon_term`` ``ssim`` or
    ``perceptual`` adds ``recon_weight`` times a structural comparison of reconstruction and
    input, for sharper images (``vaekit.objectives.image_terms``).
    ``epochs``: a count, or ``auto``: at least ``MIN_EPOCHS`` epochs and at least
    ``MIN_UPDATES`` optimizer updates (``epochs_for``). Training length is counted in
    updates, not passes over the data: Adam at the default rate needs on the order of a
    thousand updates to fit a decoder, which 20 passes give MNIST (17,000 updates) but not
    400 faces in batches of 64 (120 updates, an under-trained blur); the run's
    ``config.json`` records the count ``auto`` became.
    ``likelihood_lr_factor``: a learned likelihood's own parameters (per-feature log
    variance and log degrees of freedom) learn at ``lr`` times this, under the same schedule
    (``vaekit.training.param_groups``: a short fit at the network's rate leaves them near
    their starting values).
    ``early_stopping`` is a patience in epochs on the validation loss
    (recon + beta * KL); ``grad_clip`` a max gradient norm; 0 turns either off.

    Speed options (``benchmarks/train_speed.py`` measures each; tests check each against
    the plain path): ``fused_optimizer`` uses Adam's single-kernel implementation (the
    same update, ~30% faster steps for small models on CPU; on by default);
    ``precision="bfloat16"`` runs the network's matrix products under bfloat16 autocast
    while the loss, the weights and the optimizer state stay float32 (fast where the CPU
    has AVX512-BF16/AMX, or on a GPU; elsewhere it runs, slower); ``precision="auto"`` is
    bfloat16 on a CPU that multiplies it natively and float32 elsewhere (``for_device``; a
    run's ``config.json`` records which), the sequence VAE's default; ``compile`` passes the
    training forward through ``torch.compile`` (needs a C++ compiler; the first steps
    pay a few seconds of compilation). Validation and evaluation always run in float32.
    ``flush_denormal`` flushes denormal numbers to zero while training (on by default: the
    weights drift towards them and they made late epochs ~29% slower).
    ``threads``: torch's CPU compute threads, ``auto`` or a count (``vaekit.threads``:
    ``auto`` is one thread unless the step's work is large and cores are free).

    ``loggers``: experiment trackers that also get each epoch's metrics, the settings and
    the pictures: ``none``, ``tensorboard``, ``mlflow`` or both joined by a comma (the
    ``track`` extra; see ``vaekit.training.tracking``)."""

    epochs: int | str = field(default="auto", metadata=at_least(1))
    batch_size: int = field(default=64, metadata=at_least(1))
    lr: float = field(default=1e-3, metadata={"above": 0})
    lr_schedule: str = "cosine"
    likelihood_lr_factor: float = field(default=1.0, metadata={"above": 0})
    weight_decay: float = field(default=0.0, metadata=at_least(0))
    beta: float = field(default=1.0, metadata=at_least(0))
    kl_anneal: str = "none"
    anneal_per: str = "step"
    free_bits: float = field(default=0.0, metadata=at_least(0))
    objective: str = "elbo"
    iw_samples: int = field(default=5, metadata=at_least(1))
    tc_weight: float | None = field(default=None, metadata=at_least(0))
    capacity: str = "none"
    recon_term: str = "none"
    recon_weight: float = field(default=1.0, metadata=at_least(0))
    grad_clip: float = field(default=0.0, metadata=at_least(0))  # 0: off
    early_stopping: int = field(default=0, metadata=at_least(0))  # 0: off
    seed: int = 0
    device: str = "auto"
    eval_batch_size: int = field(default=1024, metadata=at_least(1))
    fused_optimizer: bool = True
    precision: str = "float32"
    compile: bool = False
    loggers: str = "none"
    threads: int | str = "auto"
    flush_denormal: bool = True

    def __post_init__(self) -> None:
        check_fields(self)  # types, finite numbers and ranges (the fields' metadata) first
        if isinstance(self.epochs, str) and self.epochs != AUTO_EPOCHS:
            raise VaekitError(f"epochs: expected auto or a count of at least 1, got {self.epochs!r}")
        checks = [
            ("anneal_per", self.anneal_per in ("step", "epoch"), "'step' or 'epoch'"),
            ("lr_schedule", self.lr_schedule in LR_SCHEDULES, " or ".join(LR_SCHEDULES)),
            ("objective", self.objective in OBJECTIVES, " or ".join(OBJECTIVES)),
            ("recon_term", self.recon_term in RECON_TERMS, " or ".join(RECON_TERMS)),
            ("precision", self.precision in PRECISIONS, " or ".join(PRECISIONS)),
            ("device", valid_device(self.device), DEVICE_CHOICES),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise VaekitError(f"{name}: expected {expected}, got {getattr(self, name)!r}")
        self.threads = parse_threads(self.threads)
        KLSchedule.parse(self.kl_anneal, MIN_EPOCHS if self.epochs == AUTO_EPOCHS else self.epochs)
        parse_loggers(self.loggers)
        if self.objective == "iwae" and self.free_bits > 0:
            raise VaekitError("free_bits: applies to the ELBO objective only, not to iwae (set one of them)")
        if parse_capacity(self.capacity) and (self.objective != "elbo" or self.free_bits > 0):
            raise VaekitError(f"capacity: applies to the plain ELBO only (objective elbo, no free_bits), "
                              f"got objective {self.objective!r} and free_bits {self.free_bits}")
        if self.objective in DEFAULT_TC_WEIGHT:
            if self.free_bits > 0:
                raise VaekitError(f"free_bits: does not combine with objective {self.objective} (set one of them)")
            if self.tc_weight is None:
                self.tc_weight = DEFAULT_TC_WEIGHT[self.objective]

    @property
    def loss_samples(self) -> int:
        """Importance samples per example in the training loss (1 for the ELBO)."""
        return self.iw_samples if self.objective == "iwae" else 1

    def for_data(self, examples: int) -> TrainConfig:
        """This config with ``epochs="auto"`` replaced by its count for ``examples`` training examples."""
        if self.epochs != AUTO_EPOCHS:
            return self
        return replace(self, epochs=epochs_for(examples, self.batch_size))

    def for_device(self, device: torch.device) -> TrainConfig:
        """This config with ``precision="auto"`` replaced by the precision it means on ``device``:
        bfloat16 where that device multiplies it natively (``native_bfloat16``), else float32."""
        if self.precision != AUTO_PRECISION:
            return self
        return replace(self, precision="bfloat16" if native_bfloat16(device) else "float32")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise VaekitError(f"train config: unknown field(s) {sorted(unknown)} (known: {sorted(known)})")
        return cls(**d)


AUTO_EPOCHS = "auto"
#: What ``epochs="auto"`` guarantees: this many passes over the data and this many updates.
MIN_EPOCHS, MIN_UPDATES = 20, 1000


def updates_per_epoch(examples: int, batch_size: int) -> int:
    """The optimizer updates one pass over ``examples`` makes in batches of ``batch_size`` (at least one)."""
    return max(1, math.ceil(examples / batch_size))


def epochs_for(examples: int, batch_size: int) -> int:
    """The epochs ``auto`` trains for: ``MIN_EPOCHS``, or more when they make fewer than
    ``MIN_UPDATES`` optimizer updates (a small dataset)."""
    return max(MIN_EPOCHS, math.ceil(MIN_UPDATES / updates_per_epoch(examples, batch_size)))


LR_SCHEDULES = ("constant", "cosine")
OBJECTIVES = ("elbo", "iwae", "btcvae", "factorvae")
AUTO_PRECISION = "auto"
PRECISIONS = ("float32", "bfloat16", AUTO_PRECISION)
