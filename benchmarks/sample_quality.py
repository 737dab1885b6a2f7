"""Sample quality of the prior, the GMM sampler and the latent diffusion sampler, judged by a CNN
trained on real MNIST.

pythae found that sampling a Gaussian mixture fitted to the encoder means beats sampling
the prior; latent diffusion (a flow-matching model of the codes) should beat both. For
each sampler, 10,000 decoded samples (mean images) go to a CNN trained on the real MNIST
training set; we report the fraction it classifies with confidence > 0.9, the entropy of
the predicted class histogram (ln 10 = 2.303 is all classes equally often) and the
Fréchet distance between the samples' and the real test images' penultimate CNN features
(FID's formula on a network trained here: lower is better, comparable within this
benchmark only). Real training images are judged too, as the ceiling. One JSON line per seed.

    VAEKIT_DATA_DIR=../shared/data python benchmarks/sample_quality.py [--run RUN] [--seeds 0 1 2]
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
from mnist_classifier import features, frechet_distance, judge, trained_classifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="an MNIST run to judge (default: train one)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs when training the VAE here")
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--components", type=int, default=10, help="GMM components")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="sampling seeds")
    parser.add_argument("--steps", type=int, default=32, help="diffusion sampler integration steps")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    started = time.perf_counter()
    classifier, classifier_accuracy = trained_classifier()
    classifier_s = time.perf_counter() - started
    if args.run is None:
        out = Path(tempfile.mkdtemp(prefix="vaekit-sq-")) / "mnist"
        run = vaekit.train("mnist", {"latent_dim": args.latent_dim}, {"epochs": args.epochs}, out=out, progress=False)
    else:
        run = vaekit.open_run(args.run)
    data = run.load_data()
    test_features = features(classifier, data.test[: args.samples])

    def scored(images: torch.Tensor) -> dict:
        return {**judge(classifier, images),
                "frechet_distance": round(frechet_distance(features(classifier, images), test_features), 2)}

    real = scored(data.train[: args.samples])
    gmm = latent.gmm_sampler(run, n_components=args.components)
    fitting = time.perf_counter()
    diffusion = latent.diffusion_sampler(run)
    diffusion.steps = args.steps
    diffusion_fit_s = time.perf_counter() - fitting
    for seed in args.seeds:
        row = {"benchmark": "sample_quality", "run": str(run.path), "latent_dim": run.model.config.latent_dim,
               "epochs": run.summary.get("epochs"), "test_elbo": run.summary.get("test", {}).get("elbo"),
               "samples": args.samples, "seed": seed, "classifier_test_accuracy": round(classifier_accuracy, 4),
               "classifier_seconds": round(classifier_s, 1), "real_train_images": real,
               "diffusion_fit_seconds": round(diffusion_fit_s, 1),
               "diffusion_train_loss": round(diffusion.train_loss_, 4), "diffusion_steps": args.steps}
        for name, sampler in (("prior", "prior"), ("gmm", gmm), ("diffusion", diffusion)):
            images = latent.sample(run.model, args.samples, sampler=sampler, seed=seed)
            row[name] = scored(images)
        row.update(environment())
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
