"""Sample quality of the prior against the GMM sampler, judged by a CNN trained on real MNIST.

pythae found that sampling a Gaussian mixture fitted to the encoder means beats sampling
the prior; this measures it on vaekit. For each sampler, 10,000 decoded samples (mean
images) go to a CNN trained on the real MNIST training set; we report the fraction it
classifies with confidence > 0.9 and the entropy of the predicted class histogram
(ln 10 = 2.303 is all classes equally often). Real test images are judged too, as the
ceiling. Prints one JSON line per seed.

    VAEKIT_DATA_DIR=../shared/data python benchmarks/sample_quality.py [--run RUN] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import vaekit
from vaekit import latent

from common import environment  # benchmarks/ is on sys.path when a script here runs
from mnist_classifier import judge, trained_classifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="an MNIST run to judge (default: train one)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs when training the VAE here")
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--components", type=int, default=10, help="GMM components")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="sampling seeds")
    args = parser.parse_args()

    started = time.perf_counter()
    classifier, classifier_accuracy = trained_classifier()
    classifier_s = time.perf_counter() - started
    if args.run is None:
        out = Path(tempfile.mkdtemp(prefix="vaekit-sq-")) / "mnist"
        run = vaekit.train("mnist", {"latent_dim": args.latent_dim}, {"epochs": args.epochs}, out=out, progress=False)
    else:
        run = vaekit.open_run(args.run)
    real = judge(classifier, run.load_data().test[: args.samples])
    gmm = latent.gmm_sampler(run, n_components=args.components)
    for seed in args.seeds:
        row = {"benchmark": "sample_quality", "run": str(run.path), "latent_dim": run.model.config.latent_dim,
               "epochs": run.summary.get("epochs"), "test_elbo": run.summary.get("test", {}).get("elbo"),
               "samples": args.samples, "seed": seed, "classifier_test_accuracy": round(classifier_accuracy, 4),
               "classifier_seconds": round(classifier_s, 1), "real_test_images": real}
        for name, sampler in (("prior", "prior"), ("gmm", gmm)):
            images = latent.sample(run.model, args.samples, sampler=sampler, seed=seed)
            row[name] = judge(classifier, images)
        row.update(environment())
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
