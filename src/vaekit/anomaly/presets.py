"""The detector's presets: every setting of a fit, one frozen dataclass, one instance per kind of data.

``VAEAnomalyDetector(preset="auto" | "images" | "tables")`` fits with ``IMAGES`` or
``TABLES`` (``auto``: images for ``(N, H, W)`` / ``(N, C, H, W)`` input, tables for rows);
its ``model=`` override replaces any of their fields (a dict, or a whole ``Preset``), and
``latent_dim`` / ``epochs`` / ``anomaly_score`` replace theirs when not ``auto``. The CLI's
``--set FIELD=VALUE``, the benchmark and a saved detector name the same fields: ``FIELDS``
and ``parse_override`` are the one list. How each value was chosen, with its measurements,
is in docs/benchmarks/anomaly.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, is_dataclass, replace
from typing import Any

import numpy as np

from vaekit.anomaly.errors import AnomalyInputError
from vaekit.anomaly.fits import ENSEMBLES
from vaekit.anomaly.scores import score_parts
from vaekit.models.observation import LIKELIHOODS
from vaekit.training.config import updates_per_epoch

#: The families a detector can train: their likelihood is the ELBO's, with no second stage.
DETECTOR_MODELS = ("vae", "hvae")
#: How each feature is scaled (``standardize``); True / False are read as standard / none.
SCALINGS = ("robust", "standard", "none")
#: The fields that are sequences: tuples in a preset, JSON lists on disk, ``a,b,c`` on a command line.
SEQUENCES = ("hidden", "channels", "groups")
#: The fields that may be None (``none`` on a command line).
OPTIONAL = ("groups", "max_updates")


@dataclass(frozen=True)
class Preset:
    """Every setting of a fit: the network, the latent, the likelihood, the scaling, the
    training, the score and the trimmed refits. Each field is checked when a preset is made,
    so a bad override is a one-line ``AnomalyInputError`` naming the field.

    ``family``: vae or hvae (whose latent ``groups``, top first, replace ``latent_dim``;
    None: ``(latent_dim, latent_dim)``). ``likelihood``: bernoulli, gaussian, student-t, or
    ``auto`` (Bernoulli for unscaled data in [0, 1], Gaussian otherwise). ``obs_std`` /
    ``learn_obs_std``: the Gaussian's std (Student-t's scale), learned per feature from
    there; ``obs_df`` / ``learn_obs_df``: the Student-t's degrees of freedom, likewise;
    ``heteroscedastic``: the decoder also outputs a std per example (at least
    ``min_obs_std``). ``standardize``: robust (median, and the smaller of IQR / 1.349 and the
    std), standard or none, fitted once on all training rows. ``score``: recon, elbo, nll,
    knn or a sum such as recon+knn; ``k`` samples for elbo / nll, ``n_neighbors`` codes for
    knn. ``max_updates``: fewer ``epochs`` where the training rows are so many that they would
    make more optimizer updates than this (None: no limit). ``likelihood_lr_factor``: the
    learned scale and degrees of freedom learn at ``lr`` times this (``TrainConfig``'s).
    ``trim``: the share of training rows, the highest scored, that each of ``trim_rounds``
    refits leaves out (0: one fit); ``ensemble``: which fits score (refits, last, all).
    """

    latent_dim: int
    hidden: tuple[int, ...]
    likelihood: str
    learn_obs_std: bool
    obs_df: float
    learn_obs_df: bool
    standardize: str
    beta: float
    epochs: int
    score: str
    trim: float
    trim_rounds: int
    family: str = "vae"
    arch: str = "mlp"
    channels: tuple[int, ...] = (32, 64)
    groups: tuple[int, ...] | None = None
    obs_std: float = 1.0
    heteroscedastic: bool = False
    min_obs_std: float = 0.05
    kl_anneal: str = "none"
    batch_size: int = 64
    lr: float = 1e-3
    likelihood_lr_factor: float = 1.0
    k: int = 100
    n_neighbors: int = 10
    ensemble: str = "refits"
    max_updates: int | None = None

    def __post_init__(self) -> None:
        for name, value in _checked(self).items():
            object.__setattr__(self, name, value)


_TYPES = {"latent_dim": int, "obs_df": float, "beta": float, "epochs": int, "trim": float, "trim_rounds": int,
          "obs_std": float, "min_obs_std": float, "batch_size": int, "lr": float, "likelihood_lr_factor": float,
          "k": int, "n_neighbors": int,
          "max_updates": int, "learn_obs_std": bool, "learn_obs_df": bool, "heteroscedastic": bool,
          **{name: tuple for name in SEQUENCES}}


def _checked(p: Preset) -> dict[str, Any]:
    """Each field of ``p`` checked and normalized (numbers cast, sequences as tuples), or an
    ``AnomalyInputError`` naming the field."""
    out: dict[str, Any] = {}
    for name, kind in _TYPES.items():
        value = getattr(p, name)
        if value is None and name in OPTIONAL:
            continue
        if kind is tuple:
            if value is None or isinstance(value, (str, bytes)) or not all(_is_int(v) and v >= 1 for v in value):
                raise AnomalyInputError(f"{name}: expected positive integers, got {value!r}")
            out[name] = tuple(int(v) for v in value)
        elif kind is bool:
            if value not in (True, False):
                raise AnomalyInputError(f"{name}: expected True or False, got {value!r}")
            out[name] = bool(value)
        elif kind is int:
            if not _is_int(value) or value < 1:
                raise AnomalyInputError(f"{name}: expected a positive integer, got {value!r}")
            out[name] = int(value)
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not np.isfinite(value):
                raise AnomalyInputError(f"{name}: expected a number, got {value!r}")
            out[name] = float(value)
    ranges = {"trim": (0 <= out["trim"] < 0.5, "a number in [0, 0.5)"), "beta": (out["beta"] >= 0, "a number >= 0"),
              "obs_df": (out["obs_df"] > 0, "a positive number"), "lr": (out["lr"] > 0, "a positive number"),
              "obs_std": (out["obs_std"] > 0, "a positive number"),
              "likelihood_lr_factor": (out["likelihood_lr_factor"] > 0, "a positive number")}
    for name, (ok, expected) in ranges.items():
        if not ok:
            raise AnomalyInputError(f"{name}: expected {expected}, got {getattr(p, name)!r}")
    choices = {"family": DETECTOR_MODELS, "likelihood": ("auto", *LIKELIHOODS), "ensemble": ENSEMBLES,
               "arch": ("mlp", "conv")}
    for name, allowed in choices.items():
        if getattr(p, name) not in allowed:
            raise AnomalyInputError(f"{name}: expected {', '.join(allowed)}, got {getattr(p, name)!r}")
    scaling = {True: "standard", False: "none"}.get(p.standardize, p.standardize)  # type: ignore[call-overload]
    if scaling not in SCALINGS:
        raise AnomalyInputError(f"standardize: expected {', '.join(SCALINGS)}, True or False, got {p.standardize!r}")
    out["standardize"] = scaling
    try:
        score_parts(p.score)
    except ValueError as exc:
        raise AnomalyInputError(f"anomaly_score: {exc}") from None
    if out["heteroscedastic"]:
        if p.likelihood == "bernoulli":
            raise AnomalyInputError("heteroscedastic: needs a Gaussian or Student-t likelihood (a std per "
                                    "example), got likelihood='bernoulli'")
        if not 0 < out["min_obs_std"] < out["obs_std"]:
            raise AnomalyInputError(f"min_obs_std: expected a number in (0, obs_std={p.obs_std!r}), "
                                    f"got {p.min_obs_std!r}")
    return out


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


#: Images (one-class training data, pixels in [0, 1]): the MLP of ``vaekit train`` on MNIST
#: and a 16-dim latent, enough for a digit's or a garment's variations; a Bernoulli decoder,
#: the likelihood of pixel intensities, on unscaled pixels; scored by the reconstruction error
#: plus the distance to the nearest training codes, since a likelihood score ranks simple images
#: (few ink pixels) as normal whatever they show; no trimming, as one-class training images are
#: normal and trimming would only drop their hard cases; long training, as images keep improving.
IMAGES = Preset(latent_dim=16, hidden=(512, 256), likelihood="auto", learn_obs_std=False, obs_df=3.0,
                learn_obs_df=False, standardize="none", beta=1.0, epochs=200, score="recon+knn", trim=0.0,
                trim_rounds=1)

#: Tables (rows of a few dozen features, with anomalies left in the training rows): a small
#: narrowing network and a 2-dim latent, a bottleneck too tight to also encode the anomalies;
#: robust scaling, which those anomalies do not inflate; a Student-t decoder whose scale and
#: degrees of freedom each feature learns, so a feature's error counts by how well normal rows
#: reconstruct it and heavy tails cost log(distance) rather than its square; the ELBO as derived
#: (KL weight 1), so the density the score reads is the model's own bound and the latent is not
#: pushed to the prior (a heavier weight left it unused on simply structured tables, which then
#: score like the distance to the mean); scored by the three things a VAE knows of
#: a row, combined by Fisher's rule so that a row rare in any one of them stands out: its density
#: (the negative ELBO), its distance to the training rows' codes (anomalies between clusters of
#: normal rows), and its residual's Mahalanobis distance (relations between features that the
#: small latent does not carry, which the per-feature likelihood cannot see); short training
#: (50 epochs, and no more than 10,000 updates: beyond that, more rows of the same table
#: stand in for more passes over it, and a large table costs no more time than a mid-sized
#: one) and three refits each without the 30% of rows scored highest, the concentration steps
#: of FAST-MCD with a VAE in place of the covariance, averaged.
TABLES = Preset(latent_dim=2, hidden=(128, 64, 32), likelihood="student-t", learn_obs_std=True, obs_df=10.0,
                learn_obs_df=True, standardize="robust", beta=1.0, epochs=50, score="elbo+knn+resid", trim=0.3,
                trim_rounds=3, max_updates=10_000)

PRESETS = {"images": IMAGES, "tables": TABLES}
#: The field names, in order: what ``model=`` and ``--set`` accept.
FIELDS = tuple(f.name for f in fields(Preset))


def resolve(preset: str, kind: str, model: Any = None, **chosen: Any) -> Preset:
    """The settings of a fit: ``preset`` (``auto``: ``kind``, images or tables), with the ``model``
    override's fields and the ``chosen`` fields that are not ``auto`` (latent_dim, epochs, score)."""
    base = model if isinstance(model, Preset) else PRESETS[kind if preset == "auto" else preset]
    changes = {**override_fields(model), **{name: v for name, v in chosen.items() if not _is_auto(v)}}
    return replace(base, **changes) if changes else base


def capped_epochs(settings: Preset, rows: int) -> int:
    """The epochs a fit on ``rows`` training rows makes: the preset's, or as many as ``max_updates``
    optimizer updates allow where the rows are so many that they would make more (at least one)."""
    if settings.max_updates is None:
        return settings.epochs
    return max(1, min(settings.epochs, settings.max_updates // updates_per_epoch(rows, settings.batch_size)))


def override_fields(model: Any) -> dict[str, Any]:
    """The fields a ``model=`` override sets: None (none), a dict, or a dataclass (all of its fields)."""
    if model is None or isinstance(model, Preset):
        return {}
    if is_dataclass(model) and not isinstance(model, type):
        model = asdict(model)
    if not isinstance(model, dict):
        raise AnomalyInputError(f"model: expected None, a dict or a Preset of settings, got {model!r}")
    unknown = sorted(set(model) - set(FIELDS))
    if unknown:
        raise AnomalyInputError(f"model: unknown setting(s) {', '.join(map(str, unknown))} "
                                f"(expected some of {', '.join(FIELDS)})")
    return dict(model)


def parse_override(pairs: list[str]) -> dict[str, Any]:
    """``FIELD=VALUE`` strings (the CLI's and the benchmark's ``--set``) as a ``model=`` dict, each
    value read by its field's type: numbers, yes / no, ``a,b,c`` for sequences, ``none``."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in FIELDS:
            raise AnomalyInputError(f"--set: expected FIELD=VALUE with FIELD one of {', '.join(FIELDS)}, "
                                    f"got '{pair}'")
        out[name] = _parse_value(name, text.strip())
    return out


def _parse_value(name: str, text: str) -> Any:
    kind = _TYPES.get(name, str)
    try:
        if name in OPTIONAL and text in ("none", ""):
            return None
        if name in SEQUENCES:
            return tuple(int(v) for v in text.split(","))
        if kind is bool:
            if text not in ("yes", "no", "true", "false"):
                raise ValueError(text)
            return text in ("yes", "true")
        return text if kind is str else kind(text)
    except ValueError:
        expected = {bool: "yes or no", int: "an integer", float: "a number"}.get(kind, "integers such as 64,32")
        raise AnomalyInputError(f"--set {name}: expected {expected}, got '{text}'") from None


def _is_auto(value: Any) -> bool:
    return isinstance(value, str) and value == "auto"
