"""Training length on small image sets: ``epochs="auto"`` against the former fixed 20 epochs.

    VAEKIT_DATA_DIR=../shared/data taskset -c 1 python benchmarks/training_length.py --seeds 0 1 2

For each dataset and seed, trains the default model twice the way a newcomer would (no
settings but the seed and one thread): once with ``epochs=20``, once with the default
``auto`` (at least 20 epochs and 1,000 optimizer updates). Prints one JSON line per run: the
epochs and updates made, the test reconstructions' mean squared error as a share of the
mean training image's (1.0: no better than drawing the average face; the goal is at most
0.70), the findings of ``vaekit.evaluate`` (collapse, blur) and the training seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time

import torch

import vaekit
from vaekit.evaluation.evaluate import evaluate_run

from common import environment  # benchmarks/ is on sys.path when a script here runs

DATASETS = ("olivetti-faces", "frey-faces", "digits")


def run(name: str, epochs: int | str, seed: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="vaekit-length-") as tmp:
        start = time.perf_counter()
        trained = vaekit.train(name, {}, {"epochs": epochs, "seed": seed, "threads": 1}, out=f"{tmp}/run",
                               progress=False)
        seconds = time.perf_counter() - start
        model, bundle = vaekit.load(trained.path), vaekit.data.load(name)
        with torch.no_grad():
            recon = model.decode(model.encode(bundle.test).mean).mean
        mse = float(((recon - bundle.test) ** 2).mean())
        mean_image = float(((bundle.train.mean(0, keepdim=True) - bundle.test) ** 2).mean())
        report = evaluate_run(vaekit.open_run(trained.path), k=100)
        done = trained.summary["epochs"]
        return {"benchmark": "training_length", "dataset": name, "seed": seed, "epochs_setting": epochs,
                "epochs": done, "updates": done * math.ceil(len(bundle.train) / trained.config["train"]["batch_size"]),
                "mse_vs_mean_image": round(mse / mean_image, 3),
                "findings": [finding.split(":")[0] for finding in report["findings"]],
                "train_seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(json.dumps({"benchmark": "training_length", **environment()}), flush=True)
    for name in args.datasets:
        for seed in args.seeds:
            for epochs in (20, "auto"):
                print(json.dumps(run(name, epochs, seed)), flush=True)


if __name__ == "__main__":
    main()
