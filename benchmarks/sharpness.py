"""Sharper reconstructions: BCE alone against BCE + perceptual and BCE + SSIM on Fashion-MNIST.

Three VAEs with the same architecture, seed and epochs differ only in ``recon_term``. On
the test set each reports the sharpness ratio (mean finite-difference gradient magnitude
of the reconstructions over that of the inputs: 1 is as sharp as the data, a blurred
reconstruction is below), the mean squared error and the SSIM of reconstructions (decoder
means at the posterior means). The target: the ratio closer to 1 than BCE alone's,
with an MSE no more than 10% worse. One JSON line per variant, then a side-by-side
picture (inputs, then each variant's reconstructions, a row each) at ``--picture``.

    VAEKIT_DATA_DIR=../shared/data python benchmarks/sharpness.py --epochs 10 --threads 1
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

import vaekit
from vaekit.evaluation.evaluate import gradient_magnitude
from vaekit.objectives.image_terms import ssim

from common import environment  # benchmarks/ is on sys.path when a script here runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--arch", default="mlp")
    parser.add_argument("--ssim-weight", type=float, default=1.0)
    parser.add_argument("--perceptual-weight", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", nargs="+", default=["bce", "bce+perceptual", "bce+ssim"],
                        choices=["bce", "bce+perceptual", "bce+ssim"], help="bce is always trained (the reference)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--picture", type=Path, default=Path("docs/images/sharpness.png"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    root = Path(tempfile.mkdtemp(prefix="vaekit-sharp-"))
    variants = {"bce": {}, "bce+perceptual": {"recon_term": "perceptual", "recon_weight": args.perceptual_weight},
                "bce+ssim": {"recon_term": "ssim", "recon_weight": args.ssim_weight}}
    variants = {name: extra for name, extra in variants.items() if name == "bce" or name in args.variants}
    rows, pictures = {}, []
    for name, extra in variants.items():
        started = time.perf_counter()
        run = vaekit.train(args.data, {"latent_dim": args.latent_dim, "arch": args.arch},
                           {"epochs": args.epochs, "seed": args.seed, **extra}, root / name.replace("+", "_"),
                           progress=False)
        test = run.load_data().test
        recon = torch.cat([run.model.reconstruct(test[i:i + 1000]) for i in range(0, len(test), 1000)]).clamp(0, 1)
        rows[name] = {
            "benchmark": "sharpness", "dataset": args.data, "variant": name, **extra,
            "sharpness_ratio": round(float(gradient_magnitude(recon).mean() / gradient_magnitude(test).mean()), 4),
            "mse": round(float((recon - test).pow(2).mean()), 5),
            "ssim": round(float(ssim(recon, test).mean()), 4),
            "test_elbo": round(run.summary["test"]["elbo"], 2), "epochs": args.epochs,
            "train_minutes": round((time.perf_counter() - started) / 60, 2),
        }
        if not pictures:
            pictures.append(test[:12])
        pictures.append(recon[:12])
    base = rows["bce"]
    for name, row in rows.items():
        row["closer_to_1_than_bce"] = abs(1 - row["sharpness_ratio"]) < abs(1 - base["sharpness_ratio"])
        row["mse_vs_bce"] = round(row["mse"] / base["mse"], 4)
        row["goal_met"] = name != "bce" and row["closer_to_1_than_bce"] and row["mse_vs_bce"] <= 1.10
        print(json.dumps({**row, **environment()}), flush=True)
    from vaekit.plotting.pictures import save_grid

    args.picture.parent.mkdir(parents=True, exist_ok=True)
    save_grid(torch.cat(pictures), args.picture, nrow=12)
    print(json.dumps({"benchmark": "sharpness", "picture": str(args.picture),
                      "rows": ["inputs", *variants]}), flush=True)


if __name__ == "__main__":
    main()
