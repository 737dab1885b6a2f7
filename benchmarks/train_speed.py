"""Training throughput on MNIST against the plain loop of pytorch/examples' VAE, and
against the machine's own matrix-multiply limit.

Every path trains the same network (MLP 784-400-20-400-784, ReLU, Bernoulli/BCE, batch
128, Adam 1e-3, constant rate) on the same grey-level MNIST training images:

- ``reference``: the shape of pytorch/examples/vae/main.py, a DataLoader over a
  TensorDataset, shuffled, with the default (for-loop) Adam;
- ``vaekit-plain``: vaekit's trainer with every speed option off;
- ``vaekit`` (the defaults: fused Adam), ``vaekit-compile``, ``vaekit-bf16`` and
  ``vaekit-bf16-compile``: the trainer's speed options.

Epochs alternate between the paths so machine noise hits all alike; a path's speed is
its median epoch time. The step's FLOPs are counted by torch's FlopCounterMode on one
real training step (matrix products, forward and backward), and the limit is the best
of several large float32 (bfloat16) matrix products measured in the same run, so
``fraction_of_flop_limit`` = achieved matmul FLOP/s / that limit. Each path's final
test negative ELBO (float32, one posterior sample, the same code for all) is printed
so a faster path can be seen to learn the same model. Last, the evaluation speed:
``vaekit.evaluate`` with k importance samples (default 1000) over the 10,000 test
images with the trained default-path model, timed. One JSON line.

    VAEKIT_DATA_DIR=../shared/data python benchmarks/train_speed.py --epochs 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

import vaekit
from vaekit.data.bundle import Dataset
from vaekit.evaluation.evaluate import evaluate
from vaekit.models import VAE, VAEConfig
from vaekit.training.trainer import TrainConfig, Trainer

from common import environment  # benchmarks/ is on sys.path when a script here runs

BATCH, LR, HIDDEN, LATENT = 128, 1e-3, 400, 20
PATHS: dict[str, dict[str, Any]] = {
    "vaekit-plain": {"fused_optimizer": False},
    "vaekit": {},
    "vaekit-compile": {"compile": True},
    "vaekit-bf16": {"precision": "bfloat16"},
    "vaekit-bf16-compile": {"precision": "bfloat16", "compile": True},
}


class ReferenceVAE(nn.Module):
    """The network of pytorch/examples' VAE, written the way that example writes it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, HIDDEN), nn.Linear(HIDDEN, LATENT), nn.Linear(HIDDEN, LATENT)
        self.fc3, self.fc4 = nn.Linear(LATENT, HIDDEN), nn.Linear(HIDDEN, 784)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


def reference_loss(model: ReferenceVAE, x: torch.Tensor) -> torch.Tensor:
    """pytorch/examples' loss: summed BCE + KL over the batch."""
    recon, mu, logvar = model(x)
    bce = F.binary_cross_entropy(recon, x.view(-1, 784), reduction="sum")
    return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def reference_epoch(model: ReferenceVAE, opt: torch.optim.Optimizer, loader: DataLoader) -> float:
    """One epoch of the reference loop; returns its seconds."""
    started = time.perf_counter()
    for (x,) in loader:
        opt.zero_grad()
        loss = reference_loss(model, x)
        loss.backward()
        opt.step()
    return time.perf_counter() - started


@torch.no_grad()
def reference_test_elbo(model: ReferenceVAE, test: torch.Tensor) -> float:
    return sum(reference_loss(model, test[i:i + 1000]).item() for i in range(0, len(test), 1000)) / len(test)


def matmul_limit(dtype: torch.dtype, n: int = 1024, seconds: float = 1.0) -> float:
    """Best FLOP/s of n x n matrix products over a few timed bursts: the machine's limit."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(5):
        reps, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds / 5:
            a @ b
            reps += 1
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - started))
    return best


def step_flops(model: VAE, x: torch.Tensor) -> int:
    """Matrix-product FLOPs of one training step (forward + backward), counted by torch."""
    with FlopCounterMode(display=False) as counter:
        model.loss(x).total.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def new_model() -> VAE:
    """The reference's network exactly (ReLU), with the same initial weights for every path."""
    torch.manual_seed(0)
    return VAE(VAEConfig(input_shape=(1, 28, 28), latent_dim=LATENT, hidden=[HIDDEN], activation="relu"))


def new_trainer(options: dict[str, Any]) -> Trainer:
    config = TrainConfig(epochs=1, batch_size=BATCH, lr=LR, lr_schedule="constant", device="cpu", **options)
    return Trainer(new_model(), config, progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="epochs per path (alternating)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--paths", nargs="*", default=list(PATHS), choices=list(PATHS), help="vaekit paths to run")
    parser.add_argument("--eval-k", type=int, default=1000, help="importance samples, timed evaluation (0: skip)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    data = vaekit.data.load("mnist", val_fraction=0.0)
    train, test = data.train, data.test
    n = len(train)
    torch.manual_seed(0)
    ref_model = ReferenceVAE()
    ref_opt = torch.optim.Adam(ref_model.parameters(), lr=LR)
    loader = DataLoader(TensorDataset(train), batch_size=BATCH, shuffle=True)
    trainers = {name: new_trainer(PATHS[name]) for name in args.paths}
    bundle = Dataset(train=train, info=data.info)

    limits = {"float32": matmul_limit(torch.float32), "bfloat16": matmul_limit(torch.bfloat16)}
    flops_per_example = step_flops(new_model(), train[:BATCH]) / BATCH

    times: dict[str, list[float]] = {name: [] for name in ["reference", *trainers]}
    for epoch in range(args.epochs):
        times["reference"].append(reference_epoch(ref_model, ref_opt, loader))
        for name, trainer in trainers.items():
            trainer.config.epochs = epoch + 1  # a second fit() continues the same run one more epoch
            times[name].append(trainer.fit(bundle)[-1]["seconds"])

    test_elbo = {"reference": reference_test_elbo(ref_model, test)}
    test_elbo.update({name: trainer.evaluate(test)["elbo"] for name, trainer in trainers.items()})
    ref_s = statistics.median(times["reference"])
    paths = {}
    for name, epoch_times in times.items():
        # Epoch 1 is warm-up (compiled paths compile then): the median is over the rest.
        seconds = statistics.median(epoch_times[1:] or epoch_times)
        precision = "float32" if name == "reference" else trainers[name].config.precision
        achieved = flops_per_example * n / seconds
        paths[name] = {
            "seconds_per_epoch": round(seconds, 3),
            "samples_per_s": round(n / seconds, 1),
            "speedup_vs_reference": round(ref_s / seconds, 3),
            "achieved_gflops": round(achieved / 1e9, 1),
            "fraction_of_flop_limit": round(achieved / limits[precision], 3),
            "precision": precision,
            "test_neg_elbo": round(test_elbo[name], 3),
            "epoch_seconds": [round(t, 2) for t in epoch_times],
        }
    evaluation = {}
    if args.eval_k and "vaekit" in trainers:
        started = time.perf_counter()
        figures = evaluate(trainers["vaekit"].model, test, k=args.eval_k)
        evaluation = {"k": args.eval_k, "examples": len(test), "seconds": round(time.perf_counter() - started, 1),
                      "nll": round(figures["nll"], 3), "neg_elbo": round(figures["elbo"], 3)}
    print(json.dumps({
        "benchmark": "train_speed",
        "dataset": "mnist",
        "examples_per_epoch": n,
        "architecture": f"mlp 784-{HIDDEN}-{LATENT}, relu, batch {BATCH}, adam {LR}",
        "epochs_per_path": args.epochs,
        "flop_limit_gflops": {k: round(v / 1e9, 1) for k, v in limits.items()},
        "train_step_flops_per_example": flops_per_example,
        "paths": paths,
        "evaluation": evaluation,
        **environment(),
    }))


if __name__ == "__main__":
    main()
