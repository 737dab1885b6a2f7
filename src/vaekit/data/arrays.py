"""Reading ``.npy`` / ``.npz`` arrays (never with pickle: a data file must not run code).

``.npz`` keys (first match wins):

- features: ``x``, ``X``, ``data``, ``images``, ``train``, ``x_train``, ``X_train``
  (or the only array in the file);
- labels (optional): ``y``, ``labels``, ``target``, ``targets``, ``y_train``;
- validation (optional): ``val``, ``valid``, ``validation``, ``x_val``, ``X_val``, with labels
  ``y_val`` / ``val_labels`` / ``y_valid``;
- test (optional): ``test``, ``x_test``, ``X_test``, with labels ``y_test`` /
  ``test_labels`` / ``test_target``.

Shapes: ``(N, D)`` rows of features; ``(N, H, W)`` grey images; ``(N, C, H, W)`` or
``(N, H, W, C)`` images with C = 1 or 3. Values: integer data that is all 0/1 is binary
and kept; other ``uint8`` is divided by 255. Data then in [0, 1] gets a Bernoulli
likelihood; other data a Gaussian one, and ``(N, D)`` data is standardized per column
(fitted on the training split). Images outside [0, 1] are kept unscaled.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from vaekit.data.labels import encode_labels
from vaekit.data.parts import Parts
from vaekit.errors import VaekitError

FEATURE_KEYS = ("x", "X", "data", "images", "train", "x_train", "X_train")
LABEL_KEYS = ("y", "labels", "target", "targets", "y_train")
VAL_KEYS = ("val", "valid", "validation", "x_val", "X_val")
VAL_LABEL_KEYS = ("y_val", "val_labels", "y_valid")
TEST_KEYS = ("test", "x_test", "X_test")
TEST_LABEL_KEYS = ("y_test", "test_labels", "test_target")
EXPECTED_SHAPES = (
    "(N, D) rows of features, (N, H, W) grey images, or (N, C, H, W) / (N, H, W, C) images with C = 1 or 3"
)


def _examples(where: str, a: np.ndarray) -> tuple[np.ndarray, str]:
    """``a`` as ``(N, *shape)`` and its kind ("array" or "image"), or a clear error."""
    if a.dtype.kind not in "biuf":
        raise VaekitError(f"{where}: values of type {a.dtype} are not numbers (expected a numeric array)")
    if a.ndim == 2:
        return a, "array"
    if a.ndim == 3:
        return a[:, None], "image"
    if a.ndim == 4 and a.shape[1] in (1, 3):
        return a, "image"
    if a.ndim == 4 and a.shape[3] in (1, 3):
        return a.transpose(0, 3, 1, 2), "image"
    raise VaekitError(f"{where}: found an array of shape {a.shape}, expected {EXPECTED_SHAPES}")


def _label_array(where: str, y: np.ndarray | None, n: int) -> np.ndarray | None:
    if y is None:
        return None
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.shape != (n,):
        raise VaekitError(f"{where}: labels have shape {y.shape}, expected ({n},) (one per example)")
    return y


def _first(z: dict[str, np.ndarray], keys: tuple[str, ...]) -> tuple[str, np.ndarray] | tuple[None, None]:
    for k in keys:
        if k in z:
            return k, z[k]
    return None, None


def _load(path: Path) -> dict[str, np.ndarray]:
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return {"": loaded}
        with loaded:
            return {k: loaded[k] for k in loaded.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise VaekitError(f"cannot read '{path}': it holds Python objects (pickle), which are not loaded") from exc
        raise VaekitError(f"cannot read '{path}': {exc}") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise VaekitError(f"cannot read '{path}': {exc}") from exc


def read_array_file(path: Path) -> Parts:
    """Examples, labels and any given val/test splits of a ``.npy`` or ``.npz`` file."""
    z = _load(path)
    if "" in z:
        key, x = "", z[""]
    else:
        key, x = _first(z, FEATURE_KEYS)
        if x is None and len(z) == 1:
            key, x = next(iter(z.items()))
        if x is None:
            raise VaekitError(
                f"'{path}' has no features array: found keys {sorted(z)}, expected one of {', '.join(FEATURE_KEYS)}"
            )
    where = f"'{path}'" + (f"[{key}]" if key else "")
    x, kind = _examples(where, x)
    if len(x) == 0:
        raise VaekitError(f"{where} is empty (0 examples)")
    _, y = _first(z, LABEL_KEYS)
    parts = {"train": (x, _label_array(where, y, len(x)))}
    for split, keys, label_keys in (("val", VAL_KEYS, VAL_LABEL_KEYS), ("test", TEST_KEYS, TEST_LABEL_KEYS)):
        k, a = _first(z, tuple(c for c in keys if c != key))
        if a is None:
            continue
        a, _ = _examples(f"'{path}'[{k}]", a)
        if a.shape[1:] != x.shape[1:]:
            raise VaekitError(f"'{path}'[{k}]: examples have shape {a.shape[1:]}, but the features have {x.shape[1:]}")
        _, b = _first(z, label_keys)
        parts[split] = (a, _label_array(f"'{path}'[{k}]", b, len(a)))
    return _scaled(where, _encoded(where, parts), kind)


def _encoded(where: str, parts: dict[str, tuple[np.ndarray, np.ndarray | None]]) -> dict[str, tuple]:
    """Labels of all splits encoded together (one class list); a split without labels gets ``None``."""
    if parts["train"][1] is None:
        return {s: (a, None, None) for s, (a, _) in parts.items()}
    raw = [b for _, b in parts.values() if b is not None]
    labels, class_names = encode_labels(np.concatenate(raw).tolist(), lambda i: f"{where}: label {i}")
    out, start = {}, 0
    for s, (a, b) in parts.items():
        if b is None:
            out[s] = (a, None, class_names)
            continue
        out[s] = (a, labels[start : start + len(b)], class_names)
        start += len(b)
    return out


def _scaled(where: str, parts: dict[str, tuple], kind: str) -> Parts:
    """Scale every split the same way, decided on the training features."""
    x = parts["train"][0]
    binary = x.dtype.kind in "biu" and x.size > 0 and x.min() >= 0 and x.max() <= 1
    scale = 255.0 if x.dtype == np.uint8 and not binary else 1.0
    out = {}
    class_names = parts["train"][2]
    for split, (a, b, _) in parts.items():
        a = a.astype(np.float32) / np.float32(scale)
        if not np.isfinite(a).all():
            index = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
            raise VaekitError(f"{where}: {split} values contain NaN or infinity (first at index {index})")
        out[split] = (np.ascontiguousarray(a), b)
    train = out["train"][0]
    lo, hi = float(train.min()), float(train.max())
    unit = lo >= 0.0 and hi <= 1.0
    val, test = out.get("val", (None, None)), out.get("test", (None, None))
    return Parts(
        x=train,
        y=out["train"][1],
        val_x=val[0],
        val_y=val[1],
        test_x=test[0],
        test_y=test[1],
        kind=kind,
        likelihood="bernoulli" if unit else "gaussian",
        value_range=(0.0, 1.0) if unit else (lo, hi),
        class_names=class_names,
        standardize=not unit and kind == "array",
    )
