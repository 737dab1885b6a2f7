"""Data and labels from files, for the detector and the CLI.

Examples come through vaekit's own readers (``vaekit.data.readers``: image folders,
``.npy`` / ``.npz``, CSV / TSV / Parquet tables) *unscaled*: the detector fits and
applies its own standardizer. For scoring, images are brought to the detector's shape
(resized, converted to grey or colour) and table columns are matched by name.

Labels (for ROC / PR curves) say 1 = anomaly, 0 = normal. They come from a table column
(``--labels COL``) or a file (``--labels FILE``): ``.npy``, or text / CSV with one value
per line and an optional header (with several columns, the one named ``label``,
``labels``, ``anomaly``, ``is_anomaly``, ``outlier``, ``y`` or ``target`` is used).
Accepted values: 0 / 1, true / false, normal / anomaly, inlier / outlier.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vaekit.anomaly.errors import AnomalyInputError
from vaekit.data.config import DataConfig
from vaekit.data.readers import SUPPORTED, read_path
from vaekit.data.tables import table_columns

LABEL_COLUMNS = ("label", "labels", "anomaly", "is_anomaly", "outlier", "y", "target")
_BINARY = {"0": 0, "1": 1, "false": 0, "true": 1, "normal": 0, "anomaly": 1, "inlier": 0, "outlier": 1,
           "0.0": 0, "1.0": 1}


@dataclass
class Examples:
    """Raw examples read from ``source``: ``x`` is ``(N, D)`` or ``(N, C, H, W)`` float32."""

    x: np.ndarray
    kind: str
    source: str
    columns: list[str] | None = None
    names: list[str] | None = None  # image files, relative to the folder
    labels: np.ndarray | None = None  # 1 = anomaly, from a label column

    @property
    def is_image(self) -> bool:
        return self.x.ndim == 4


def read_examples(source: str | Path, *, label_column: str | None = None, image_size: int | None = None,
                  channels: int | None = None, shape: tuple[int, ...] | None = None,
                  ignore_column: str | None = None) -> Examples:
    """Read ``source`` (a path); ``shape`` forces images to a fitted detector's ``(C, H, W)``.

    ``label_column`` is read as binary labels; ``ignore_column`` (the label column the
    detector was fitted without) is left out of the features when present.
    """
    path = Path(source).expanduser()
    if not path.exists():
        raise AnomalyInputError(f"no such file or directory: '{source}' (expected {SUPPORTED})")
    column = label_column
    if column is None and ignore_column is not None and path.is_file() and ignore_column in table_columns(path):
        column = ignore_column
    config = DataConfig(source=str(path), label_column=column, image_size=image_size, channels=channels)
    parts = read_path(path, config, shape if shape is not None and len(shape) == 3 else None)
    if ignore_column is not None and column != ignore_column and parts.columns and ignore_column in parts.columns:
        keep = [j for j, c in enumerate(parts.columns) if c != ignore_column]  # numeric, read as a feature: drop
        parts.x, parts.columns = parts.x[:, keep], [parts.columns[j] for j in keep]
    labels = None
    if label_column is not None and parts.y is not None:
        values = parts.class_names if parts.class_names is not None else None
        raw = [values[i] for i in parts.y] if values is not None else list(parts.y)
        labels = binary_labels(raw, f"{path}: column '{label_column}'")
    return Examples(x=parts.x, kind=parts.kind, source=str(path), columns=parts.columns, names=parts.names,
                    labels=labels)


def binary_labels(values: list[object], where: str) -> np.ndarray:
    """Labels as int64 0 / 1 (1 = anomaly), or an error naming the first bad value."""
    out = np.empty(len(values), dtype=np.int64)
    for i, v in enumerate(values):
        key = str(v).strip().lower()
        if key not in _BINARY:
            raise AnomalyInputError(f"{where}, row {i + 1}: label {v!r} is not 0 / 1 (expected 1 = anomaly, "
                                    "0 = normal; also true/false, anomaly/normal, outlier/inlier)")
        out[i] = _BINARY[key]
    return out


def read_label_file(path: str | Path, n: int) -> np.ndarray:
    """Labels for ``n`` examples from ``.npy`` or a one-column (or labelled-column) text / CSV file."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        try:
            a = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise AnomalyInputError(f"cannot read labels '{path}': {exc}") from None
        values = list(np.asarray(a).reshape(-1)) if a.ndim <= 2 and (a.ndim < 2 or a.shape[1] == 1) else None
        if values is None:
            raise AnomalyInputError(f"{path}: labels have shape {a.shape}, expected ({n},)")
    else:
        values = _text_labels(path)
    if len(values) != n:
        raise AnomalyInputError(f"{path}: {len(values)} labels for {n} examples (expected one label per example, "
                                "in the data's order)")
    return binary_labels(values, str(path))


def _text_labels(path: Path) -> list[object]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise AnomalyInputError(f"cannot read labels '{path}': {exc}") from None
    if not rows:
        raise AnomalyInputError(f"{path}: no labels in the file")
    header = [c.strip().lower() for c in rows[0]]
    has_header = any(c not in _BINARY for c in header)
    if len(header) == 1:
        return [r[0] for r in rows[1 if has_header else 0:]]
    column = next((header.index(c) for c in LABEL_COLUMNS if c in header), None) if has_header else None
    if column is None:
        raise AnomalyInputError(f"{path}: {len(header)} columns and none named {', '.join(LABEL_COLUMNS)} "
                                "(give one label per line, or name the label column)")
    return [r[column] if column < len(r) else "" for r in rows[1:]]
