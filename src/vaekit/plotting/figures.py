"""Matplotlib figures for the run report, and PNG data URIs to embed them in HTML.

Figures are made with ``matplotlib.figure.Figure`` and the Agg canvas directly, never
through ``pyplot``: no global figure registry, no GUI backend, nothing to leak between
calls. matplotlib is imported inside the functions so ``import vaekit`` stays fast.
"""

from __future__ import annotations

import base64
import io
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 110
TRAIN_COLOR = "#1f77b4"
VAL_COLOR = "#ff7f0e"
BETA_COLOR = "#2ca02c"
ACTIVE_COLOR = "#3b6fb6"
INACTIVE_COLOR = "#b8bec7"

_STYLE = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 9.5,
    "axes.titlesize": 10.5,
    "axes.titleweight": "bold",
    "axes.labelsize": 9.5,
    "axes.edgecolor": "#9aa1aa",
    "axes.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#e3e6ea",
    "grid.linewidth": 0.8,
    "xtick.color": "#444a52",
    "ytick.color": "#444a52",
    "legend.frameon": False,
    "legend.fontsize": 8.5,
}


def new_figure(width: float, height: float) -> Figure:
    """A ``Figure`` with an Agg canvas attached (no pyplot, no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _styled() -> Any:
    import matplotlib

    return matplotlib.rc_context(_STYLE)


def figure_to_data_uri(fig: Figure, dpi: int = DPI) -> str:
    """Render ``fig`` to PNG and return it as a ``data:image/png;base64,...`` URI; the figure is closed."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    finally:
        if "matplotlib.pyplot" in sys.modules:  # a pyplot-made figure: drop it from pyplot's registry
            sys.modules["matplotlib.pyplot"].close(fig)
        fig.clear()
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def array_to_data_uri(arr: np.ndarray, scale: int = 1) -> str:
    """A uint8 ``(H, W)`` or ``(H, W, C)`` image (C = 1, 3 or 4) as a PNG data URI, scaled up ``scale``x (nearest)."""
    from PIL import Image

    arr = np.asarray(arr)
    if arr.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ValueError(f"expected an (H, W) or (H, W, C) image with C in 1, 3, 4; got shape {arr.shape}")
    if scale > 1:
        arr = arr.repeat(scale, axis=0).repeat(scale, axis=1)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _series(metrics: Sequence[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [(m["epoch"], m[key]) for m in metrics if m.get(key) is not None]
    if not rows:
        return np.empty(0), np.empty(0)
    x, y = zip(*rows, strict=True)
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


def _robust_top(values: list[np.ndarray]) -> float | None:
    """An upper y-limit that keeps a steep first epoch from flattening the rest of the curve."""
    ys = np.concatenate([v for v in values if len(v)]) if any(len(v) for v in values) else np.empty(0)
    if len(ys) < 4:
        return None
    lo, top, settled = ys.min(), ys.max(), np.percentile(ys, 90)
    if top - lo > 3 * (settled - lo) and settled > lo:
        return float(settled + 0.6 * (settled - lo))
    return None


def loss_curves(metrics: Sequence[dict[str, Any]], beta_curve: Callable[[np.ndarray], np.ndarray] | None = None,
                best_epoch: int | None = None) -> Figure:
    """Train and validation reconstruction (left) and KL (right) per epoch, effective beta on the KL panel.

    ``beta_curve`` maps fractional epochs (0 = start of training) to the effective beta;
    without it the per-epoch ``beta`` of the metrics is drawn.
    """
    with _styled():
        fig = new_figure(9, 3.6)
        ax_r, ax_k = fig.subplots(1, 2)
        n = len(metrics)
        marker = "o" if n <= 20 else None
        for ax, part, title, ylabel in ((ax_r, "recon", "Reconstruction", "−log p(x|z), nats / example"),
                                        (ax_k, "kl", "KL divergence", "KL(q(z|x) ‖ p(z)), nats / example")):
            tops = []
            for split, color, label in (("train", TRAIN_COLOR, "train"), ("val", VAL_COLOR, "validation")):
                x, y = _series(metrics, f"{split}_{part}")
                if len(x):
                    ax.plot(x, y, color=color, lw=1.8, marker=marker, ms=3.5, label=label)
                    tops.append(y)
            top = _robust_top(tops)
            if top is not None:
                ax.set_ylim(top=top)
            if best_epoch:
                ax.axvline(best_epoch, color="#8a919b", lw=0.9, ls=":", label=f"best epoch ({best_epoch})")
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.set_ylabel(ylabel)
            if n:
                ax.set_xlim(0 if n > 1 else 0.5, max(m["epoch"] for m in metrics) + (0.5 if n == 1 else 0))

        ax_b = ax_k.twinx()
        ax_b.grid(False)
        ax_b.spines["right"].set_visible(True)
        if beta_curve is not None and n:
            xs = np.linspace(0, max(m["epoch"] for m in metrics), 400)
            ax_b.plot(xs, beta_curve(xs), color=BETA_COLOR, lw=1.4, ls="--", label="effective β (right axis)")
        else:
            x, y = _series(metrics, "beta")
            if len(x):
                ax_b.step(x, y, where="post", color=BETA_COLOR, lw=1.4, ls="--", label="effective β (right axis)")
        ax_b.set_ylabel("effective β (KL weight)", color=BETA_COLOR)
        ax_b.tick_params(axis="y", colors=BETA_COLOR)
        hi = ax_b.get_ylim()[1]
        ax_b.set_ylim(0, max(hi, 1e-3) * 1.08)
        from matplotlib.ticker import MaxNLocator

        for ax in (ax_r, ax_k):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        h1, l1 = ax_r.get_legend_handles_labels()
        h2, l2 = ax_b.get_legend_handles_labels()
        fig.legend(h1 + h2, l1 + l2, loc="outside upper center", ncol=len(l1 + l2))
    return fig


def kl_bars(kl_per_dim: Sequence[float], threshold: float, free_bits: float = 0.0) -> Figure:
    """KL of each latent dimension, largest first, on a log axis, with the collapse threshold drawn
    (and the free-bits floor of the objective, when training used one)."""
    kl = np.asarray(kl_per_dim, dtype=float)
    order = np.argsort(-kl, kind="stable")
    shown = np.clip(kl[order], 1e-5, None)
    active = kl[order] > threshold
    d = len(kl)
    with _styled():
        fig = new_figure(min(9.0, max(5.0, 3.0 + 0.4 * d)), 3.2)
        ax = fig.subplots()
        xs = np.arange(d)
        floor = min(threshold / 3, shown.min() / 2)
        colors = [ACTIVE_COLOR if a else INACTIVE_COLOR for a in active]
        ax.bar(xs, shown - floor, bottom=floor, width=0.75 if d > 1 else 0.5, color=colors)
        ax.set_yscale("log")
        ax.set_ylim(floor, max(shown.max() * 2, threshold * 10, free_bits * 2))
        ax.axhline(threshold, color="#c0392b", lw=1.2, ls="--", zorder=3)
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        handles = [Patch(color=ACTIVE_COLOR, label=f"active (KL > {threshold:g})"),
                   Patch(color=INACTIVE_COLOR, label="collapsed"),
                   Line2D([], [], color="#c0392b", lw=1.1, ls="--", label=f"threshold {threshold:g} nats")]
        if free_bits > 0:
            ax.axhline(free_bits, color="#5b2c83", lw=1.4, ls=":", zorder=3)
            handles.append(Line2D([], [], color="#5b2c83", lw=1.4, ls=":", label=f"free bits {free_bits:g} nats"))
        fig.legend(handles=handles, loc="outside upper center", ncol=len(handles))
        ax.grid(axis="x", visible=False)
        ax.set_xlim(-0.6, d - 0.4)
        if d <= 40:
            ax.set_xticks(xs, [f"z{i}" for i in order], rotation=0 if d <= 16 else 90,
                          fontsize=9 if d <= 16 else 7.5)
        else:
            ax.set_xticks([])
            ax.set_xlabel(f"{d} latent dimensions, sorted by KL")
        if d <= 40:
            ax.set_xlabel("latent dimension (sorted by KL)")
        ax.set_ylabel("KL, nats / example")
    return fig


def latent_scatter(points: np.ndarray, labels: np.ndarray | None = None, class_names: Sequence[str] | None = None,
                   axis_names: tuple[str, str] = ("z0", "z1"), title: str = "Latent map") -> Figure:
    """Scatter of 2-D points, coloured by integer ``labels`` with a legend of ``class_names``."""
    points = np.asarray(points, dtype=float)
    n = len(points)
    size = 9 if n <= 1000 else 4 if n <= 4000 else 2
    with _styled():
        fig = new_figure(7.0 if labels is not None else 6.0, 5.2)
        ax = fig.subplots()
        if labels is None:
            ax.scatter(points[:, 0], points[:, 1], s=size, color=ACTIVE_COLOR, alpha=0.6, linewidths=0)
        else:
            labels = np.asarray(labels)
            classes = np.unique(labels)
            cmap_name = "tab10" if len(classes) <= 10 else "tab20"
            import matplotlib

            cmap = matplotlib.colormaps[cmap_name]
            if len(classes) <= 20:
                for i, c in enumerate(classes):
                    name = class_names[int(c)] if class_names is not None and 0 <= int(c) < len(class_names) else str(c)
                    sel = labels == c
                    ax.scatter(points[sel, 0], points[sel, 1], s=size, color=cmap(i % cmap.N), alpha=0.75,
                               linewidths=0, label=name)
                ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), markerscale=2.2 if size < 9 else 1.6,
                          handletextpad=0.2, title="class", title_fontsize=8.5)
            else:  # too many classes for a legend: a colour scale by class index
                sc = ax.scatter(points[:, 0], points[:, 1], s=size, c=labels, cmap="viridis", alpha=0.75,
                                linewidths=0)
                fig.colorbar(sc, ax=ax, label="class index", shrink=0.8)
        ax.set_xlabel(axis_names[0])
        ax.set_ylabel(axis_names[1])
        ax.set_title(title)
    return fig
