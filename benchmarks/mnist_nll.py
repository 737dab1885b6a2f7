"""Test NLL on dynamically binarized MNIST, comparable with Burda et al. 2015 (k = 5000).

Trains with the given objective (ELBO or IWAE) on ``mnist-binarized`` and evaluates the
importance-sampled negative log-likelihood of the 10,000 test images (binarized once with
a fixed seed). ``--model hvae`` trains the hierarchical VAE (top-down inference; its
importance samples come from the full hierarchical posterior). References, nats (Burda et
al. 2015, Table 1): VAE 1 stochastic layer 86.76, IWAE k=50 1 layer 84.78; VAE 2 layers
85.33, IWAE k=50 2 layers 82.90; Ladder VAE 81.74; NVAE 78.01; pythae's VAE 89.78.
Prints one JSON line.

    VAEKIT_DATA_DIR=../shared/data python benchmarks/mnist_nll.py --epochs 100 --objective iwae --iw-samples 50
    VAEKIT_DATA_DIR=../shared/data python benchmarks/mnist_nll.py --model hvae --epochs 400 --threads 1
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

import vaekit

from common import environment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--objective", choices=["elbo", "iwae"], default="elbo")
    parser.add_argument("--iw-samples", type=int, default=50)
    parser.add_argument("--model", choices=["vae", "hvae"], default="vae",
                        help="vae: one stochastic layer; hvae: a hierarchy of latent groups")
    parser.add_argument("--latent-dim", type=int, default=32, help="vae: latent dimensions")
    parser.add_argument("--groups", default="32,64", help="hvae: latent dims per group, top first")
    parser.add_argument("--cell-blocks", type=int, default=1, help="hvae: residual blocks per cell")
    parser.add_argument("--kl-anneal", default=None, help="KL warm-up, e.g. linear:10 (default: hvae linear:10, "
                                                         "vae none)")
    parser.add_argument("--hidden", default="512,256")
    parser.add_argument("--k", type=int, default=5000, help="importance samples at test time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="run directory (default: a temporary one)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    out = args.out or Path(tempfile.mkdtemp(prefix="vaekit-nll-")) / "run"
    model_options: dict = {"model": args.model, "hidden": [int(h) for h in args.hidden.split(",")]}
    if args.model == "hvae":
        model_options.update(groups=[int(d) for d in args.groups.split(",")], cell_blocks=args.cell_blocks)
    else:
        model_options["latent_dim"] = args.latent_dim
    train_options = {"epochs": args.epochs, "objective": args.objective, "iw_samples": args.iw_samples,
                     "seed": args.seed,
                     "kl_anneal": args.kl_anneal or ("linear:10" if args.model == "hvae" else "none")}
    started = time.perf_counter()
    run = vaekit.train("mnist-binarized", model_options, train_options, out=out, overwrite=True, progress=False)
    wall_minutes = (time.perf_counter() - started) / 60  # with the pictures, GMM sampler and report
    train_minutes = run.summary["seconds_total"] / 60  # the epochs alone
    started = time.perf_counter()
    figures = vaekit.evaluate(run.model, run.load_data().test, k=args.k)
    print(json.dumps({
        "benchmark": "mnist_nll",
        "nll": figures["nll"], "elbo": figures["elbo"], "active_units": figures["active_units"],
        "k": args.k, "train_minutes": round(train_minutes, 2),
        "train_wall_minutes": round(wall_minutes, 2),
        "eval_minutes": round((time.perf_counter() - started) / 60, 2),
        "config": {"model": model_options, "train": train_options},
        **({"kl_per_group": figures["kl_per_group"]} if "kl_per_group" in figures else {}),
        "references": {"burda_vae_1_layer": 86.76, "burda_iwae_k50_1_layer": 84.78, "burda_vae_2_layers": 85.33,
                       "burda_iwae_k50_2_layers": 82.90, "ladder_vae": 81.74, "nvae": 78.01, "pythae_vae": 89.78},
        **environment(),
    }))


if __name__ == "__main__":
    main()
