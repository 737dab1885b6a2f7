"""Training throughput on MNIST against the plain loop of pytorch/examples' VAE, and
against the machine's own matrix-multiply limit.

Every path trains the same network (MLP 784-400-20-400-784, ReLU, Bernoulli/BCE, batch
128, Adam 1e-3, constant rate) on the same grey-level MNIST training images:

- ``reference``: the shape of pytorch/examples/vae/main.py, a DataLoader over a
  TensorDataset, shuffled, with the default (for-loop) Adam;
- ``vaekit-plain``: vaekit's trainer with every speed option off;
- ``vaekit`` (the defaults: fused Adam), ``vaekit-compile``, ``vaekit-bf16`` and
  ``vaekit-bf16-compile``: the trainer's speed options.

Two ceilings put the fractions in context (``--no-ceilings`` leaves them out):

- ``minimal``: the least an eager PyTorch training step can do for this network: one module
  with the posterior's two heads as one layer, the loss written on logits
  (``binary_cross_entropy_with_logits`` + the closed-form KL), fused Adam, batches gathered
  from one contiguous (N, 784) tensor, no per-step logging or host sync. No library's
  trainer does less per step;
- ``matrix_products_only``: the step's own matrix products alone (forward, the weights'
  gradients and the hidden layers' input gradients, at batch 128), with nothing between
  them: the part of a step that the limit measures.

Epochs alternate between the paths so machine noise hits all alike. The first epoch is
warm-up (compiled paths compile in it) and is left out for every path, the reference
included: a path's speed is its median epoch time over epochs 2..N, and
``speedup_vs_reference`` divides the reference's median over the same epochs by it (the
reference is exactly 1.0 against itself). The step's FLOPs are counted by torch's
FlopCounterMode on one real training step (matrix products, forward and backward). The
limit is measured interleaved with the paths: a short burst of 1024 x 1024 float32
(bfloat16) matrix products before the first path's epoch and after every path's epoch,
so each epoch lies between two samples taken under the same machine load; a path's
``fraction_of_flop_limit`` = its achieved matmul FLOP/s / the median, over its epochs, of
the mean of the two samples around each, and ``flop_limit_gflops`` gives the median and
spread of all samples over the same epochs. Each path's final
test negative ELBO (float32, one posterior sample, the same code for all) is printed
so a faster path can be seen to learn the same model. Last, the evaluation speed:
``vaekit.evaluate`` with k importance samples (default 1000) over the 10,000 test
images with the trained default-path model, timed. One JSON line.

    VAEKIT_DATA_DIR=../shared/data python benchmarks/train_speed.py --epochs 10
    # a short check, one core: two paths, 10,000 images, 3 epochs, no evaluation
    taskset -c 1 python benchmarks/train_speed.py --threads 1 --epochs 3 --examples 10000 \\
        --paths vaekit-plain vaekit --eval-k 0
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


class MinimalVAE(nn.Module):
    """The same network, written to do the least per step (the ``minimal`` ceiling)."""

    def __init__(self) -> None:
        super().__init__()
        self.enc, self.head = nn.Linear(784, HIDDEN), nn.Linear(HIDDEN, 2 * LATENT)
        self.dec, self.out = nn.Linear(LATENT, HIDDEN), nn.Linear(HIDDEN, 784)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Summed BCE (on logits) + KL, per example."""
        mu, logvar = self.head(F.relu(self.enc(x))).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        logits = self.out(F.relu(self.dec(z)))
        bce = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
        return (bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())) / len(x)


def minimal_epoch(model: MinimalVAE, opt: torch.optim.Optimizer, flat: torch.Tensor) -> float:
    """One epoch of the ``minimal`` loop over ``flat`` (N, 784), shuffled; returns its seconds."""
    started = time.perf_counter()
    order = torch.randperm(len(flat))
    for i in range(0, len(flat), BATCH):
        loss = model.loss(flat[order[i:i + BATCH]])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - started


@torch.no_grad()
def minimal_test_elbo(model: MinimalVAE, test: torch.Tensor) -> float:
    flat = test.reshape(len(test), -1)
    chunks = flat.split(1000)
    return sum(model.loss(chunk).item() * len(chunk) for chunk in chunks) / len(flat)


class MatrixProducts:
    """The matrix products of one training step of ``model``'s linear layers at batch ``BATCH``, alone."""

    def __init__(self, model: nn.Module) -> None:
        layers = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]
        self.weights = [torch.randn(out, inp) * 0.05 for inp, out in layers]
        self.inputs = [torch.randn(BATCH, inp) for inp, _ in layers]
        self.grads = [torch.randn(BATCH, out) for _, out in layers]
        # forward and weight gradient for every layer, input gradient for all but the first
        self.flops = sum(2 * BATCH * inp * out * (2 if i == 0 else 3) for i, (inp, out) in enumerate(layers))

    def step(self) -> None:
        for i, (w, x, g) in enumerate(zip(self.weights, self.inputs, self.grads, strict=True)):
            torch.mm(x, w.t())
            torch.mm(g.t(), x)
            if i:
                torch.mm(g, w)

    def sample(self, steps: int = 200) -> float:
        """FLOP/s of ``steps`` steps' matrix products."""
        started = time.perf_counter()
        for _ in range(steps):
            self.step()
        return self.flops * steps / (time.perf_counter() - started)


class MatmulSampler:
    """Short bursts of n x n matrix products in one precision: one FLOP/s sample of the
    machine's limit as it is right now (taken between the paths' epochs)."""

    def __init__(self, dtype: torch.dtype, n: int = 1024, seconds: float = 0.2) -> None:
        self.n, self.seconds = n, seconds
        self.a, self.b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        for _ in range(3):  # warm the kernels and caches once
            self.a @ self.b

    def sample(self) -> float:
        """The better of two bursts of about seconds / 2 (at least 2 products each)."""
        best = 0.0
        for _ in range(2):
            reps, started = 0, time.perf_counter()
            while reps < 2 or time.perf_counter() - started < self.seconds / 2:
                self.a @ self.b
                reps += 1
            best = max(best, 2 * self.n**3 * reps / (time.perf_counter() - started))
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


def spread(values: list[float]) -> dict[str, float]:
    """Median, min and max in GFLOP/s, and how many samples."""
    return {"median": round(statistics.median(values) / 1e9, 1), "min": round(min(values) / 1e9, 1),
            "max": round(max(values) / 1e9, 1), "samples": len(values)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Training throughput on MNIST: every vaekit path against the plain loop of "
                    "pytorch/examples' VAE and against the machine's matrix-multiply limit, measured "
                    "interleaved with the paths. Prints one JSON line.")
    parser.add_argument("--epochs", type=int, default=10,
                        help="epochs per path, alternating; the first is warm-up and left out for all")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads for every path, the reference included "
                             "(default: vaekit's threads policy, auto)")
    parser.add_argument("--paths", nargs="*", default=list(PATHS), choices=list(PATHS), help="vaekit paths to run")
    parser.add_argument("--no-ceilings", action="store_true",
                        help="leave out the minimal loop and the matrix-products-only figure")
    parser.add_argument("--eval-k", type=int, default=1000, help="importance samples, timed evaluation (0: skip)")
    parser.add_argument("--examples", type=int, default=None,
                        help="train on the first N training images only (a short check; default: all 60,000)")
    parser.add_argument("--limit-seconds", type=float, default=0.2,
                        help="seconds of matrix products per limit sample, one before the first path's "
                             "epoch and one after every path's epoch")
    args = parser.parse_args()
    if args.epochs < 1:
        parser.error("--epochs: at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)

    data = vaekit.data.load("mnist", val_fraction=0.0)
    train, test = data.train[:args.examples] if args.examples else data.train, data.test
    n = len(train)
    torch.manual_seed(0)
    ref_model = ReferenceVAE()
    ref_opt = torch.optim.Adam(ref_model.parameters(), lr=LR)
    ceilings = not args.no_ceilings
    if ceilings:
        torch.manual_seed(0)
        minimal = MinimalVAE()
        minimal_opt = torch.optim.Adam(minimal.parameters(), lr=LR, fused=True)
        flat = train.reshape(n, -1).contiguous()
        products = MatrixProducts(minimal)
        products.sample(20)  # warm the kernels
    loader = DataLoader(TensorDataset(train), batch_size=BATCH, shuffle=True)
    # With --threads, every trainer keeps that count (fit() would otherwise apply its own policy,
    # and the count it sets would also hold for the reference's epochs).
    options = {"threads": args.threads} if args.threads else {}
    trainers = {name: new_trainer({**PATHS[name], **options}) for name in args.paths}
    bundle = Dataset(train=train, info=data.info)

    flops_per_example = step_flops(new_model(), train[:BATCH]) / BATCH
    names = ["reference", *trainers, *(["minimal"] if ceilings else [])]
    precisions = {name: trainers[name].config.precision if name in trainers else "float32" for name in names}
    samplers = {p: MatmulSampler(getattr(torch, p), seconds=args.limit_seconds)
                for p in sorted(set(precisions.values()))}

    def sample_limits() -> dict[str, float]:
        return {p: sampler.sample() for p, sampler in samplers.items()}

    times: dict[str, list[float]] = {name: [] for name in names}
    threads: dict[str, list[int]] = {name: [] for name in names}
    # limit_around[name][epoch]: the mean of the samples just before and just after that epoch of the path.
    limit_around: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    samples: list[list[dict[str, float]]] = []  # per epoch, the samples taken in it
    products_fraction: list[float] = []  # per epoch: the matrix products alone, over the limit around them
    for epoch in range(args.epochs):
        before = sample_limits()
        samples.append([before])
        for name in names:
            if name == "reference":
                threads[name].append(torch.get_num_threads())
                times[name].append(reference_epoch(ref_model, ref_opt, loader))
            elif name == "minimal":
                threads[name].append(torch.get_num_threads())
                times[name].append(minimal_epoch(minimal, minimal_opt, flat))
            else:
                trainer = trainers[name]
                trainer.config.epochs = epoch + 1  # a second fit() continues the same run one more epoch
                times[name].append(trainer.fit(bundle)[-1]["seconds"])
                threads[name].append(trainer.threads)
            after = sample_limits()
            samples[-1].append(after)
            limit_around[name].append({p: (before[p] + after[p]) / 2 for p in samplers})
            before = after
        if ceilings:
            achieved_products = products.sample()
            after = sample_limits()
            samples[-1].append(after)
            products_fraction.append(achieved_products / ((before["float32"] + after["float32"]) / 2))

    # Epoch 1 is warm-up (compiled paths compile then): every figure uses the same epochs 2..N
    # (all epochs if there is only one), the reference's and the limit's included.
    kept = slice(1, None) if args.epochs > 1 else slice(None)
    kept_samples = [s for epoch_samples in samples[kept] for s in epoch_samples]
    limits = {p: spread([s[p] for s in kept_samples]) for p in samplers}

    test_elbo = {"reference": reference_test_elbo(ref_model, test)}
    if ceilings:
        test_elbo["minimal"] = minimal_test_elbo(minimal, test)
    test_elbo.update({name: trainer.evaluate(test)["elbo"] for name, trainer in trainers.items()})
    seconds = {name: statistics.median(epoch_times[kept]) for name, epoch_times in times.items()}
    paths = {}
    for name, epoch_times in times.items():
        precision = precisions[name]
        achieved = flops_per_example * n / seconds[name]
        limit = statistics.median(around[precision] for around in limit_around[name][kept])
        paths[name] = {
            "seconds_per_epoch": round(seconds[name], 3),
            "samples_per_s": round(n / seconds[name], 1),
            "speedup_vs_reference": round(seconds["reference"] / seconds[name], 3),
            "achieved_gflops": round(achieved / 1e9, 1),
            "flop_limit_gflops": round(limit / 1e9, 1),
            "fraction_of_flop_limit": round(achieved / limit, 3),
            "precision": precision,
            "threads": sorted(set(threads[name][kept])),
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
        "epochs_timed": len(times["reference"][kept]),
        "flop_limit_gflops": limits,
        "flop_limit_sample_seconds": args.limit_seconds,
        "train_step_flops_per_example": flops_per_example,
        "paths": paths,
        "matrix_products_only_fraction_of_flop_limit": (
            round(statistics.median(products_fraction[kept]), 3) if ceilings else None),
        "evaluation": evaluation,
        **environment(),
    }))


if __name__ == "__main__":
    main()
