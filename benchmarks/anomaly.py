"""Anomaly detection: vaekit's VAEAnomalyDetector against PyOD's VAE, IsolationForest and three
plain baselines, on the same splits in the same run. Prints one JSON line per dataset.

    python benchmarks/anomaly.py                          # everything (needs: pip install -e '.[bench]')
    python benchmarks/anomaly.py --only mnist --classes 0 1 --epochs 5      # a quick look
    python benchmarks/anomaly.py --only adbench --sets 6_cardio --seeds 0
    python benchmarks/anomaly.py --only synthetic --seeds 0 --epochs 20   # the synthetic cases
    python benchmarks/anomaly.py --validation --methods vaekit knn       # choose settings: no test data
    python benchmarks/anomaly.py --validation --only adbench --score elbo+knn
    python benchmarks/anomaly.py --validation --only adbench --methods vaekit --set trim=0   # vs the preset's 0.3
    python benchmarks/anomaly.py --validation --only adbench --methods vaekit --set trim_rounds=1   # vs 3

Protocols:

- one-class MNIST / Fashion-MNIST: train on the official training images of one class,
  score all 10,000 test images, the other classes being anomalies; AUROC per class, mean.
- ADBench tabular sets (``$VAEKIT_DATA_DIR/adbench/*.npz``): stratified 70/30 split per
  seed, fit on the training part without labels (anomalies included, as in ADBench),
  AUROC on the test part; mean over seeds.
- throughput: examples/s of ``decision_function`` on the 10,000 MNIST test images for
  each score, with ``--threads`` threads.
- ``--validation``: how settings and the default score were chosen, without test data.
  One-class: fit on 80% of a class's *training* images, score the other 20% and 5,000
  training images of the other classes. ADBench: seeds 100 and 101 (the reported ones are
  0, 1, 2), so the splits differ.

Methods (same inputs for all; images as 784 values in [0, 1]):

- ``vaekit``: ``VAEAnomalyDetector`` with its defaults (score ``auto``: reconstruction
  error + latent 10-NN distance for images; for tables a 2-dim latent and the negative ELBO
  with k = 100 of a Gaussian decoder with a learned std per feature and beta 3, from the last
  of 4 fits, each refit without the 30% of training rows that the fit before scored highest);
  ``vaekit-recon`` / ``vaekit-elbo`` / ``vaekit-nll`` / ``vaekit-knn``: the same fitted
  model scored each single way (``--k`` samples for elbo and nll).
- ``vaekit-het`` (not in the default list): the same detector with ``heteroscedastic=True``
  (the decoder outputs a std per example, at least 0.05), scored by its default (the README's
  column: with ``--trim-rounds 1``).
- ``pyod-vae``: PyOD's ``VAE`` with its defaults (its KL term is clamped to [0, capacity=0],
  i.e. switched off); ``pyod-vae-kl``: the same with ``capacity=inf`` (the KL term on).
- ``iforest``: scikit-learn's ``IsolationForest`` (defaults, ``random_state`` = seed).
- ``pca``: squared reconstruction error with 32 components (tables: ceil(d / 2), on
  standardized features).
- ``knn``: distance to the nearest training example (tables: standardized features).
- ``center``: squared distance to the training mean (tables: standardized features, i.e. the
  sum of squared z-scores). On the ADBench validation splits it ranks the test rows as
  ``pyod-vae-kl`` does, to within 0.001 AUROC on each set (test splits too), as a VAE with
  a collapsed posterior would.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaekit.anomaly import SCORES, VAEAnomalyDetector
from vaekit.anomaly.presets import FIELDS, PRESETS, parse_override
from vaekit.anomaly.scores import draws_samples

from common import environment  # benchmarks/ is on sys.path when a script here runs

ADBENCH_SETS = ("2_annthyroid", "6_cardio", "23_mammography", "26_optdigits", "28_pendigits", "30_satellite",
                "32_shuttle", "35_SpamBase", "38_thyroid", "41_Waveform")
PEERS = ("pyod-vae", "pyod-vae-kl", "iforest")
GOALS = {"mnist": 0.98, "fashion-mnist": 0.93}


# -- the methods ----------------------------------------------------------------------------
def vaekit_detector(args: argparse.Namespace, seed: int = 0) -> VAEAnomalyDetector:
    """The detector as the flags set it (``--preset``, ``--epochs``, ``--score``, ``--set FIELD=VALUE``), unfitted."""
    return VAEAnomalyDetector(preset=args.preset, epochs=args.epochs, anomaly_score=args.score,
                              model=parse_override(args.set) or None, random_state=seed)


def vaekit_scores(x_train: np.ndarray, x_test: np.ndarray, seed: int, args: argparse.Namespace
                  ) -> tuple[dict[str, np.ndarray], VAEAnomalyDetector]:
    """The fitted score's test scores, plus each single score from the same fitted model."""
    det = vaekit_detector(args, seed).fit(x_train)
    out = {"vaekit": det.decision_function(x_test)}
    default, model = det.score_, det.model
    for score in SCORES:
        if score != default:  # the single scores; a default sum is scored above
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
        elif method == "pca":
            scores[method] = pca_scores(std_train, std_test, components)
        elif method == "knn":
            scores[method] = knn_scores(std_train, std_test)
        elif method == "center":
            scores[method] = center_scores(std_train, std_test)
        seconds[method] = round(time.perf_counter() - t, 2)
    return scores, seconds, det


def resolved_settings(det: VAEAnomalyDetector) -> dict[str, Any]:
    """The settings the detector fitted this data with (its preset, and any ``--set``)."""
    return {**asdict(det.settings_), "likelihood": det.model_.config.likelihood,
            "learn_obs_df": det.model_.config.learn_obs_df, "scoring_fits": len(det.fits_)}


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


def adbench(set_name: str, args: argparse.Namespace) -> dict[str, Any]:
    from sklearn.model_selection import train_test_split

    path = Path(os.environ.get("VAEKIT_DATA_DIR", "../shared/data")) / "adbench" / f"{set_name}.npz"
    with np.load(path, allow_pickle=False) as z:
        x, y = z["X"].astype(np.float32), z["y"].astype(int).ravel()
    per_seed: dict[str, list[float]] = {}
    seconds: dict[str, float] = {}
    for seed in args.seeds:
        x_tr, x_te, _, y_te = train_test_split(x, y, test_size=0.3, stratify=y, random_state=seed)
        scores, secs, det = all_scores(x_tr, x_te, seed, args, table=True)
        for m, a in aurocs(scores, y_te).items():
            per_seed.setdefault(m, []).append(round(a, 4))
        for m, s in secs.items():
            seconds[m] = round(seconds.get(m, 0.0) + s, 1)
    means = {m: round(float(np.mean(v)), 4) for m, v in per_seed.items()}
    protocol = "adbench-70/30-validation" if args.validation else "adbench-70/30"
    row: dict[str, Any] = {"benchmark": "anomaly", "dataset": set_name, "protocol": protocol,
                           "n": len(x), "d": x.shape[1], "anomaly_rate": round(float(y.mean()), 4),
                           "seeds": args.seeds, "auroc_mean": means, "auroc_per_seed": per_seed, "seconds": seconds}
    peers = {m: v for m, v in means.items() if m in PEERS}
    if "vaekit" in means and peers:
        best = max(peers, key=peers.get)
        row["best_peer"] = best
        row["vaekit_wins"] = means["vaekit"] >= peers[best]
    if det is not None:
        row["vaekit_resolved"] = resolved_settings(det)
    return row


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
    p.add_argument("--sets", nargs="+", default=list(ADBENCH_SETS))
    p.add_argument("--seeds", nargs="+", type=int, help="ADBench split seeds (default 0 1 2; --validation: 100 101)")
    p.add_argument("--class-seeds", nargs="+", type=int, default=[0],
                   help="one-class: seeds of the fitted models (AUROC per class is the mean over them)")
    p.add_argument("--methods", nargs="+",
                   default=["vaekit", "pyod-vae", "pyod-vae-kl", "iforest", "pca", "knn", "center"],
                   choices=["vaekit", "vaekit-het", "pyod-vae", "pyod-vae-kl", "iforest", "pca", "knn", "center"])
    p.add_argument("--epochs", type=auto_or(int), default="auto",
                   help="vaekit training epochs (default: auto, 200 for images and 50 for tables)")
    p.add_argument("--k", type=int, default=20, help="samples for the elbo / nll scores in the benchmark")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--score", default="auto", help="vaekit's anomaly_score for the fit (default: its default)")
    p.add_argument("--preset", default="auto", choices=["auto", *PRESETS], help="vaekit's preset (default: auto)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="vaekit: replace one of the preset's settings (repeat), as `vaekit anomaly fit --set`: "
                        f"{', '.join(FIELDS)}")
    p.add_argument("--validation", action="store_true", help="score training data held out, not the test sets")
    args = p.parse_args()
    args.seeds = args.seeds or ([100, 101] if args.validation else [0, 1, 2])
    torch.set_num_threads(args.threads)
    env = environment()
    settings = {"epochs": args.epochs, "k": args.k,
                "vaekit_params": vaekit_detector(args).get_params()}
    det = None
    wins = []
    for name in args.only:
        if name in ("mnist", "fashion-mnist"):
            row, d = one_class(name, args)
            det = det or d
            print(json.dumps({**row, "settings": settings, "environment": env}), flush=True)
        elif name == "adbench":
            for set_name in args.sets:
                row = adbench(set_name, args)
                if "vaekit_wins" in row:
                    wins.append((set_name, row["vaekit_wins"]))
                print(json.dumps({**row, "settings": settings, "environment": env}), flush=True)
            won = [s for s, w in wins if w]
            print(json.dumps({"benchmark": "anomaly", "dataset": "adbench-summary", "sets": len(wins),
                              "vaekit_at_or_above_best_peer": len(won), "won": won,
                              "lost": [s for s, w in wins if not w], "goal": {"at_least": 8, "of": 10,
                              "met": len(won) >= 8 and len(wins) == 10 and not args.validation},
                              "environment": env}), flush=True)
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
