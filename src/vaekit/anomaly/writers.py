"""What `vaekit anomaly score` writes: a CSV of scores and flags, a histogram with the
threshold, the most anomalous images as a grid, and ROC / PR curves when labels are known.

Figures are matplotlib ``Figure`` objects with an Agg canvas (no pyplot state), written
atomically like every vaekit file.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaekit.atomic import atomic_write_text
from vaekit.plotting.figures import new_figure
from vaekit.plotting.pictures import save_figure, save_grid

SCORES_CSV = "scores.csv"
HISTOGRAM_PNG = "histogram.png"
TOP_PNG = "most_anomalous.png"
CURVES_PNG = "roc_pr.png"


def write_scores_csv(path: Path, scores: np.ndarray, flags: np.ndarray, *, names: list[str] | None = None,
                     labels: np.ndarray | None = None) -> Path:
    """One row per example in data order: index, file (image folders), score, anomaly (1/0), label."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["index", *(["file"] if names else []), "score", "anomaly", *(["label"] if labels is not None
                                                                                 else [])])
    for i, (s, f) in enumerate(zip(scores, flags, strict=True)):
        writer.writerow([i, *([names[i]] if names else []), repr(float(s)), int(f),
                         *([int(labels[i])] if labels is not None else [])])
    atomic_write_text(path, buf.getvalue())
    return path


def write_histogram(path: Path, scores: np.ndarray, threshold: float, *, score_name: str,
                    labels: np.ndarray | None = None) -> Path:
    """Histogram of the scores (split by label when known) with the threshold as a line."""
    fig = new_figure(6.0, 3.4)
    ax = fig.add_subplot()
    finite = scores[np.isfinite(scores)]
    lo, hi = (float(np.min(finite)), float(np.max(finite))) if len(finite) else (0.0, 1.0)
    lo, hi = min(lo, threshold), max(hi, threshold)
    bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 60)
    if labels is None:
        ax.hist(finite, bins=bins, color="#4c78a8", alpha=0.85, label=f"{len(finite)} examples")
    else:
        for value, name, colour in ((0, "normal", "#4c78a8"), (1, "anomaly", "#e45756")):
            part = scores[(labels == value) & np.isfinite(scores)]
            ax.hist(part, bins=bins, color=colour, alpha=0.6, label=f"{name} ({len(part)})")
    ax.axvline(threshold, color="#222222", linestyle="--", linewidth=1.2, label=f"threshold {threshold:.4g}")
    ax.set_xlabel(f"anomaly score ({score_name}; higher = more anomalous)")
    ax.set_ylabel("examples")
    ax.legend()
    return save_figure(fig, path)


def write_top_grid(path: Path, images: np.ndarray, scores: np.ndarray, n: int = 32) -> Path:
    """The ``n`` highest-scoring images, most anomalous first (row by row)."""

    order = np.argsort(-scores, kind="stable")[:n]
    return save_grid(torch.from_numpy(np.ascontiguousarray(images[order])), path, nrow=8)


def curve_figures(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """AUROC and average precision (1 = anomaly), or NaN when only one class is present."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    if len(np.unique(labels)) < 2:
        return {"auroc": float("nan"), "average_precision": float("nan")}
    return {"auroc": float(roc_auc_score(labels, scores)),
            "average_precision": float(average_precision_score(labels, scores))}


def write_curves(path: Path, scores: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """ROC and precision-recall curves side by side; returns AUROC and average precision."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    figures = curve_figures(scores, labels)
    fig = new_figure(8.0, 3.6)
    roc_ax, pr_ax = fig.subplots(1, 2)
    if np.isfinite(figures["auroc"]):
        fpr, tpr, _ = roc_curve(labels, scores)
        roc_ax.plot(fpr, tpr, color="#4c78a8", label=f"AUROC {figures['auroc']:.4f}")
        precision, recall, _ = precision_recall_curve(labels, scores)
        pr_ax.plot(recall, precision, color="#e45756", label=f"AP {figures['average_precision']:.4f}")
    roc_ax.plot([0, 1], [0, 1], color="#bbbbbb", linestyle=":")
    pr_ax.axhline(float(np.mean(labels)), color="#bbbbbb", linestyle=":", label="chance")
    roc_ax.set(xlabel="false-positive rate", ylabel="true-positive rate", title="ROC", xlim=(0, 1), ylim=(0, 1.01))
    pr_ax.set(xlabel="recall", ylabel="precision", title="precision-recall", xlim=(0, 1), ylim=(0, 1.01))
    roc_ax.legend(loc="lower right")
    pr_ax.legend(loc="lower left")
    save_figure(fig, path)
    return figures
