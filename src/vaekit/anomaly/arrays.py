"""Turning what a user passes to the detector (arrays, lists, DataFrames) into checked tensors.

Rows of features are ``(N, D)``; images are ``(N, H, W)`` (grey) or ``(N, C, H, W)``
with C = 1 or 3. Every value must be finite. A DataFrame's column names are kept, so
scoring a frame whose columns differ from training names the missing and extra ones
(a frame with the same columns in another order is reordered).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from vaekit.anomaly.errors import AnomalyInputError
from vaekit.data import tables

EXPECTED = "(N, D) rows of features, (N, H, W) grey images or (N, C, H, W) images with C = 1 or 3"


def column_names(X: Any) -> list[str] | None:
    """A DataFrame's column names (all strings), else ``None``."""
    columns = getattr(X, "columns", None)
    if columns is None or not hasattr(X, "iloc"):
        return None
    names = list(columns)
    return [str(c) for c in names] if all(isinstance(c, str) for c in names) else None


def column_order(found: Sequence[str], expected: Sequence[str], what: str = "X") -> list[int]:
    """Positions of the ``expected`` columns in ``found``, or an error naming missing and extra columns."""
    return tables.column_order(found, expected, what, AnomalyInputError)


def match_columns(X: Any, expected: Sequence[str] | None, what: str = "X") -> Any:
    """A DataFrame ``X`` with its columns in the training order (other ``X`` as they are)."""
    found = column_names(X)
    if expected is None or found is None:
        return X
    column_order(found, expected, what)
    return X[list(expected)] if found != list(expected) else X


def reject_sparse(X: Any) -> None:
    """A scipy sparse matrix is refused with the conversion to use."""
    if hasattr(X, "tocsr") or type(X).__module__.startswith("scipy.sparse"):
        raise AnomalyInputError("X: sparse input is not supported (convert it with X.toarray())")


def as_examples(X: Any, what: str = "X") -> np.ndarray:
    """``X`` as a float32 array ``(N, D)`` or ``(N, C, H, W)``, or a one-line error."""
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    try:
        a = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise AnomalyInputError(f"{what}: cannot be read as a numeric array ({exc})") from None
    if a.dtype.kind == "c":
        raise AnomalyInputError(f"{what}: Complex data not supported (expected real numbers)")
    if a.dtype.kind not in "biuf":
        try:  # an object array of numbers converts; a TypeError (a dict, say) is left to surface as one
            a = a.astype(np.float64)
        except ValueError:
            raise AnomalyInputError(f"{what}: values of type {a.dtype} are not numbers "
                                    "(expected a numeric array)") from None
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim not in (2, 4) or (a.ndim == 4 and a.shape[1] not in (1, 3)):
        raise AnomalyInputError(f"{what}: found an array of shape {a.shape}, expected {EXPECTED}"
                                + ("; Reshape your data: X.reshape(1, -1) for one example" if a.ndim == 1 else ""))
    if a.shape[0] == 0:
        raise AnomalyInputError(f"{what}: found 0 sample(s) (shape={a.shape}) while a minimum of 1 is required.")
    if a.size == 0:
        raise AnomalyInputError(f"{what}: found 0 feature(s) (shape={a.shape}) while a minimum of 1 is required.")
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        row = int(np.argwhere(~np.isfinite(a).reshape(len(a), -1).all(axis=1))[0][0])
        raise AnomalyInputError(f"{what}: example {row} holds NaN or infinity (all values must be finite)")
    return a


def check_shape(a: np.ndarray, expected: tuple[int, ...], what: str = "X") -> None:
    """Examples must have the shape the detector was fitted on."""
    found = tuple(a.shape[1:])
    if found == tuple(expected):
        return
    if len(found) == 1 and len(expected) == 1:
        raise AnomalyInputError(f"{what} has {found[0]} features, but VAEAnomalyDetector is expecting "
                                f"{expected[0]} features as input")
    raise AnomalyInputError(f"{what}: examples have shape {found}, but the detector was fitted on examples "
                            f"of shape {tuple(expected)}")
