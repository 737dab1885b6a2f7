"""VQ-VAE quality: sharper reconstructions than a VAE, a well-used codebook, recognizable samples.

Three measurements, one JSON line each:

1. ``reconstruction``: a VQ-VAE and a conv VAE of similar size (parameter counts printed;
   the VQ-VAE's PixelCNN prior counted apart) trained the same epochs on Fashion-MNIST;
   on its test set, ``vaekit.evaluate``'s reconstruction MSE (decoder mean at the posterior
   mean) and sharpness ratio (edge strength of reconstructions over inputs; below 1 is
   blurrier), plus both -ELBOs (the VQ-VAE's under its uniform prior, h*w*log K of KL).
2. ``codebook``: the VQ-VAE's codebook usage (fraction of the K codes chosen for some test
   position; goal > 0.8) and the perplexity of the code histogram on the test set.
3. ``samples``: a VQ-VAE trained on MNIST as ``vaekit train mnist --model vqvae`` does
   (``--sample-epochs``, default ``auto``: the full default run) with its PixelCNN prior
   fitted, and the prior fit's share of that run's seconds; ``--samples``
   draws (decoder means) at each ``--temperatures`` value judged by the cached MNIST CNN of
   ``mnist_classifier.py``: fraction classified with confidence > 0.9 and the entropy of the
   predicted class histogram (ln 10 = 2.303 when every digit is equally frequent). Real
   test images are judged too, as the ceiling.

    VAEKIT_DATA_DIR=../shared/data python benchmarks/vqvae_quality.py --threads 1
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import vaekit
from vaekit import latent
from vaekit.plotting.pictures import paired_rows, save_grid

from common import environment  # benchmarks/ is on sys.path when a script here runs
from mnist_classifier import judge, trained_classifier

#: The conv VAE compared with the VQ-VAE: the same conv stages, no dense hidden layer, 16
#: latent dimensions, which puts its parameter count near the VQ-VAE's networks.
VAE_OPTIONS = {"model": "vae", "arch": "conv", "channels": [32, 64], "hidden": [], "latent_dim": 16}


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def vq_params(model: Any) -> dict[str, int]:
    """The VQ-VAE's networks and codebook, and its PixelCNN prior apart."""
    prior = n_params(model.prior)
    return {"vqvae_params": n_params(model) - prior, "vqvae_prior_params": prior}


def train(data: str, options: dict[str, Any], args: argparse.Namespace, out: Path,
          epochs: int | str | None = None) -> tuple[Any, float]:
    started = time.perf_counter()
    run = vaekit.train({"source": data, "limit": args.limit}, options,
                       {"epochs": epochs or args.epochs, "seed": args.seed}, out=out, overwrite=True, progress=False)
    return run, time.perf_counter() - started


def figures(run: Any, test: torch.Tensor, keys: tuple[str, ...]) -> dict[str, Any]:
    metrics = vaekit.evaluate(run.model, test, k=1, seed=0)
    return {k: metrics[k] for k in keys if k in metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the Fashion-MNIST models")
    parser.add_argument("--sample-epochs", default="auto",
                        help="epochs of the MNIST VQ-VAE whose samples are judged (default: auto, a full default run)")
    parser.add_argument("--prior-epochs", type=int, default=None, help="PixelCNN epochs (default: the config's)")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--temperatures", type=float, nargs="+", default=[1.0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="train on the first N examples only (a smoke test)")
    parser.add_argument("--out", type=Path, help="where to keep the runs (default: a temporary folder)")
    parser.add_argument("--pictures", type=Path, help="write vqvae-samples.png and vqvae-reconstructions.png here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.out or Path(tempfile.mkdtemp(prefix="vaekit-vq-"))
    env = environment()
    common = {"epochs": args.epochs, "seed": args.seed, "limit": args.limit}

    # 1 and 2: Fashion-MNIST reconstructions and codebook usage (the prior is not needed here).
    vq, vq_s = train("fashion-mnist", {"model": "vqvae", "prior_epochs": 0}, args, out / "fashion-vqvae")
    vae, vae_s = train("fashion-mnist", VAE_OPTIONS, args, out / "fashion-vae")
    test = vq.load_data().test
    keys = ("recon_mse", "sharpness_ratio", "elbo", "recon", "kl", "codebook_usage", "perplexity")
    t0 = time.perf_counter()
    vq_fig = figures(vq, test, keys)
    vae_fig = figures(vae, test, keys)
    row = {"benchmark": "vqvae_quality", "part": "reconstruction", "data": "fashion-mnist", **common,
           "test_examples": len(test),
           "vqvae": {k: vq_fig[k] for k in keys[:5]}, "vae": vae_fig, **vq_params(vq.model),
           "vae_params": n_params(vae.model), "vae_options": VAE_OPTIONS,
           "train_seconds": {"vqvae": round(vq_s, 1), "vae": round(vae_s, 1)},
           "eval_seconds": round(time.perf_counter() - t0, 1), **env}
    print(json.dumps(row), flush=True)
    cfg = vq.model.config
    print(json.dumps({"benchmark": "vqvae_quality", "part": "codebook", "data": "fashion-mnist", **common,
                      "codebook_size": cfg.codebook_size, "code_dim": cfg.code_dim, "grid": list(cfg.grid),
                      "test_codebook_usage": vq_fig["codebook_usage"], "test_perplexity": vq_fig["perplexity"],
                      "goal_usage": 0.8, **env}), flush=True)

    # 3: MNIST samples from the fitted PixelCNN prior, judged by the MNIST classifier.
    classifier, classifier_accuracy = trained_classifier()
    options = {"model": "vqvae"} if args.prior_epochs is None else {"model": "vqvae", "prior_epochs": args.prior_epochs}
    sample_epochs = args.sample_epochs if args.sample_epochs == "auto" else int(args.sample_epochs)
    mnist, mnist_s = train("mnist", options, args, out / "mnist-vqvae", epochs=sample_epochs)
    prior = mnist.summary.get("prior") or {}
    mnist_test = mnist.load_data().test
    real = judge(classifier, mnist_test[: args.samples])
    for temperature in args.temperatures:
        t0 = time.perf_counter()
        images = latent.sample(mnist.model, args.samples, temperature=temperature, seed=args.seed)
        sample_s = time.perf_counter() - t0
        print(json.dumps({"benchmark": "vqvae_quality", "part": "samples", "data": "mnist", **common,
                          "samples": args.samples, "temperature": temperature, "judged": judge(classifier, images),
                          "real_test_images": real, "classifier_test_accuracy": round(classifier_accuracy, 4),
                          "epochs": mnist.summary.get("epochs"), "prior": prior, "train_seconds": round(mnist_s, 1),
                          "prior_share_of_run": round(prior.get("seconds", 0.0) / mnist_s, 3) if prior else None,
                          "sample_seconds": round(sample_s, 1), **env}), flush=True)
        if args.pictures and temperature == args.temperatures[0]:
            args.pictures.mkdir(parents=True, exist_ok=True)
            save_grid(images[:64], args.pictures / "vqvae-samples.png", nrow=8)
            pairs, per_row = paired_rows(mnist_test[:32], mnist.model.reconstruct(mnist_test[:32]))
            save_grid(pairs, args.pictures / "vqvae-reconstructions.png", nrow=per_row)


if __name__ == "__main__":
    main()
