"""Does a conditional VAE draw the class it is asked for? Judged by a CNN trained on real MNIST.

Trains a CVAE on MNIST (or judges a given run), draws ``--per-class`` samples of every
digit from the prior (decoder means, ``latent.sample(model, n, cond=labels)``; or with
``--sampler gmm`` from the run's Gaussian mixture over the training codes), and has
the cached MNIST classifier of ``mnist_classifier.py`` (98.6% test accuracy) label them.
Prints one JSON line per ``--temperatures`` value (default: 1.0, the model's own prior):
the fraction recognized as the asked class, overall and per class, the fraction
classified with confidence > 0.9, the run's test -ELBO, the timings and the environment.
Issue 7's goal: at least 95% of 10,000 samples.

    VAEKIT_DATA_DIR=../shared/data python benchmarks/cvae_classes.py --epochs 10 --threads 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

import vaekit
from vaekit import latent

from common import environment  # benchmarks/ is on sys.path when a script here runs
from mnist_classifier import predict_proba, trained_classifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a CVAE run on MNIST to judge (default: train one)")
    parser.add_argument("--epochs", type=int, default=40, help="epochs when training the CVAE here (40 reach 95%%)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--arch", default="mlp", choices=["mlp", "conv"])
    parser.add_argument("--condition", default="onehot", choices=["onehot", "embedding"])
    parser.add_argument("--per-class", type=int, default=1000, help="samples drawn per class")
    parser.add_argument("--sampler", default="prior", choices=["prior", "gmm"],
                        help="prior N(0, I), or the run's Gaussian mixture fitted to the training codes")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[1.0],
                        help="prior temperatures to judge, one JSON line each (1.0 is the model's own prior)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument("--limit", type=int, default=None, help="train on the first N examples only (a smoke test)")
    parser.add_argument("--out", type=Path,
                        help="where to keep the trained run, replaced if it exists (default: a temporary folder)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    started = time.perf_counter()
    classifier, classifier_accuracy = trained_classifier()
    classifier_s = time.perf_counter() - started
    train_s = None
    if args.run is None:
        out = args.out or Path(tempfile.mkdtemp(prefix="vaekit-cvae-")) / "mnist-cvae"
        t0 = time.perf_counter()
        data = {"source": "mnist", "limit": args.limit}
        run = vaekit.train(data, {"model": "cvae", "latent_dim": args.latent_dim, "arch": args.arch,
                                     "condition": args.condition}, {"epochs": args.epochs}, out=out,
                           overwrite=args.out is not None, progress=False)
        train_s = time.perf_counter() - t0
    else:
        run = vaekit.open_run(args.run)
    model = run.model
    k = model.config.num_classes
    asked = torch.arange(k).repeat_interleave(args.per_class)
    sampler = latent.gmm_sampler(run) if args.sampler == "gmm" else "prior"
    for temperature in args.temperatures:
        t0 = time.perf_counter()
        images = latent.sample(model, len(asked), sampler=sampler, temperature=temperature, seed=args.seed,
                               cond=asked)
        probs = predict_proba(classifier, images.cpu())
        sample_s = time.perf_counter() - t0
        hit = probs.argmax(1) == asked
        per_class = {model.config.class_name(c): round(hit[asked == c].double().mean().item(), 4) for c in range(k)}
        row = {
            "benchmark": "cvae_classes", "run": str(run.path), "arch": model.config.arch,
            "condition": model.config.condition, "latent_dim": model.config.latent_dim,
            "epochs": run.summary.get("epochs"), "test_elbo": run.summary.get("test", {}).get("elbo"),
            "samples": len(asked), "sampler": args.sampler, "temperature": temperature, "seed": args.seed,
            "recognized_as_asked": round(hit.double().mean().item(), 4),
            "recognized_as_asked_per_class": per_class,
            "confident_fraction": round((probs.max(1).values > 0.9).double().mean().item(), 4),
            "goal": 0.95,
            "classifier_test_accuracy": round(classifier_accuracy, 4), "classifier_seconds": round(classifier_s, 1),
            "train_seconds": None if train_s is None else round(train_s, 1),
            "sample_and_judge_seconds": round(sample_s, 1),
        }
        row.update(environment())
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
