"""Turning a label column (numbers or text) into int64 class indices.

Integer labels (``3``, ``"3"``, ``3.0``) are kept as they are, so digits stay digits and
``class_names`` is ``None``; anything else is text: classes are the sorted distinct
values and labels their indices, with ``class_names`` naming them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from vaekit.errors import VaekitError


def _as_int(value: object) -> int | None:
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return int(value) if np.isfinite(value) and float(value).is_integer() else None
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            try:
                f = float(text)
            except ValueError:
                return None
            return int(f) if np.isfinite(f) and f.is_integer() else None
    return None


def encode_labels(values: Sequence[object], where: Callable[[int], str]) -> tuple[np.ndarray, list[str] | None]:
    """``(labels, class_names)`` for ``values``; ``where(i)`` names row ``i`` in errors
    (e.g. ``"data.csv: column 'label', row 3"``)."""
    for i, v in enumerate(values):
        if v is None or (isinstance(v, str) and not v.strip()) or (isinstance(v, float) and np.isnan(v)):
            raise VaekitError(f"{where(i)}: missing label")
    ints = [_as_int(v) for v in values]
    if all(i is not None for i in ints):
        return np.asarray(ints, dtype=np.int64), None
    texts = [str(v).strip() for v in values]
    class_names = sorted(set(texts))
    index = {name: i for i, name in enumerate(class_names)}
    return np.asarray([index[t] for t in texts], dtype=np.int64), class_names


def class_index(label: int | str, names: Sequence[str] | None, field: str, num_classes: int | None = None) -> int:
    """A class given by index (``5``, ``"5"``) or by name (``"Sneaker"``) -> its index.

    The one reading of a class that users type, for a model's labels (``vaekit sample
    --label``, with ``num_classes`` bounding the index) and a dataset's (``--class``). Errors
    are one line naming ``field`` and the classes it accepts.
    """
    names = list(names or [])
    if num_classes is not None:
        known = f"0..{num_classes - 1}" + (f" or a name ({', '.join(names)})" if names else "")
    else:
        known = f"an index or a name ({', '.join(names)})" if names else "an integer index"
    if isinstance(label, str) and label in names:
        return names.index(label)
    try:
        k = int(str(label).strip())
    except ValueError:
        raise VaekitError(f"{field}: unknown class '{label}' (expected {known})") from None
    if num_classes is not None and not 0 <= k < num_classes:
        raise VaekitError(f"{field}: {k} is out of range (expected {known})")
    return k
