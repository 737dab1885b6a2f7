"""MOSES metrics of MOSES's own sets, to check ``vaekit.chem.metrics`` against the published numbers.

    VAEKIT_DATA_DIR=../shared/data python benchmarks/moses_reference.py --limit 10000 --ref-limit 20000
    python benchmarks/moses_reference.py --limit 1000 --ref-limit 5000 --n-jobs 2

Prints one JSON line per row:

* ``train``: ``--limit`` molecules drawn at random from MOSES train, scored against
  ``--ref-limit`` random molecules of test and of test_scaffolds, novelty against the whole
  training set (MOSES's published "Train" row, computed there with the *full* sets).
* ``test-vs-test``: ``--limit`` test molecules against a disjoint random ``--ref-limit``
  test subsample: how far a perfect model's sample lands from the reference by chance alone.
* ``train-fingerprints`` (not in the default rows): SNN/Test, SNN/TestSF, IntDiv and IntDiv2
  of ``--limit`` random train molecules against the test sets (full unless ``--ref-limit``),
  fingerprints only (no ChemNet), so SNN can be checked against the full sets on a slow machine.

Subsampling biases some metrics against the published full-set values, so compare with care:
FCD is biased *upward* on small samples (covariances of 512 ChemNet activations estimated
from a few thousand molecules), Frag/Scaf drop because rare fragments and scaffolds are
missed, SNN drops because the nearest neighbour is looked for among fewer molecules, and
unique@10k is over fewer than 10k molecules. Validity, Filters and IntDiv are unbiased.

Published (MOSES README / Polykovskiy et al. 2020, Table "Train" row, full sets):
``PUBLISHED_TRAIN`` below. MOSES publishes no test-vs-test row.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from common import environment  # benchmarks/ is on sys.path when a script here runs

PUBLISHED_TRAIN = {
    "valid": 1.0, "unique@1k": 1.0, "unique@10k": 1.0, "FCD/Test": 0.008, "FCD/TestSF": 0.4755,
    "SNN/Test": 0.6419, "SNN/TestSF": 0.5859, "Frag/Test": 1.0, "Frag/TestSF": 0.9986, "Scaf/Test": 0.9907,
    "Scaf/TestSF": 0.0, "IntDiv": 0.8567, "IntDiv2": 0.8508, "Filters": 1.0, "Novelty": 1.0,
}


def sample(smiles: list[str], n: int | None, rng: np.random.Generator) -> list[str]:
    if n is None or n >= len(smiles):
        return list(smiles)
    return [smiles[i] for i in rng.choice(len(smiles), size=n, replace=False)]


def fingerprint_metrics(gen: list[str], test: list[str], scaffolds: list[str], device: str | None) -> dict:
    from vaekit.chem.metrics_similarity import aggregated_tanimoto, morgan_bits
    from vaekit.data.molecules.rdkit import to_mol

    def fps(smiles: list[str]) -> np.ndarray:
        return np.stack([morgan_bits(to_mol(s)) for s in smiles])

    g = fps(gen)
    return {
        "SNN/Test": float(aggregated_tanimoto(fps(test), g, device=device).mean()),
        "SNN/TestSF": float(aggregated_tanimoto(fps(scaffolds), g, device=device).mean()),
        "IntDiv": float(1 - aggregated_tanimoto(g, g, agg="mean", device=device).mean()),
        "IntDiv2": float(1 - aggregated_tanimoto(g, g, agg="mean", p=2, device=device).mean()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=10000, help="'generated' molecules per row")
    parser.add_argument("--ref-limit", type=int, default=None, help="reference molecules (default: the full sets)")
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--device", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", default="train,test-vs-test")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write cached reference statistics")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from vaekit.chem.metrics import moses_metrics
    from vaekit.chem.metrics_reference import reference_stats
    from vaekit.data.molecules.smiles_files import read_smiles

    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    train = read_smiles("moses:train").smiles
    test = read_smiles("moses:test").smiles
    scaffolds = read_smiles("moses:test_scaffolds").smiles
    read_s = time.perf_counter() - t0
    ref_test = sample(test, args.ref_limit, rng)
    ref_sf = sample(scaffolds, args.ref_limit, rng)

    t0 = time.perf_counter()
    rows = args.rows.split(",")
    if set(rows) - {"train-fingerprints"}:
        test_stats = reference_stats(ref_test, n_jobs=args.n_jobs, device=args.device, cache=not args.no_cache)
        sf_stats = reference_stats(ref_sf, n_jobs=args.n_jobs, device=args.device, cache=not args.no_cache)
    ref_s = time.perf_counter() - t0
    common = {"limit": args.limit, "ref_limit": args.ref_limit or "full", "seed": args.seed,
              "read_seconds": round(read_s, 2), "reference_seconds": round(ref_s, 2), **environment()}

    for row in rows:
        t0 = time.perf_counter()
        if row == "train":
            gen = sample(train, args.limit, rng)
            # MOSES's train file holds canonical SMILES; like MOSES, novelty compares with it as written
            metrics = moses_metrics(gen, test=test_stats, test_scaffolds=sf_stats, train=set(train),
                                    n_jobs=args.n_jobs, device=args.device)
            published = PUBLISHED_TRAIN
        elif row == "train-fingerprints":
            metrics = fingerprint_metrics(sample(train, args.limit, rng), ref_test, ref_sf, args.device)
            published = {k: PUBLISHED_TRAIN[k] for k in metrics}
        elif row == "test-vs-test":
            taken = set(ref_test)
            gen = sample([s for s in test if s not in taken], args.limit, rng)
            metrics = moses_metrics(gen, test=test_stats, n_jobs=args.n_jobs, device=args.device)
            published = None
        else:
            print(f"unknown row {row!r}", file=sys.stderr)
            return 2
        seconds = time.perf_counter() - t0
        print(json.dumps({"row": row, "metrics": {k: round(v, 4) for k, v in metrics.items()},
                          "published": published, "metric_seconds": round(seconds, 2), **common}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
