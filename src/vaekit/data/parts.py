"""The raw arrays a reader or named dataset hands to ``load`` before splitting.

Readers only decode files; splitting, ``limit``, standardization and the one-off
binarization of evaluation splits happen once, in ``load``, so every source gets the same
treatment. Arrays here are numpy (``float32`` examples, ``int64`` labels).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Parts:
    """Examples ``x`` (``(N, *shape)``) with optional labels and optional given splits.

    ``val_x`` / ``test_x`` are set when the source brings its own validation / test split
    (then none is carved out of ``x``). ``standardize``: fit a ``Standardizer`` on the
    training rows after splitting (tables, real-valued arrays). ``binarize_eval``: the
    source is grey-level data for dynamic binarization, so the validation and test splits
    are binarized once with fixed seeds. ``names`` identify each example of ``x`` (image
    file paths) and travel with the split.
    """

    x: np.ndarray
    kind: str
    y: np.ndarray | None = None
    val_x: np.ndarray | None = None
    val_y: np.ndarray | None = None
    test_x: np.ndarray | None = None
    test_y: np.ndarray | None = None
    likelihood: str = "bernoulli"
    value_range: tuple[float, float] = (0.0, 1.0)
    columns: list[str] | None = None
    class_names: list[str] | None = None
    standardize: bool = False
    binarize_eval: bool = False
    names: list[str] | None = None
    extras: dict[str, object] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.x.shape[1:])
