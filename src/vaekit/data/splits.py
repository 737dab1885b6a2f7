"""Seeded train / validation / test splits, so a run's data can be rebuilt exactly.

Splits are index arrays into the examples, each kept in ascending order so examples stay in
file order within a split (handy when new data is encoded and written back row by row).
"""

from __future__ import annotations

import numpy as np

from vaekit.errors import VaekitError

#: Seed of the test split carved out of user data that has no test part. Fixed (not
#: ``split_seed``) so that runs with different validation splits share one test set.
TEST_SPLIT_SEED = 0


def holdout_count(n: int, fraction: float) -> int:
    """How many of ``n`` examples a ``fraction`` holds out: rounded, at least 1 when
    ``fraction > 0`` and ``n >= 3`` (so tiny data sets still get a split), never all."""
    if fraction <= 0 or n < 2:
        return 0
    k = round(fraction * n)
    if k == 0 and n >= 3:
        k = 1
    return min(k, n - 1)


def holdout(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` into (kept, held out) with a seeded random choice of the held-out part."""
    k = holdout_count(n, fraction)
    if k == 0:
        return np.arange(n, dtype=np.int64), np.zeros(0, dtype=np.int64)
    perm = np.random.default_rng(seed).permutation(n)
    out = np.sort(perm[:k]).astype(np.int64)
    keep = np.sort(perm[k:]).astype(np.int64)
    return keep, out


def split_indices(
    n: int,
    *,
    val_fraction: float,
    split_seed: int,
    test_fraction: float = 0.0,
    limit: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of (train, val, test) over ``n`` examples.

    The test part (``test_fraction`` of all examples, seed ``TEST_SPLIT_SEED``) is taken
    first, then ``val_fraction`` of the rest (seed ``split_seed``); ``limit`` keeps the
    first ``limit`` training indices.
    """
    if n == 0:
        raise VaekitError("the dataset is empty (no examples)")
    rest, test = holdout(n, test_fraction, TEST_SPLIT_SEED)
    keep, val = holdout(len(rest), val_fraction, split_seed)
    train, val = rest[keep], rest[val]
    if limit is not None:
        train = train[:limit]
    return train, val, test
