"""Synthetic anomaly cases with a known answer, and the plain method that solves each.

Each case is normal training rows, test rows and their labels (1 = anomaly), built so that one
plain method (Mahalanobis distance, PCA reconstruction error, kNN / LOF, a robust distance)
separates the anomalies almost perfectly; a detector should come close to that method.
tests/anomaly/test_synthetic.py and ``benchmarks/anomaly.py --only synthetic`` use them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Case = tuple[np.ndarray, np.ndarray, np.ndarray]  # x_train, x_test, y_test


def correlation(seed: int = 0, n: int = 500) -> Case:
    """Four columns with b = 2 x a (c, d independent); the anomalies flip the sign, b = -2 x a."""
    rng = np.random.default_rng(seed)

    def rows(m: int, sign: float) -> np.ndarray:
        a, c, d = rng.normal(size=(3, m))
        return np.c_[a, sign * 2.0 * a + 0.05 * rng.normal(size=m), c, d]

    return _split(rows(n, 1.0), rows(200, 1.0), rows(40, -1.0))


def manifold(seed: int = 0, n: int = 500) -> Case:
    """Ten columns on a 2-dim linear subspace (+ small noise); the anomalies lie off it at the same scale."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(10, 10)))[0]
    on, off = basis[:, :2], basis[:, 2:]

    def rows(m: int, away: float) -> np.ndarray:
        step = rng.normal(size=(m, 8))
        step *= away / np.linalg.norm(step, axis=1, keepdims=True)
        return 2.0 * rng.normal(size=(m, 2)) @ on.T + step @ off.T + 0.05 * rng.normal(size=(m, 10))

    return _split(rows(n, 0.0), rows(200, 0.0), rows(40, 1.5))


def local(seed: int = 0, n: int = 500) -> Case:
    """Four tight clusters in 5 dims, far apart; the anomalies sit between two clusters, inside the data's range."""
    rng = np.random.default_rng(seed)
    centers = 4.0 * rng.normal(size=(4, 5))

    def normal(m: int) -> np.ndarray:
        return centers[rng.integers(0, 4, m)] + 0.3 * rng.normal(size=(m, 5))

    pairs = rng.choice(4, size=(40, 2), replace=True)
    pairs[:, 1] = (pairs[:, 0] + 1 + rng.integers(0, 3, 40)) % 4
    t = rng.uniform(0.3, 0.7, size=(40, 1))
    between = t * centers[pairs[:, 0]] + (1 - t) * centers[pairs[:, 1]] + 0.3 * rng.normal(size=(40, 5))
    return _split(normal(n), normal(200), between)


def heavy_tails(seed: int = 0, n: int = 500) -> Case:
    """Six independent Student-t (3 df) columns; a few gross outliers, one column 25 out."""
    rng = np.random.default_rng(seed)
    outliers = rng.standard_t(3, size=(10, 6))
    outliers[np.arange(10), rng.integers(0, 6, 10)] = rng.choice([-25.0, 25.0], 10)
    return _split(rng.standard_t(3, size=(n, 6)), rng.standard_t(3, size=(200, 6)), outliers)


CASES: dict[str, Callable[..., Case]] = {"correlation": correlation, "manifold": manifold, "local": local,
                                         "heavy-tails": heavy_tails}


def plain_scores(x_train: np.ndarray, x_test: np.ndarray) -> dict[str, np.ndarray]:
    """The plain methods' anomaly scores of ``x_test`` (higher = more anomalous), fitted on ``x_train``:
    Mahalanobis distance, PCA reconstruction error (components explaining 95% of the variance), kNN
    (distance to the 5th neighbour), LOF (20 neighbours) and a robust (MCD) Mahalanobis distance."""
    from sklearn.covariance import EmpiricalCovariance, MinCovDet
    from sklearn.decomposition import PCA
    from sklearn.neighbors import LocalOutlierFactor, NearestNeighbors

    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-12
    train, test = (x_train - mean) / std, (x_test - mean) / std
    pca = PCA(n_components=0.95, random_state=0).fit(train)
    return {
        "mahalanobis": EmpiricalCovariance().fit(train).mahalanobis(test),
        "pca": ((test - pca.inverse_transform(pca.transform(test))) ** 2).sum(axis=1),
        "knn": NearestNeighbors(n_neighbors=5).fit(train).kneighbors(test)[0][:, -1],
        "lof": -LocalOutlierFactor(n_neighbors=20, novelty=True).fit(train).score_samples(test),
        "mcd": MinCovDet(random_state=0).fit(train).mahalanobis(test),
    }


def _split(train: np.ndarray, normal: np.ndarray, anomalies: np.ndarray) -> Case:
    x_test = np.vstack([normal, anomalies]).astype(np.float32)
    y = np.r_[np.zeros(len(normal), dtype=np.int64), np.ones(len(anomalies), dtype=np.int64)]
    return train.astype(np.float32), x_test, y
