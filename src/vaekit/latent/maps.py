"""Pictures of the latent space itself: a 2-D map of the codes, and the decoded 2-D manifold."""

from __future__ import annotations

import contextlib

import torch

from vaekit.errors import VaekitError
from vaekit.latent.encoding import decode_means, encode_means
from vaekit.models.base import Model

MAP_METHODS = ("auto", "pca", "tsne")
#: ``auto`` uses t-SNE (clusters show better) up to this many points, PCA beyond (speed).
TSNE_MAX_AUTO = 5000
#: t-SNE's perplexity needs a few neighbours; ``auto`` uses PCA below this many points.
TSNE_MIN_POINTS = 5


def project_2d(z: torch.Tensor, *, method: str = "auto", seed: int = 0) -> tuple[torch.Tensor, str]:
    """``(N, 2)`` coordinates of codes ``z`` and the method used (``"latent"``, ``"pca"`` or ``"tsne"``).

    Codes with at most two dimensions are shown as they are (a 1-D code on a line)."""
    if method not in MAP_METHODS:
        raise VaekitError(f"method: expected auto, pca or tsne, got '{method}'")
    z = z.detach().float().cpu()
    if z.shape[1] <= 2:
        return torch.cat([z, torch.zeros(len(z), 2 - z.shape[1])], dim=1), "latent"
    distinct = len(torch.unique(z, dim=0))
    if method == "auto":
        method = "tsne" if distinct >= TSNE_MIN_POINTS and len(z) <= TSNE_MAX_AUTO else "pca"
    if method == "pca":
        from sklearn.decomposition import PCA

        return torch.from_numpy(PCA(2, random_state=seed).fit_transform(z.numpy())).float(), "pca"
    if distinct < TSNE_MIN_POINTS:  # scikit-learn's t-SNE crashes the process on identical codes
        raise VaekitError(f"t-SNE needs at least {TSNE_MIN_POINTS} distinct codes, got {distinct} (a collapsed "
                          "encoder maps every input to the same code; use --method pca)")
    from sklearn.manifold import TSNE

    tsne = TSNE(2, perplexity=min(30.0, (len(z) - 1) / 3), init="pca", random_state=seed)
    with _one_openmp_thread():
        coords = tsne.fit_transform(z.numpy())
    return torch.from_numpy(coords).float(), "tsne"


def _one_openmp_thread() -> contextlib.AbstractContextManager[object]:
    """Run scikit-learn's OpenMP code (t-SNE's gradient loop) on one thread.

    t-SNE's OpenMP threads spin between its many short iterations; sharing the cores with
    other work (torch's threads, other jobs), that made it 20-40x slower on a busy 2-core
    machine, while one thread maps a few thousand codes in seconds. threadpoolctl ships
    with scikit-learn.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="openmp")


def latent_map(model: Model, x: torch.Tensor, *, method: str = "auto", seed: int = 0,
               cond: torch.Tensor | None = None) -> torch.Tensor:
    """``(N, 2)`` map of the codes of ``x``: the code itself if the latent space is 2-D, else
    its PCA (``"pca"``) or t-SNE (``"tsne"``) projection (``"auto"``: t-SNE for 5 to 5000 points).
    ``cond``: the labels a conditional model encodes ``x`` with."""
    return project_2d(encode_means(model, x, cond), method=method, seed=seed)[0]


def manifold_grid(model: Model, *, n: int = 15, span: float = 3.0, label: int = 0) -> torch.Tensor:
    """Decoded ``(n * n, *shape)`` over a 2-D latent grid (row-major: top row z2 highest,
    left column z1 lowest), spaced by equal prior probability between -span and +span
    standard deviations, as Kingma & Welling's (2014) figure: each cell covers the same mass.
    A conditional model draws the grid of class ``label``."""
    if model.config.latent_dim != 2:
        raise VaekitError(f"manifold grid needs a 2-D latent space; this model has {model.config.latent_dim} "
                          "dimensions (train with --latent-dim 2)")
    if n < 2 or span <= 0:
        raise VaekitError(f"manifold grid: expected n >= 2 and span > 0, got n={n}, span={span}")
    edge = torch.special.ndtr(torch.tensor(span, dtype=torch.float64))
    values = torch.special.ndtri(torch.linspace(1 - edge.item(), edge.item(), n, dtype=torch.float64)).float()
    z2, z1 = torch.meshgrid(values.flip(0), values, indexing="ij")
    cond = torch.tensor(label) if model.config.conditional else None
    return decode_means(model, torch.stack([z1.reshape(-1), z2.reshape(-1)], dim=1), cond)
