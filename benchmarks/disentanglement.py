"""Which objective disentangles the shapes factors? MIG and DCI per model and seed, same budget each.

Trains every model of ``MODELS`` (plain VAE, beta-VAE with beta 4, ...) on the ``shapes``
dataset (dSprites' factor grid re-rendered by ``vaekit.data.shapes``, so the figures are
indicative, not dSprites numbers) for each seed with the same network, data and epochs, and
scores each with ``vaekit.evaluation.disentanglement`` on ``--points`` grid points: MIG and DCI (and with
``--scores`` the beta-VAE and FactorVAE scores). Disentanglement depends strongly on the seed
(Locatello et al. 2019), so it prints one JSON line per model and seed, then one per model with
the median, min and max over seeds, and the environment. Training time is also given as a
ratio to the plain VAE's in the same run.

Quick check (minutes on one core; figures from so short a run say little):

    python benchmarks/disentanglement.py --limit 3000 --epochs 3 --seeds 0 1 --points 2000 --threads 1

The run behind the README's figures: batches of 256, since beta-TCVAE's minibatch-weighted
estimate of the total correlation improves with the batch (Chen et al. used 2,048 on
dSprites), one core per process so two processes share the models; then their run lines
merged into one summary:

    python benchmarks/disentanglement.py --limit 100000 --epochs 3 --batch-size 256 --lr 2e-3 \\
        --seeds 0 1 2 --models beta-tcvae vae --threads 1 > core0.jsonl   # taskset -c 0
    python benchmarks/disentanglement.py ... --models beta-vae factorvae > core1.jsonl   # taskset -c 1
    python benchmarks/disentanglement.py --summarize core0.jsonl core1.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from vaekit import data as vdata
from vaekit.evaluation import disentanglement as dis
from vaekit.models import build
from vaekit.training.runs import model_config_for
from vaekit.training.trainer import TrainConfig, Trainer

from common import environment  # benchmarks/ is on sys.path when a script here runs

#: The models compared: a name -> TrainConfig fields that differ from the shared settings.
#: The weights are the usual ones (beta 4, TC weight 6) and Kim & Mnih's gamma for FactorVAE.
MODELS: dict[str, dict[str, Any]] = {
    "vae": {"beta": 1.0},
    "beta-vae": {"beta": 4.0},
    "beta-tcvae": {"objective": "btcvae", "tc_weight": 6.0},
    "factorvae": {"objective": "factorvae", "tc_weight": 35.0},
}

#: The network every model shares: four stride-2 convs (64 -> 4 px) and one dense layer, the
#: usual dSprites encoder size; 10 latent dimensions as in Locatello et al. 2019.
NETWORK: dict[str, Any] = {"arch": "conv", "channels": [32, 32, 64, 64], "hidden": [256], "latent_dim": 10}


def train_model(bundle: vdata.Dataset, name: str, seed: int, args: argparse.Namespace, out: Path) -> tuple[Any, dict]:
    """One model trained on ``bundle``; returns it (last epoch's weights) and its training figures."""
    config = TrainConfig.from_dict({"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "seed": seed,
                                    "device": "cpu", **MODELS[name]})
    torch.manual_seed(seed)
    model = build(model_config_for(bundle.info, dict(NETWORK)))
    started = time.perf_counter()
    history = Trainer(model, config, out / f"{name}-{seed}", progress=False).fit(bundle)
    seconds = time.perf_counter() - started
    model.eval()
    last = history[-1]
    return model, {"train_s": seconds, "val_elbo": last.get("val_elbo"), "val_kl": last.get("val_kl")}


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summaries(rows: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One line per model: the median, min and max over its seeds of every score, and its
    median training time as a ratio to the plain VAE's (when the VAE ran alongside)."""
    times = [r["train_s"] for r in rows.get("vae", [])]
    reference = statistics.median(times) if times else None
    lines = []
    for name, done in rows.items():
        summary: dict[str, Any] = {"kind": "summary", "model": name, "seeds": [r["seed"] for r in done],
                                   **MODELS[name]}
        for key in ("mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "beta_vae_score",
                    "factor_vae_score"):
            if key in done[0]:
                summary[key] = spread([r[key] for r in done])
        summary["train_s"] = spread([r["train_s"] for r in done])
        if reference:
            summary["train_time_vs_vae"] = statistics.median(r["train_s"] for r in done) / reference
        lines.append(summary)
    return lines


def summarize_files(paths: list[Path]) -> None:
    """Merge the run lines of earlier invocations (one per core, say) into one summary per model."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for path in paths:
        for line in path.read_text().splitlines():
            record = json.loads(line) if line.startswith("{") else {}
            if record.get("kind") == "run":
                rows.setdefault(record["model"], []).append(record)
    if not rows:
        raise SystemExit(f"error: no run lines in {', '.join(map(str, paths))}")
    for summary in summaries(rows):
        print(json.dumps(summary), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="shapes", choices=["shapes", "shapes-small"])
    parser.add_argument("--limit", type=int, default=100_000, help="training examples (a random subset of the grid)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--val-examples", type=int, default=1000,
                        help="validate each epoch on the first N of the val split (shapes has 5,000)")
    parser.add_argument("--points", type=int, default=dis.DEFAULT_POINTS, help="grid points for MIG and DCI")
    parser.add_argument("--scores", action="store_true", help="also the beta-VAE and FactorVAE scores (slower)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, help="keep the runs' checkpoints here (default: a temporary folder)")
    parser.add_argument("--summarize", type=Path, nargs="+", metavar="JSONL",
                        help="train nothing: merge the run lines of these earlier outputs into one summary")
    args = parser.parse_args()
    if args.summarize:
        summarize_files(args.summarize)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    env = environment()
    started = time.perf_counter()
    bundle = vdata.load(args.data, limit=args.limit)
    if bundle.val is not None:  # validation only tracks the loss here; every model gets the same examples
        bundle.val = bundle.val[:args.val_examples]
        bundle.val_labels = None if bundle.val_labels is None else bundle.val_labels[:args.val_examples]
    load_s = time.perf_counter() - started
    sampler = dis.factor_sampler_for(args.data)
    out = args.out or Path(tempfile.mkdtemp(prefix="vaekit-disentanglement-"))
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in args.models}
    for seed in args.seeds:
        for name in args.models:
            model, trained = train_model(bundle, name, seed, args, out)
            t0 = time.perf_counter()
            scores = dis.evaluate_model(model, sampler, n=args.points, seed=seed, scores=args.scores)
            row = {"model": name, "seed": seed, **MODELS[name], **trained, "score_s": time.perf_counter() - t0,
                   **{k: v for k, v in scores.items() if k not in ("factor_names", "seconds")}}
            rows[name].append(row)
            print(json.dumps({"kind": "run", **row}), flush=True)
    for summary in summaries(rows):
        print(json.dumps(summary), flush=True)
    print(json.dumps({"kind": "setup", "data": args.data, "train_examples": len(bundle.train),
                      "val_examples": 0 if bundle.val is None else len(bundle.val), "epochs": args.epochs,
                      "batch_size": args.batch_size, "lr": args.lr, "network": NETWORK, "points": args.points,
                      "load_s": load_s, "total_s": time.perf_counter() - started, "environment": env}), flush=True)


if __name__ == "__main__":
    main()
