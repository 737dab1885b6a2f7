"""``load``: a dataset name, a path or a ``DataConfig`` in, a ``Dataset`` of tensors out.

The reader is chosen by the source (a named set, an image folder, an array, a table, a
molecule file); every reader returns ``Parts`` that are split, standardized and shaped here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaekit.data import registry
from vaekit.data.bundle import DataInfo, Dataset
from vaekit.data.config import DataConfig
from vaekit.data.molecules.sequences import is_molecule_source, load_molecules
from vaekit.data.parts import Parts
from vaekit.data.readers import SUPPORTED, read_path
from vaekit.data.registry import known_datasets
from vaekit.data.splits import split_indices
from vaekit.data.standardize import Standardizer
from vaekit.data.tables import column_order
from vaekit.errors import VaekitError

#: Seeds of the one-off binarization of the evaluation splits of dynamically binarized
#: data (Burda et al. 2016): fixed, so every run is evaluated on the same binary images.
TEST_BINARIZATION_SEED = 0
#: Images in [0, 1] get a Bernoulli likelihood when at least this share of the training
#: pixels lies within ``NEAR_BINARY`` of 0 or 1 (MNIST 0.91, Fashion-MNIST 0.61, 8x8 digits
#: 0.65), else a Gaussian (grey-level photographs: Frey faces 0.001, Olivetti 0.006).
BINARY_SHARE = 0.5
NEAR_BINARY = 0.1
VAL_BINARIZATION_SEED = 1


def load(
    source: str | os.PathLike | DataConfig = "digits",
    *,
    standardizer: Standardizer | None = None,
    expected_shape: Sequence[int] | None = None,
    **overrides: Any,
) -> Dataset:
    """Load a named dataset or the data at a path, split into train / val / test.

    ``overrides`` are ``DataConfig`` fields (``val_fraction=0.2``, ``limit=1000``, ...).
    ``standardizer``: apply this (a trained run's) instead of fitting one on the training
    rows; the table's columns must match its columns (reordered by name if needed).
    ``expected_shape``: the example shape a trained model needs; image folders are
    resized / converted to it, other data must already have it.

    Splits: named datasets keep their official test set (and validation set, if any);
    user data without a test part gets ``test_fraction`` of its examples as test set
    (fixed seed), then ``val_fraction`` of the rest becomes the validation set
    (``split_seed``); ``limit`` cuts the training split. ``extras`` holds
    ``{split}_index`` (int64 positions in the source's examples, file order, for splits
    carved out here) and, for image folders, ``{split}_files`` (paths relative to the folder).
    """
    config = source if isinstance(source, DataConfig) else DataConfig(source=os.fspath(source))
    config = config.replace(**overrides)
    if _molecules(config):

        return load_molecules(config)
    shape = tuple(int(s) for s in expected_shape) if expected_shape is not None else None
    parts, name, origin = _read(config, shape)
    if standardizer is not None:
        _match_standardizer(parts, standardizer, origin)
    return _assemble(parts, config, name, origin, standardizer, shape)


def load_for_model(
    source: str | os.PathLike | DataConfig,
    info: DataInfo,
    standardizer: Standardizer | None = None,
    **overrides: Any,
) -> Dataset:
    """New data for a model trained on data described by ``info`` (and ``standardizer``).

    User data is not split: every example is in ``train``, in file order (``train_files``
    in ``extras`` for image folders). Images are resized and converted to ``info.shape``;
    tables are standardized with the given standardizer and must have its columns. A named
    dataset keeps its official splits.
    """
    return load(
        source,
        standardizer=standardizer,
        expected_shape=info.shape,
        **{"val_fraction": 0.0, "test_fraction": 0.0, **overrides},
    )


def _molecules(config: DataConfig) -> bool:
    """Molecule sources go to ``vaekit.data.molecules.sequences``; molecule options elsewhere are errors."""

    if config.tokens is not None and registry.normalize_name(config.source) in registry.DATASETS:
        raise VaekitError(f"tokens apply to molecules, not to the named dataset '{config.source}'")
    if is_molecule_source(config):
        return True
    given = [f for f in ("properties", "smiles_column") if getattr(config, f)] + (["augment"] if config.augment else [])
    if given:
        raise VaekitError(f"{' and '.join(given)} apply to molecules only, not to '{config.source}' (set tokens to "
                          "read it as SMILES)")
    return False


def _read(config: DataConfig, shape: tuple[int, ...] | None) -> tuple[Parts, str, str]:
    """Decode the source: ``(parts, dataset name, where it came from)``."""
    key = registry.normalize_name(config.source)
    if key in registry.DATASETS:
        spec = registry.DATASETS[key]
        _reject_options(config, f"the named dataset '{spec.name}'")
        if config.label_column is not None:
            raise VaekitError(f"label_column applies to tables only, not to the named dataset '{spec.name}'")
        return spec.load(), spec.name, spec.name
    path = Path(config.source).expanduser()
    if not path.exists():
        if not any(c in config.source for c in "/\\."):  # a bare word: most likely a mistyped dataset name
            raise VaekitError(
                f"unknown dataset '{config.source}' (known datasets: {', '.join(known_datasets())}; "
                f"or give a path to {SUPPORTED})"
            )
        raise VaekitError(
            f"no such file or directory: '{config.source}' (expected a dataset name "
            f"[{', '.join(known_datasets())}] or a path to {SUPPORTED})"
        )
    if not path.is_dir():
        _reject_options(config, f"'{config.source}'")
    parts = read_path(path, config, shape)
    if parts.kind != "table" and config.label_column is not None:
        raise VaekitError(f"label_column applies to tables (.csv, .parquet) only, not to '{config.source}'")
    name = path.name
    for suffix in (".gz", ".csv", ".tsv", ".npy", ".npz", ".parquet", ".pq"):
        name = name.removesuffix(suffix)
    return parts, name or "data", str(path.resolve())


def _reject_options(config: DataConfig, what: str) -> None:
    """Options that would silently do nothing for this source are errors instead."""
    given = [f for f in ("image_size", "channels") if getattr(config, f) is not None]
    if given:
        raise VaekitError(f"{' and '.join(given)} apply to image folders only, not to {what}")


def _match_standardizer(parts: Parts, standardizer: Standardizer, origin: str) -> None:
    """Check (and reorder) the features to the standardizer's columns, or explain the mismatch."""
    if not parts.standardize:
        raise VaekitError(
            f"'{origin}' holds {parts.kind} data that is not standardized, but a standardizer was given "
            "(it belongs to a model trained on a table)"
        )
    expected = standardizer.columns
    found = parts.columns
    if expected is not None and found is not None:
        order = column_order(found, list(expected), f"'{origin}'")
        if found != list(expected):
            parts.x = np.ascontiguousarray(parts.x[:, order])
            parts.columns = list(expected)
    dims = int(standardizer.mean.numel())
    if parts.x.shape[1:] != (dims,):
        raise VaekitError(
            f"'{origin}': examples have {parts.x.shape[1:]} features, but the trained model expects {dims}"
        )


def _tensor(a: np.ndarray | None) -> torch.Tensor | None:
    if a is None or len(a) == 0:
        return None
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def _labels(y: np.ndarray | None) -> torch.Tensor | None:
    return None if y is None else torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))


def _image_likelihood(train: torch.Tensor, parts: Parts) -> tuple[str, float | None]:
    """The likelihood that suits images in [0, 1], and a Gaussian's fixed std.

    Mostly near-black or near-white pixels (``BINARY_SHARE`` of them within ``NEAR_BINARY``
    of 0 or 1) are binary-ish, which a Bernoulli models; grey-level photographs get a
    Gaussian whose std is fixed at half the pixels' RMS deviation from the mean image, so a
    reconstruction as good as the data's own spread gains 2 nats a pixel whatever the
    contrast, and the decoder cannot explain the faces away as noise (a learned or unit std
    let Frey faces collapse).
    """
    lo, hi = parts.value_range
    if parts.standardize or parts.binarize_eval or lo < 0 or hi > 1 or train.numel() == 0:
        return parts.likelihood, None
    near = ((train < NEAR_BINARY) | (train > 1 - NEAR_BINARY)).float().mean().item()
    if near >= BINARY_SHARE:
        return "bernoulli", None
    spread = (train - train.mean(0)).pow(2).mean().sqrt().item()
    return "gaussian", round(max(spread / 2, 0.01), 4)


def _assemble(
    parts: Parts,
    config: DataConfig,
    name: str,
    origin: str,
    standardizer: Standardizer | None,
    shape: tuple[int, ...] | None,
) -> Dataset:
    """Split, cut, standardize / binarize, and wrap ``parts`` as a ``Dataset``."""
    train_idx, val_idx, test_idx = split_indices(
        len(parts.x),
        val_fraction=0.0 if parts.val_x is not None else config.val_fraction,
        test_fraction=0.0 if parts.test_x is not None else config.test_fraction,
        split_seed=config.split_seed,
        limit=config.limit,
    )
    extras: dict[str, Any] = {}
    splits: dict[str, tuple[np.ndarray | None, np.ndarray | None]] = {}
    for split, idx, given_x, given_y in (
        ("train", train_idx, None, None),
        ("val", val_idx, parts.val_x, parts.val_y),
        ("test", test_idx, parts.test_x, parts.test_y),
    ):
        if given_x is not None:
            splits[split] = (given_x, given_y)
            continue
        splits[split] = (parts.x[idx], None if parts.y is None else parts.y[idx])
        if len(idx):
            extras[f"{split}_index"] = torch.from_numpy(idx)
            if parts.names is not None:
                extras[f"{split}_files"] = [parts.names[i] for i in idx]

    tensors = {s: _tensor(x) for s, (x, _) in splits.items()}
    labels = {s: _labels(y) if tensors[s] is not None else None for s, (_, y) in splits.items()}
    train = tensors["train"]
    assert train is not None  # split_indices always leaves training examples

    value_range = parts.value_range
    if parts.standardize:
        standardizer = standardizer or Standardizer.fit(train, parts.columns)
        tensors = {s: None if t is None else standardizer.transform(t).contiguous() for s, t in tensors.items()}
        train = tensors["train"]
        assert train is not None
        value_range = (float(train.min()), float(train.max()))
    if parts.binarize_eval:
        for split, seed in (("val", VAL_BINARIZATION_SEED), ("test", TEST_BINARIZATION_SEED)):
            t = tensors[split]
            if t is not None:
                tensors[split] = torch.bernoulli(t, generator=torch.Generator().manual_seed(seed))

    found = tuple(int(s) for s in train.shape[1:])
    if shape is not None and found != shape:
        raise VaekitError(f"'{origin}': examples have shape {found}, but the trained model expects {shape}")
    likelihood, obs_std = _image_likelihood(train, parts) if parts.kind == "image" else (parts.likelihood, None)
    info = DataInfo(
        name=name,
        shape=found,
        kind=parts.kind,
        value_range=(float(value_range[0]), float(value_range[1])),
        likelihood=likelihood,
        obs_std=obs_std,
        dynamic_binarization=parts.binarize_eval,
        columns=parts.columns,
        class_names=parts.class_names,
        source=origin,
    )
    return Dataset(
        train=train,
        info=info,
        val=tensors["val"],
        test=tensors["test"],
        train_labels=labels["train"],
        val_labels=labels["val"],
        test_labels=labels["test"],
        standardizer=standardizer if parts.standardize else None,
        extras=extras,
    )
