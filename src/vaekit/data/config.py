"""What data a run uses and how it is split, as a small JSON-round-trippable record.

A run stores ``DataConfig.to_dict()`` in its config so the exact same data and split
can be rebuilt later with ``vaekit.data.load(DataConfig.from_dict(d))``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from vaekit.data.molecules.tokens import TOKENIZERS
from vaekit.errors import VaekitError
from vaekit.schema import check_fields


@dataclass
class DataConfig:
    """Where the data comes from and how it is split and shaped.

    - ``source``: a dataset name (see ``vaekit.data.known_datasets()``) or a path to an
      image folder, ``.npy``, ``.npz``, ``.csv``/``.tsv`` (optionally ``.gz``) or ``.parquet``.
    - ``val_fraction``: share of the training part held out for validation (seeded by
      ``split_seed``). Ignored when the data brings its own validation split.
    - ``test_fraction``: share of *all* examples held out as a test set, only for user data
      that has no test part of its own (named datasets use their official test sets). The
      test split uses a fixed seed (0), independent of ``split_seed``, so runs with
      different ``split_seed`` are compared on the same test set. With the defaults user
      data is split 81 / 9 / 10 (train / val / test).
    - ``image_size``: resize image folders to ``image_size x image_size``. ``None``: keep
      the images' own size if they all have the same size; if sizes differ, resize to a
      square whose side is the smallest image's shorter side, capped at 64 (never
      upsamples, keeps models small).
    - ``channels``: 1 (grayscale) or 3 (RGB) for image folders; ``None``: RGB if any image
      is in colour (an RGB file whose three channels are equal counts as grey).
    - ``limit``: keep only the first ``limit`` training examples (quick tests); the
      validation and test splits are unchanged.
    - ``label_column``: for tables, a column holding labels; it is excluded from the
      features.

    Molecules (``vaekit.data.molecules.sequences``; a named set ``moses`` / ``zinc250k``, a ``.smi``
    file, or any SMILES file once ``tokens`` is set):

    - ``tokens``: ``selfies`` or ``smiles`` (None: ``DEFAULT_TOKENS`` for molecule sources; a sequence
      model sets it, so a ``.csv`` with a SMILES column is read as molecules, not as a table).
    - ``properties``: numeric columns (``logP``, ``qed``...) a property head learns from z.
    - ``augment``: randomised SMILES added per training molecule (seeded).
    - ``smiles_column``: the SMILES column of a CSV (default: the one named SMILES).
    - ``limit`` is a seeded random subset of the molecules, taken before the split (and of a
      named set's own test set).
    """

    source: str = "digits"
    val_fraction: float = 0.1
    split_seed: int = 0
    image_size: int | None = None
    channels: int | None = None
    limit: int | None = None
    label_column: str | None = None
    test_fraction: float = 0.1
    tokens: str | None = None
    properties: list[str] | None = None
    augment: int = 0
    smiles_column: str | None = None

    def __post_init__(self) -> None:
        check_fields(self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataConfig:
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise VaekitError(f"unknown data setting(s) {unknown} (expected some of: {', '.join(names)})")
        config = cls(**d)
        config.validate()
        return config

    def replace(self, **overrides: Any) -> DataConfig:
        """A copy with ``overrides`` applied; unknown names are a ``VaekitError``."""
        d = self.to_dict()
        d.update(overrides)
        return DataConfig.from_dict(d)

    def validate(self) -> None:
        """Check value ranges, naming the offending field."""
        if not isinstance(self.source, str) or not self.source.strip():
            raise VaekitError(f"data source must be a dataset name or a path, got {self.source!r}")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value < 1.0:
                raise VaekitError(f"{name} must be a number in [0, 1), got {value!r}")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise VaekitError(
                f"val_fraction + test_fraction must be below 1, got {self.val_fraction} + {self.test_fraction}"
            )
        if not isinstance(self.split_seed, int) or isinstance(self.split_seed, bool):
            raise VaekitError(f"split_seed must be an integer, got {self.split_seed!r}")
        for name in ("image_size", "limit"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise VaekitError(f"{name} must be a positive integer or None, got {value!r}")
        if self.channels not in (None, 1, 3):
            raise VaekitError(f"channels must be 1 (grayscale), 3 (RGB) or None (auto), got {self.channels!r}")
        if self.label_column is not None and not isinstance(self.label_column, str):
            raise VaekitError(f"label_column must be a column name or None, got {self.label_column!r}")
        if self.tokens is not None and self.tokens not in TOKENIZERS:
            raise VaekitError(f"tokens must be one of {', '.join(TOKENIZERS)}, got {self.tokens!r}")
        if self.properties is not None and (not isinstance(self.properties, list) or
                                            not all(isinstance(p, str) and p for p in self.properties)):
            raise VaekitError(f"properties must be a list of column names, got {self.properties!r}")
        if not isinstance(self.augment, int) or isinstance(self.augment, bool) or self.augment < 0:
            raise VaekitError(f"augment must be a non-negative integer, got {self.augment!r}")
        if self.smiles_column is not None and not isinstance(self.smiles_column, str):
            raise VaekitError(f"smiles_column must be a column name or None, got {self.smiles_column!r}")
