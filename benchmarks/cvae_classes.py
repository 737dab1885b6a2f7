"""Does a conditional VAE draw the class it is asked for? Judged by a CNN trained on real MNIST.

Trains a CVAE on MNIST the way a newcomer would, with the model's defaults (or judges a
given run), draws ``--per-class`` samples of every digit from the prior (decoder means,
``latent.sample(model, n, cond=labels)``; or with ``--sampler gmm`` from the run's Gaussian
mixture over the training codes), and has the cached MNIST classifier of
``mnist_classifier.py`` (98.6% test accuracy) label them. Each ``--cases`` entry trains one
run: ``short`` is 6 epochs on the first 12,000 images, ``full`` 40 epochs on all of MNIST
(the targets: at least 90% and 97% recognised as the asked class). Prints one JSON
line per case and ``--temperatures`` value (default: 1.0, the model's own prior): the
fraction recognized as the asked class, overall and per class, the fraction classified
with confidence > 0.9, the run's test -ELBO, the timings and the environment.

    VAEKIT_DATA_DIR=../shared/data taskset -c 1 python benchmarks/cvae_classes.py --threads 1
    python benchmarks/cvae_classes.py --cases short --set center_codes=false   # uncentred codes
    python benchmarks/cvae_classes.py --cases short --set label_layers='"first"'  # the label in the first layer only
    python benchmarks/cvae_classes.py --epochs 10 --latent-dim 4               # one case of your own
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

#: The cases a newcomer would run: (epochs, training images; None = all of MNIST's 60,000 less validation).
CASES = {"short": (6, 12000), "full": (40, None)}
#: The targets: the share of samples recognised as the asked class.
GOALS = {"short": 0.90, "full": 0.97}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a CVAE run on MNIST to judge (default: train one)")
    parser.add_argument("--cases", nargs="+", default=["short", "full"], choices=sorted(CASES),
                        help="runs to train: short (6 epochs, 12,000 images), full (40 epochs, all of MNIST)")
    parser.add_argument("--epochs", type=int, default=None, help="train one case of this many epochs instead")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--latent-dim", type=int, default=None, help="default: the model's")
    parser.add_argument("--arch", default=None, choices=["mlp", "conv"], help="default: the model's")
    parser.add_argument("--condition", default=None, choices=["onehot", "embedding"], help="default: the model's")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="FIELD=VALUE",
                        help="any other model field, e.g. center_codes=false (JSON values)")
    parser.add_argument("--train-seed", type=int, default=0, help="training seed")
    parser.add_argument("--per-class", type=int, default=1000, help="samples drawn per class")
    parser.add_argument("--sampler", default="prior", choices=["prior", "gmm"],
                        help="prior N(0, I), or the run's Gaussian mixture fitted to the training codes")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[1.0],
                        help="prior temperatures to judge, one JSON line each (1.0 is the model's own prior)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument("--limit", type=int, default=None, help="with --epochs: train on the first N examples only")
    parser.add_argument("--out", type=Path,
                        help="where to keep the trained run, replaced if it exists (default: a temporary folder)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    started = time.perf_counter()
    classifier, classifier_accuracy = trained_classifier()
    classifier_s = time.perf_counter() - started
    model_options: dict = {"model": "cvae"}
    for name in ("latent_dim", "arch", "condition"):
        if getattr(args, name) is not None:
            model_options[name] = getattr(args, name)
    for assignment in args.assignments:
        name, _, value = assignment.partition("=")
        model_options[name] = json.loads(value)
    if args.run is not None:
        judge(args, vaekit.open_run(args.run), None, None, classifier, classifier_accuracy, classifier_s)
        return
    cases = {"custom": (args.epochs, args.limit)} if args.epochs is not None else {c: CASES[c] for c in args.cases}
    for case, (epochs, limit) in cases.items():
        out = args.out / case if args.out else Path(tempfile.mkdtemp(prefix="vaekit-cvae-")) / "mnist-cvae"
        t0 = time.perf_counter()
        run = vaekit.train({"source": "mnist", "limit": limit}, model_options,
                           {"epochs": epochs, "seed": args.train_seed}, out=out, overwrite=args.out is not None,
                           progress=False)
        judge(args, run, case, time.perf_counter() - t0, classifier, classifier_accuracy, classifier_s)


def judge(args: argparse.Namespace, run: vaekit.Run, case: str | None, train_s: float | None, classifier,
          classifier_accuracy: float, classifier_s: float) -> None:
    """One JSON line per temperature: how many of ``run``'s samples the CNN recognises as the asked digit."""
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
            "benchmark": "cvae_classes", "case": case, "run": str(run.path), "arch": model.config.arch,
            "condition": model.config.condition, "latent_dim": model.config.latent_dim,
            "center_codes": getattr(model.config, "center_codes", None),
            "label_layers": getattr(model.config, "label_layers", None),
            "epochs": run.summary.get("epochs"), "limit": run.data_config.limit, "train_seed": run.train_config.seed,
            "test_elbo": run.summary.get("test", {}).get("elbo"),
            "samples": len(asked), "sampler": args.sampler, "temperature": temperature, "seed": args.seed,
            "recognized_as_asked": round(hit.double().mean().item(), 4),
            "recognized_as_asked_per_class": per_class,
            "confident_fraction": round((probs.max(1).values > 0.9).double().mean().item(), 4),
            "goal": GOALS.get(case),
            "classifier_test_accuracy": round(classifier_accuracy, 4), "classifier_seconds": round(classifier_s, 1),
            "train_seconds": None if train_s is None else round(train_s, 1),
            "sample_and_judge_seconds": round(sample_s, 1),
        }
        row.update(environment())
        print(json.dumps(row), flush=True)

if __name__ == "__main__":
    main()
