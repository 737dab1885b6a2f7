"""Anomaly detection: vaekit's VAEAnomalyDetector against PyOD's VAE, kNN, LOF, ECOD and COPOD,
IsolationForest and three plain baselines, on the same splits in the same run. Prints one JSON
line per dataset, and after the ADBench sets a summary line.

    python benchmarks/anomaly.py                          # everything (needs: pip install -e '.[bench]')
    python benchmarks/anomaly.py --only mnist --classes 0 1 --epochs 5      # a quick look
    python benchmarks/anomaly.py --only adbench --sets 6_cardio --seeds 0
    python benchmarks/anomaly.py --only adbench --sets all --threads 1   # all 28 sets, seeds 0 1 2
    python benchmarks/anomaly.py --merge seed0.jsonl seed1.jsonl seed2.jsonl   # runs made seed by seed, as one
    python benchmarks/anomaly.py --only synthetic --seeds 0 --epochs 20   # the synthetic cases
    python benchmarks/anomaly.py --validation --methods vaekit knn       # choose settings: no test data
    python benchmarks/anomaly.py --validation --only adbench --score elbo+knn
    python benchmarks/anomaly.py --validation --only adbench --methods vaekit --set trim=0   # vs the preset's 0.3
    python benchmarks/anomaly.py --validation --only adbench --methods vaekit --set trim_rounds=1   # vs 3
    python benchmarks/anomaly.py --validation --only adbench --sets all --save-scores parts/   # keep the parts

Protocols:

- one-class MNIST / Fashion-MNIST: train on the official training images of one class,
  score all 10,000 test images, the other classes being anomalies; AUROC per class, mean.
- ADBench tabular sets (``$VAEKIT_DATA_DIR/adbench/*.npz``): stratified 70/30 split per
  seed, fit on the training part without labels (anomalies included, as in ADBench),
  AUROC on the test part; mean over seeds. ``--sets all``: every ``*.npz`` there, sorted. A set
  of more than ``--max-train`` / 0.7 rows (50,000 / 0.7 = 71,428) is first subsampled to that
  many rows (stratified, seed 0: the same rows for every seed and every method), so that each
  split trains on at most ``--max-train`` rows; its line says so (``"subsampled_from"``: the
  set's rows; ``"n"``: the rows used). The summary line after the sets: mean AUROC per method,
  average rank per method (1 = the best AUROC mean on a set, ties averaged; vaekit's default
  and every other method, not the single-score ``vaekit-*`` columns), the sets where vaekit
  is at or above the best peer, and the wall time of the run so far.
- throughput: examples/s of ``decision_function`` on the 10,000 MNIST test images for
  each score, with ``--threads`` threads.
- ``--validation``: how settings and the default score were chosen, without test data.
  One-class: fit on 80% of a class's *training* images, score the other 20% and 5,000
  training images of the other classes. ADBench: the training part of each seed's split
  (default seed 0) split again, stratified 70/30 with the same seed: fit on the 70%, AUROC on
  the 30%; the test part is not read.

Methods (same inputs for all; images as 784 values in [0, 1]):

- ``vaekit``: ``VAEAnomalyDetector`` with its defaults (``vaekit.anomaly.presets``; score
  ``auto``: for images the reconstruction error + latent 10-NN distance, combined as every sum
  is, by Fisher's rule on their training tail probabilities; for tables the negative ELBO with
  k = 100 of a 2-dim latent, Student-t decoder, beta 1, + the latent 10-NN distance + the
  Mahalanobis distance of the reconstruction residual, combined by the same rule, averaged
  over the 3 refits that each leave out the 30% of training rows the fit before scored highest);
  ``vaekit-recon`` / ``vaekit-elbo`` / ``vaekit-nll`` / ``vaekit-knn`` / ``vaekit-resid`` and
  ``vaekit-elbo+knn`` (each shorter sum of the default's parts): the same fitted models scored
  each way (``--k`` samples for elbo and nll).
- ``vaekit-het`` (not in the default list): the same detector with ``heteroscedastic=True``
  (the decoder outputs a std per example, at least 0.05), scored by its default (the README's
  column: with ``--trim-rounds 1``).
- ``knn5``, ``lof``, ``ecod``, ``copod``: PyOD's ``KNN`` (k = 5, distance to the 5th nearest
  training example), ``LOF`` (20 neighbours), ``ECOD`` and ``COPOD``, each with PyOD's defaults
  on standardized features (tables; images: the raw values), fitted on the training part.
- ``pyod-vae``: PyOD's ``VAE`` with its defaults (its KL term is clamped to [0, capacity=0],
  i.e. switched off); ``pyod-vae-kl``: the same with ``capacity=inf`` (the KL term on).
- ``iforest``: scikit-learn's ``IsolationForest`` (defaults, ``random_state`` = seed).
- ``pca``: squared reconstruction error with 32 components (tables: ceil(d / 2), on
  standardized features).
- ``knn``: distance to the nearest training example (tables: standardized features).
  Plain baselines (``pca``, ``knn``, ``center``) are not peers: a set is a win for vaekit when
  it is at or above every method of ``PEERS`` that ran (PyOD's VAE both ways, IsolationForest,
  kNN-5, LOF, ECOD, COPOD).
- ``center``: squared distance to the training mean (tables: standardized features, i.e. the
  sum of squared z-scores). On the ADBench validation splits it ranks the test rows as
  ``pyod-vae-kl`` does, to within 0.001 AUROC on each set (test splits too), as a VAE with
  a collapsed posterior would.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaekit.anomaly import SCORES, VAEAnomalyDetector
from vaekit.anomaly.presets import FIELDS, PRESETS, parse_override
from vaekit.anomaly.scores import draws_samples, score_parts
from vaekit.atomic import atomic_write_with
from vaekit.training.trainer import resolve_device

from common import environment  # benchmarks/ is on sys.path when a script here runs

ADBENCH_SETS = ("2_annthyroid", "6_cardio", "23_mammography", "26_optdigits", "28_pendigits", "30_satellite",
                "32_shuttle", "35_SpamBase", "38_thyroid", "41_Waveform")
PEERS = ("pyod-vae", "pyod-vae-kl", "iforest", "knn5", "lof", "ecod", "copod")
PYOD_PLAIN = {"knn5": ("knn", "KNN"), "lof": ("lof", "LOF"), "ecod": ("ecod", "ECOD"), "copod": ("copod", "COPOD")}
METHODS = ("vaekit", "vaekit-het", "pyod-vae", "pyod-vae-kl", "iforest", "knn5", "lof", "ecod", "copod",
           "pca", "knn", "center")
DEFAULT_METHODS = [m for m in METHODS if m != "vaekit-het"]
GOALS = {"mnist": 0.98, "fashion-mnist": 0.93}


# -- the methods ----------------------------------------------------------------------------
def vaekit_detector(args: argparse.Namespace, seed: int = 0) -> VAEAnomalyDetector:
    """The detector as the flags set it (``--preset``, ``--epochs``, ``--score``, ``--set FIELD=VALUE``), unfitted."""
    return VAEAnomalyDetector(preset=args.preset, epochs=args.epochs, anomaly_score=args.score,
                              model=parse_override(args.set) or None, random_state=seed)


def vaekit_scores(x_train: np.ndarray, x_test: np.ndarray, seed: int, args: argparse.Namespace
                  ) -> tuple[dict[str, np.ndarray], VAEAnomalyDetector]:
    """The fitted score's test scores, plus each single score (``resid`` where the fitted score has it:
    its statistics are kept only then) and, for a sum, each shorter sum of its parts, from the same
    fitted models."""
    det = vaekit_detector(args, seed).fit(x_train)
    out = {"vaekit": det.decision_function(x_test)}
    default, model = det.score_, det.model
    parts = score_parts(default)
    shorter = ["+".join(sub) for n in range(2, len(parts)) for sub in itertools.combinations(parts, n)]
    singles = [score for score in SCORES if score != "resid" or "resid" in parts]  # resid needs its statistics
    for score in (*singles, *shorter):
        if score != default:  # the single scores and shorter sums; the default is scored above
            det.set_params(anomaly_score=score, model={**(model or {}), "k": args.k})
            out[f"vaekit-{score}"] = det.decision_function(x_test)
    det.set_params(anomaly_score=args.score, model=model)
    return out, det


def pyod_vae_scores(x_train: np.ndarray, x_test: np.ndarray, seed: int, kl: bool) -> np.ndarray:
    from pyod.models.vae import VAE

    extra = {"capacity": float("inf")} if kl else {}
    model = VAE(random_state=seed, verbose=0, device="cpu", **extra)
    model.fit(x_train)
    return model.decision_function(x_test)


def pyod_plain_scores(x_train: np.ndarray, x_test: np.ndarray, method: str) -> np.ndarray:
    """PyOD's kNN (k = 5), LOF, ECOD or COPOD with its defaults: fitted on ``x_train``, scores of ``x_test``."""
    import importlib

    module, name = PYOD_PLAIN[method]
    model = getattr(importlib.import_module(f"pyod.models.{module}"), name)()
    return model.fit(x_train).decision_function(x_test)


def iforest_scores(x_train: np.ndarray, x_test: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.ensemble import IsolationForest

    return -IsolationForest(random_state=seed).fit(x_train).score_samples(x_test)


def pca_scores(x_train: np.ndarray, x_test: np.ndarray, components: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    pca = PCA(n_components=components, random_state=0).fit(x_train)
    recon = pca.inverse_transform(pca.transform(x_test))
    return ((x_test - recon) ** 2).sum(axis=1)


def knn_scores(x_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    train = torch.from_numpy(np.ascontiguousarray(x_train, dtype=np.float64))
    out = [torch.cdist(torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float64)), train).min(dim=1).values
           for chunk in np.array_split(x_test, max(1, len(x_test) // 1000))]
    return torch.cat(out).numpy()


def center_scores(x_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    return ((x_test - x_train.mean(axis=0)) ** 2).sum(axis=1)


def all_scores(x_train: np.ndarray, x_test: np.ndarray, seed: int, args: argparse.Namespace, *, table: bool
               ) -> tuple[dict[str, np.ndarray], dict[str, float], VAEAnomalyDetector | None]:
    """Every method's test scores (higher = more anomalous) and the seconds each took."""
    flat_train, flat_test = x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1)
    if table:
        mean, std = flat_train.mean(axis=0), flat_train.std(axis=0)
        std[std < 1e-12] = 1.0
        std_train, std_test = (flat_train - mean) / std, (flat_test - mean) / std
        components = math.ceil(flat_train.shape[1] / 2)
    else:
        std_train, std_test, components = flat_train, flat_test, 32
    scores: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    det = None
    for method in args.methods:
        t = time.perf_counter()
        if method == "vaekit":
            got, det = vaekit_scores(x_train, x_test, seed, args)
            scores.update(got)
        elif method == "vaekit-het":
            het = vaekit_detector(args, seed)
            het.set_params(model={**(het.model or {}), "heteroscedastic": True, "likelihood": "gaussian"})
            scores[method] = het.fit(x_train).decision_function(x_test)
        elif method in ("pyod-vae", "pyod-vae-kl"):
            scores[method] = pyod_vae_scores(flat_train, flat_test, seed, kl=method.endswith("kl"))
        elif method == "iforest":
            scores[method] = iforest_scores(flat_train, flat_test, seed)
        elif method in PYOD_PLAIN:
            scores[method] = pyod_plain_scores(std_train, std_test, method)
        elif method == "pca":
            scores[method] = pca_scores(std_train, std_test, components)
        elif method == "knn":
            scores[method] = knn_scores(std_train, std_test)
        elif method == "center":
            scores[method] = center_scores(std_train, std_test)
        seconds[method] = round(time.perf_counter() - t, 2)
    return scores, seconds, det


def resolved_settings(det: VAEAnomalyDetector) -> dict[str, Any]:
    """The settings the detector fitted this data with (its preset, and any ``--set``), and the epochs
    each fit trained (fewer than ``epochs`` where ``max_updates`` limits them)."""
    return {**asdict(det.settings_), "likelihood": det.model_.config.likelihood,
            "learn_obs_df": det.model_.config.learn_obs_df, "scoring_fits": len(det.fits_),
            "trained_epochs": det.train_config_.epochs}


def aurocs(scores: dict[str, np.ndarray], y: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    return {m: float(roc_auc_score(y, s)) for m, s in scores.items()}


# -- the protocols ------------------------------------------------------------------------------
def one_class(name: str, args: argparse.Namespace) -> tuple[dict[str, Any], VAEAnomalyDetector | None]:
    import vaekit

    data = vaekit.data.load(name, val_fraction=0.0)
    x_train, y_train = data.train.numpy(), data.train_labels.numpy()
    per_class: dict[str, list[float]] = {}
    seconds: dict[str, float] = {}
    first_det = None
    for c in args.classes:
        if args.validation:
            fit_idx, test_idx = validation_split(y_train, c)
            x_fit, x_test, y_test = x_train[fit_idx], x_train[test_idx], y_train[test_idx]
        else:
            x_fit, x_test, y_test = x_train[y_train == c], data.test.numpy(), data.test_labels.numpy()
        by_seed = []
        for seed in args.class_seeds:
            scores, secs, det = all_scores(x_fit, x_test, seed=seed, args=args, table=False)
            first_det = first_det or det
            by_seed.append(aurocs(scores, (y_test != c).astype(int)))
            for m, s in secs.items():
                seconds[m] = round(seconds.get(m, 0.0) + s, 1)
        for m in by_seed[0]:
            per_class.setdefault(m, []).append(round(float(np.mean([a[m] for a in by_seed])), 4))
        print(f"# {name} class {c}: " + ", ".join(f"{m} {v[-1]:.4f}" for m, v in per_class.items()),
              file=sys.stderr, flush=True)
    means = {m: round(float(np.mean(v)), 4) for m, v in per_class.items()}
    protocol = "one-class-validation" if args.validation else "one-class"
    row = {"benchmark": "anomaly", "dataset": name, "protocol": protocol, "classes": args.classes,
           "seeds": args.class_seeds, "auroc_mean": means, "auroc_per_class": per_class, "seconds": seconds,
           "best": max(means, key=means.get)}
    if name in GOALS and "vaekit" in means and len(args.classes) == 10 and not args.validation:
        row["goal"] = {"vaekit_mean_at_least": GOALS[name], "met": means["vaekit"] >= GOALS[name]}
    if first_det is not None:
        row["vaekit_resolved"] = resolved_settings(first_det)
    return row, first_det


def validation_split(labels: np.ndarray, normal: int, other: int = 5000, seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Training-set indices: 80% of class ``normal`` to fit; its other 20% and ``other`` images of
    the other classes to score."""
    rng = np.random.default_rng(seed)
    own = rng.permutation(np.flatnonzero(labels == normal))
    cut = int(0.8 * len(own))
    others = rng.choice(np.flatnonzero(labels != normal), other, replace=False)
    return own[:cut], np.concatenate([own[cut:], others])


def adbench_dir() -> Path:
    return Path(os.environ.get("VAEKIT_DATA_DIR", "../shared/data")) / "adbench"


def adbench_sets(names: list[str]) -> list[str]:
    """``--sets``: the names given, or for ``all`` every ``*.npz`` in the ADBench folder, sorted."""
    if names != ["all"]:
        return names
    found = sorted(p.stem for p in adbench_dir().glob("*.npz"))
    if not found:
        raise SystemExit(f"--sets all: no *.npz in {adbench_dir()}")
    return found


def adbench(set_name: str, args: argparse.Namespace) -> dict[str, Any]:
    from sklearn.model_selection import train_test_split

    with np.load(adbench_dir() / f"{set_name}.npz", allow_pickle=False) as z:
        x, y = z["X"].astype(np.float32), z["y"].astype(int).ravel()
    n_all, cap = len(x), math.floor(args.max_train / 0.7)
    if n_all > cap:  # the same rows for every seed and method: at most --max-train training rows per split
        keep, _ = train_test_split(np.arange(n_all), train_size=cap, stratify=y, random_state=0)
        keep.sort()
        x, y = x[keep], y[keep]
    per_seed: dict[str, list[float]] = {}
    seconds: dict[str, float] = {}
    for seed in args.seeds:
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, stratify=y, random_state=seed)
        if args.validation:  # the test part is never read: fit on 70% of the training part, score its other 30%
            x_tr, x_te, _, y_te = train_test_split(x_tr, y_tr, test_size=0.3, stratify=y_tr, random_state=seed)
        scores, secs, det = all_scores(x_tr, x_te, seed, args, table=True)
        if args.save_scores is not None:
            save_scores(args.save_scores / f"{set_name}-seed{seed}.npz", x_te, y_te, scores, det)
        for m, a in aurocs(scores, y_te).items():
            per_seed.setdefault(m, []).append(round(a, 4))
        for m, s in secs.items():
            seconds[m] = round(seconds.get(m, 0.0) + s, 1)
    means = {m: round(float(np.mean(v)), 4) for m, v in per_seed.items()}
    protocol = "adbench-70/30-validation" if args.validation else "adbench-70/30"
    row: dict[str, Any] = {"benchmark": "anomaly", "dataset": set_name, "protocol": protocol,
                           "n": len(x), "d": x.shape[1], "anomaly_rate": round(float(y.mean()), 4),
                           **({"subsampled_from": n_all} if n_all > len(x) else {}),
                           "seeds": args.seeds, "auroc_mean": means, "auroc_per_seed": per_seed, "seconds": seconds}
    peers = {m: v for m, v in means.items() if m in PEERS}
    if "vaekit" in means and peers:
        best = max(peers, key=peers.get)
        row["best_peer"] = best
        row["vaekit_wins"] = means["vaekit"] >= peers[best]
    if det is not None:
        row["vaekit_resolved"] = resolved_settings(det)
    return row


def adbench_rows(names: list[str], args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """Each set's line (``adbench``): in the order of ``names``, or with ``--jobs N`` as each set is
    done, the sets run in N worker processes of ``--threads`` torch threads each, the largest files
    first so that no worker is left with a large set at the end."""
    if args.jobs <= 1:
        yield from (adbench(name, args) for name in names)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    largest_first = sorted(names, key=lambda name: (adbench_dir() / f"{name}.npz").stat().st_size, reverse=True)
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=torch.set_num_threads, initargs=(args.threads,)) as pool:
        yield from (done.result() for done in as_completed([pool.submit(adbench, name, args)
                                                             for name in largest_first]))


def save_scores(path: Path, x_test: np.ndarray, y_test: np.ndarray, scores: dict[str, np.ndarray],
                det: VAEAnomalyDetector | None) -> None:
    """``--save-scores``: the test labels (``y``), every method's test scores (``method:NAME``) and, for
    each of vaekit's scoring fits, each part of its score on the test rows (``fitI:PART:test``) beside
    the same part's sorted training scores (``fitI:PART:train``): what another rule for combining the
    parts needs to be compared on the same fits, without fitting again."""
    arrays = {"y": np.asarray(y_test), **{f"method:{m}": np.asarray(v, np.float64) for m, v in scores.items()}}
    if det is not None:
        xm, settings = det.transform_input(x_test), det.settings_
        for i, fit in enumerate(det.fits_):
            parts = fit.parts(xm, score_parts(settings.score), k=settings.k, n_neighbors=settings.n_neighbors,
                              seed=int(det.random_state or 0), device=resolve_device(det.device))
            for name, values in parts.items():
                arrays[f"fit{i}:{name}:test"] = values
                arrays[f"fit{i}:{name}:train"] = np.asarray(fit.references[name], np.float64)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would add .npz to a path
            np.savez_compressed(f, **arrays)

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_with(path, write)


def synthetic(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The synthetic cases (``vaekit.anomaly.synthetic``): vaekit (its flags) against the plain methods, per seed."""
    from vaekit.anomaly.synthetic import CASES, plain_scores

    rows = []
    for name, make in CASES.items():
        per_seed: dict[str, list[float]] = {}
        collapsed = []
        for seed in args.seeds:
            x_train, x_test, y = make(seed)
            det = vaekit_detector(args, seed).fit(x_train)
            collapsed.append(bool(det.collapsed_))
            scores = {"vaekit": det.decision_function(x_test), **plain_scores(x_train, x_test)}
            for m, a in aurocs(scores, y).items():
                per_seed.setdefault(m, []).append(round(a, 4))
        means = {m: round(float(np.mean(v)), 4) for m, v in per_seed.items()}
        best = max((m for m in means if m != "vaekit"), key=means.get)
        rows.append({"benchmark": "anomaly", "dataset": f"synthetic-{name}", "seeds": args.seeds,
                     "auroc_mean": means, "best_plain": best, "vaekit_collapsed": collapsed,
                     "vaekit_within_0.02": means["vaekit"] >= means[best] - 0.02})
    return rows


def throughput(det: VAEAnomalyDetector, args: argparse.Namespace) -> dict[str, Any]:
    """decision_function on the MNIST test images, per score (the detector of the first class)."""
    import vaekit

    x = vaekit.data.load("mnist", val_fraction=0.0).test.numpy()
    rates = {}
    model = det.model
    for score in (det.score_, *(s for s in SCORES if s != det.score_)):
        sampled = draws_samples(score)
        k = args.k if sampled else 1
        det.set_params(anomaly_score=score, model={**(model or {}), "k": k})
        det.decision_function(x[:1000])  # warm-up
        t = time.perf_counter()
        det.decision_function(x)
        rates[f"{score}" + (f" (k={k})" if sampled else "")] = round(len(x) / (time.perf_counter() - t))
    det.set_params(anomaly_score=args.score, model=model)
    return {"benchmark": "anomaly", "dataset": "throughput", "input": "mnist test (10000 x 784)",
            "examples_per_s": rates, "threads": torch.get_num_threads()}


def ranks(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Average rank per method over the sets (1 = the best AUROC mean on a set, ties averaged), among
    vaekit's default and every other method run (the single-score ``vaekit-*`` columns left out)."""
    from scipy.stats import rankdata

    ranked = [m for m in rows[0]["auroc_mean"] if m == "vaekit" or not m.startswith("vaekit-")]
    per_set = [rankdata([-row["auroc_mean"][m] for m in ranked]) for row in rows]
    return {m: round(float(np.mean([r[i] for r in per_set])), 2) for i, m in enumerate(ranked)}


def adbench_summary(rows: list[dict[str, Any]], args: argparse.Namespace, start: float) -> dict[str, Any]:
    """The line after the sets: mean AUROC and average rank per method, vaekit's wins, the run's wall time,
    and each method's seconds over all sets and seeds (``method_s``; the single-score ``vaekit-*``
    columns reuse vaekit's fits and have none)."""
    methods = list(rows[0]["auroc_mean"]) if rows else []
    means = {m: round(float(np.mean([r["auroc_mean"][m] for r in rows])), 4) for m in methods}
    rank = ranks(rows) if rows else {}
    wins = [(r["dataset"], r["vaekit_wins"]) for r in rows if "vaekit_wins" in r]
    won = [s for s, w in wins if w]
    peer_means = [v for m, v in means.items() if m in PEERS]
    goal = {"wins_at_least": 14, "of": 28,
            "mean_at_or_above_every_peer": "vaekit" in means and all(means["vaekit"] >= v for v in peer_means),
            "best_average_rank": "vaekit" in rank and rank["vaekit"] <= min(rank.values())}
    goal["met"] = (len(won) >= 14 and len(rows) == 28 and goal["mean_at_or_above_every_peer"]
                   and goal["best_average_rank"] and not args.validation)
    return {"benchmark": "anomaly", "dataset": "adbench-summary", "sets": len(rows), "seeds": args.seeds,
            "auroc_mean": means, "average_rank": dict(sorted(rank.items(), key=lambda kv: kv[1])),
            "vaekit_at_or_above_best_peer": len(won), "of": len(wins), "won": won,
            "lost": [s for s, w in wins if not w],
            "subsampled": {r["dataset"]: r["subsampled_from"] for r in rows if "subsampled_from" in r},
            "goal": goal, "wall_s": round(time.perf_counter() - start, 1), "threads": args.threads,
            "method_s": {m: round(sum(r.get("seconds", {}).get(m, 0.0) for r in rows), 1)
                         for m in methods if any(m in r.get("seconds", {}) for r in rows)}}


def merge_runs(paths: list[str], args: argparse.Namespace) -> list[dict[str, Any]]:
    """The ADBench lines of several runs (one file of JSON lines each, over the same sets) as one
    run: per set and method, the AUROCs of every seed, their mean, the best peer and vaekit's
    win, then ``adbench_summary``'s line. Runs over the same seeds are joined method by method, a
    later file's method replacing an earlier one's (vaekit rerun after a change, beside peers
    whose figures do not depend on it); runs over different seeds, seed by seed (a run too long
    to make at once). Each method's seconds are summed over the runs."""
    by_seeds: dict[tuple[int, ...], dict[str, dict[str, Any]]] = {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            run = {r["dataset"]: r for r in map(json.loads, filter(str.strip, f)) if "auroc_per_seed" in r}
        if not run:
            raise SystemExit(f"--merge: {path} has no ADBench lines")
        joined = by_seeds.setdefault(tuple(next(iter(run.values()))["seeds"]), {})
        if joined and set(joined) != set(run):
            raise SystemExit(f"--merge: {path} is not over the same ADBench sets as the runs before it")
        for name, row in run.items():
            before = joined.get(name, {})
            joined[name] = {**before, **row, **{key: {**before.get(key, {}), **row.get(key, {})}
                                                for key in ("auroc_per_seed", "seconds")}}
    runs = list(by_seeds.values())
    methods = [set(next(iter(run.values()))["auroc_per_seed"]) for run in runs]
    if any(set(run) != set(runs[0]) for run in runs) or any(m != methods[0] for m in methods):
        raise SystemExit("--merge: expected runs over the same ADBench sets and methods")
    rows = []
    for name, first in runs[0].items():
        per_seed = {m: [a for run in runs for a in run[name]["auroc_per_seed"][m]] for m in first["auroc_per_seed"]}
        means = {m: round(float(np.mean(v)), 4) for m, v in per_seed.items()}
        peers = {m: v for m, v in means.items() if m in PEERS}
        best = max(peers, key=peers.get)
        seconds = {m: round(sum(run[name].get("seconds", {}).get(m, 0.0) for run in runs), 1)
                   for m in {m for run in runs for m in run[name].get("seconds", {})}}
        rows.append({**first, "seeds": [s for run in runs for s in run[name]["seeds"]], "auroc_per_seed": per_seed,
                     "auroc_mean": means, "best_peer": best, "vaekit_wins": means["vaekit"] >= peers[best],
                     "seconds": seconds})
    args.seeds = rows[0]["seeds"] if rows else []
    return rows


def auto_or(kind: Any) -> Any:
    """An argparse type for a flag that takes ``auto`` or a ``kind`` (the detector checks the range)."""
    def parse(value: str) -> Any:
        return value if value == "auto" else kind(value)

    parse.__name__ = f"'auto' or {kind.__name__}"  # argparse's error: invalid 'auto' or int value: 'x'
    return parse


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="+", default=["mnist", "fashion-mnist", "adbench", "throughput"],
                   choices=["mnist", "fashion-mnist", "adbench", "throughput", "synthetic"])
    p.add_argument("--classes", nargs="+", type=int, default=list(range(10)))
    p.add_argument("--sets", nargs="+", default=list(ADBENCH_SETS),
                   help="ADBench sets (file names without .npz), or `all`: every *.npz in $VAEKIT_DATA_DIR/adbench")
    p.add_argument("--max-train", type=int, default=50_000,
                   help="ADBench: subsample larger sets (once, stratified, seed 0) to at most this many training rows")
    p.add_argument("--seeds", nargs="+", type=int, help="ADBench split seeds (default 0 1 2; --validation: 0)")
    p.add_argument("--class-seeds", nargs="+", type=int, default=[0],
                   help="one-class: seeds of the fitted models (AUROC per class is the mean over them)")
    p.add_argument("--methods", nargs="+", default=DEFAULT_METHODS, choices=METHODS)
    p.add_argument("--epochs", type=auto_or(int), default="auto",
                   help="vaekit training epochs (default: auto, 200 for images and 50 for tables)")
    p.add_argument("--k", type=int, default=20, help="samples for the elbo / nll scores in the benchmark")
    p.add_argument("--threads", type=int, default=1, help="torch threads (per worker with --jobs)")
    p.add_argument("--jobs", type=int, default=1,
                   help="ADBench: run the sets in this many worker processes at once (one per core)")
    p.add_argument("--score", default="auto", help="vaekit's anomaly_score for the fit (default: its default)")
    p.add_argument("--preset", default="auto", choices=["auto", *PRESETS], help="vaekit's preset (default: auto)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="vaekit: replace one of the preset's settings (repeat), as `vaekit anomaly fit --set`: "
                        f"{', '.join(FIELDS)}")
    p.add_argument("--validation", action="store_true", help="score training data held out, not the test sets")
    p.add_argument("--save-scores", type=Path, metavar="DIR",
                   help="ADBench: also write DIR/SET-seedN.npz with the test labels, every method's test scores "
                        "and each vaekit fit's score parts (test and training), to compare ways of combining them")
    p.add_argument("--merge", nargs="+", metavar="FILE",
                   help="combine the ADBench lines of runs (their output files) into one run and print its "
                        "lines and summary; nothing is trained. Runs over different --seeds add seeds; runs over "
                        "the same seeds add methods, a later file's method replacing an earlier one's")
    args = p.parse_args()
    start = time.perf_counter()
    if args.merge:
        rows = merge_runs(args.merge, args)
        for row in rows:
            print(json.dumps(row), flush=True)
        print(json.dumps(adbench_summary(rows, args, start)), flush=True)
        return
    args.seeds = args.seeds or ([0] if args.validation else [0, 1, 2])
    torch.set_num_threads(args.threads)
    env = environment()
    settings = {"epochs": args.epochs, "k": args.k,
                "vaekit_params": vaekit_detector(args).get_params()}
    det = None
    for name in args.only:
        if name in ("mnist", "fashion-mnist"):
            row, d = one_class(name, args)
            det = det or d
            print(json.dumps({**row, "settings": settings, "environment": env}), flush=True)
        elif name == "adbench":
            rows = []
            names = adbench_sets(args.sets)
            for row in adbench_rows(names, args):
                rows.append(row)
                print(json.dumps({**row, "settings": settings, "environment": env}), flush=True)
            rows.sort(key=lambda row: names.index(row["dataset"]))  # --jobs: in the order they finished
            print(json.dumps({**adbench_summary(rows, args, start), "environment": env}), flush=True)
        elif name == "synthetic":
            for row in synthetic(args):
                print(json.dumps({**row, "settings": settings, "environment": env}), flush=True)
        elif name == "throughput":
            if det is None:
                import vaekit

                data = vaekit.data.load("mnist", val_fraction=0.0)
                det = vaekit_detector(args).fit(data.train[data.train_labels == 0].numpy())
            print(json.dumps({**throughput(det, args), "environment": env}), flush=True)


if __name__ == "__main__":
    main()
