"""Latent codes as features: a logistic regression on 16-dimensional VAE codes of MNIST, beside
the same classifier on the 784 raw pixels and on PCA with 16 components.

One train / test split for all three: MNIST's 60,000 training digits (the VAE's training and
validation parts together) and its 10,000 test digits. The VAE (MLP 784-512-256, latent 16,
Bernoulli likelihood on grey levels, ELBO) is trained here for ``--epochs``; its codes are the
encoder means (what ``vaekit encode`` writes). Codes and PCA components are standardized
before the classifier; pixels are used as they are (in [0, 1]). scikit-learn's
LogisticRegression (lbfgs, multinomial, C=1, up to ``--max-iter`` iterations) for all three.
Prints one JSON line.

    VAEKIT_DATA_DIR=../shared/data python benchmarks/latent_features.py --epochs 5 --threads 1
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import vaekit
from vaekit.latent.encoding import encode_means

from common import environment


def accuracy(features_train: np.ndarray, y_train: np.ndarray, features_test: np.ndarray, y_test: np.ndarray,
             *, scale: bool, max_iter: int) -> tuple[float, float]:
    """Test accuracy of a logistic regression and the seconds its fit took."""
    steps = [StandardScaler()] if scale else []
    clf = make_pipeline(*steps, LogisticRegression(max_iter=max_iter))
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # raw pixels may stop at max_iter; stated in the JSON
        clf.fit(features_train, y_train)
    return float((clf.predict(features_test) == y_test).mean()), time.perf_counter() - started


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--max-iter", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run", type=Path, help="use this trained mnist run instead of training one")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    train_minutes = None
    if args.run:
        run = vaekit.open_run(args.run)
    else:
        out = Path(tempfile.mkdtemp(prefix="vaekit-features-")) / "run"
        run = vaekit.train("mnist", {"model": "vae", "latent_dim": args.latent_dim, "hidden": [512, 256]},
                           {"epochs": args.epochs, "seed": args.seed}, out=out, overwrite=True, progress=False)
        train_minutes = round(run.summary["seconds_total"] / 60, 2)
    bundle = run.load_data()
    x_train = torch.cat([bundle.train, bundle.val]) if bundle.val is not None else bundle.train
    y_train = torch.cat([bundle.train_labels, bundle.val_labels]) if bundle.val is not None else bundle.train_labels
    x_test, y_test = bundle.test, bundle.test_labels.numpy()
    y_train = y_train.numpy()
    dims = run.model.config.latent_dim

    pixels_train, pixels_test = x_train.flatten(1).numpy(), x_test.flatten(1).numpy()
    codes_train, codes_test = encode_means(run.model, x_train).numpy(), encode_means(run.model, x_test).numpy()
    pca = PCA(n_components=dims, random_state=args.seed).fit(pixels_train)
    pca_train, pca_test = pca.transform(pixels_train), pca.transform(pixels_test)

    acc_pixels, s_pixels = accuracy(pixels_train, y_train, pixels_test, y_test, scale=False, max_iter=args.max_iter)
    acc_codes, s_codes = accuracy(codes_train, y_train, codes_test, y_test, scale=True, max_iter=args.max_iter)
    acc_pca, s_pca = accuracy(pca_train, y_train, pca_test, y_test, scale=True, max_iter=args.max_iter)
    result = {
        "benchmark": "latent_features",
        "train_examples": len(y_train), "test_examples": len(y_test), "dims": dims,
        "accuracy_pixels": acc_pixels,
        f"accuracy_vae{dims}": acc_codes,
        f"accuracy_pca{dims}": acc_pca,
        "vae_share_of_pixel_accuracy": acc_codes / acc_pixels,
        "pca_share_of_pixel_accuracy": acc_pca / acc_pixels,
        "pca_explained_variance": float(pca.explained_variance_ratio_.sum()),
        "fit_seconds": {"pixels": round(s_pixels, 1), "vae": round(s_codes, 1), "pca": round(s_pca, 1)},
        "vae_test_neg_elbo": run.summary.get("test", {}).get("elbo"),
        "train_minutes": train_minutes,
        "config": {"epochs": run.train_config.epochs, "latent_dim": dims, "max_iter": args.max_iter,
                   "run": str(args.run) if args.run else None},
        **environment(),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
