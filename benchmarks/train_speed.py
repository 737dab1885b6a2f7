"""Training throughput on MNIST: vaekit against the plain loop of pytorch/examples' VAE.

Both sides train the same network (MLP 784-400-20-400-784, ReLU, Bernoulli/BCE, batch
128, Adam 1e-3) on the same grey-level MNIST training images. The reference is the
shape of pytorch/examples/vae/main.py: a DataLoader over a TensorDataset, shuffled.
Epochs alternate between the two sides so machine noise hits both alike; the figure
is the ratio of median epoch times. Prints one JSON line.

    VAEKIT_DATA_DIR=../shared/data python benchmarks/train_speed.py --epochs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import vaekit
from vaekit.data.bundle import Dataset
from vaekit.models import VAE, VAEConfig
from vaekit.training import TrainConfig, Trainer

from common import environment  # benchmarks/ is on sys.path when a script here runs

BATCH, LR, HIDDEN, LATENT = 128, 1e-3, 400, 20


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


def reference_epoch(model: ReferenceVAE, opt: torch.optim.Optimizer, loader: DataLoader) -> tuple[float, float]:
    """One epoch of the reference loop; returns (seconds, mean loss per example)."""
    started, total, n = time.perf_counter(), 0.0, 0
    for (x,) in loader:
        opt.zero_grad()
        recon, mu, logvar = model(x)
        bce = F.binary_cross_entropy(recon, x.view(-1, 784), reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        loss = bce + kld
        loss.backward()
        opt.step()
        total, n = total + loss.item(), n + len(x)
    return time.perf_counter() - started, total / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per side (alternating)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    data = vaekit.data.load("mnist", val_fraction=0.0)
    train = data.train
    torch.manual_seed(0)
    ref_model = ReferenceVAE()
    ref_opt = torch.optim.Adam(ref_model.parameters(), lr=LR)
    loader = DataLoader(TensorDataset(train), batch_size=BATCH, shuffle=True)

    torch.manual_seed(0)
    # The reference's network and optimizer exactly: ReLU, constant learning rate.
    model = VAE(VAEConfig(input_shape=(1, 28, 28), latent_dim=LATENT, hidden=[HIDDEN], activation="relu"))
    bundle = Dataset(train=train, info=data.info)
    ref_times, ref_losses, our_times, our_losses = [], [], [], []
    trainer = Trainer(model, TrainConfig(epochs=1, batch_size=BATCH, lr=LR, lr_schedule="constant",
                                               device="cpu"), progress=False)
    for epoch in range(args.epochs):
        seconds, loss = reference_epoch(ref_model, ref_opt, loader)
        ref_times.append(seconds)
        ref_losses.append(loss)
        trainer.config.epochs = epoch + 1  # a second fit() continues the same run one more epoch
        row = trainer.fit(bundle)[-1]
        our_times.append(row["seconds"])
        our_losses.append(row["train_loss"])

    ref_s, our_s = statistics.median(ref_times), statistics.median(our_times)
    n = len(train)
    print(json.dumps({
        "benchmark": "train_speed",
        "dataset": "mnist",
        "examples_per_epoch": n,
        "architecture": f"mlp 784-{HIDDEN}-{LATENT}, batch {BATCH}, adam {LR}",
        "epochs_per_side": args.epochs,
        "vaekit_seconds_per_epoch": round(our_s, 3),
        "vaekit_samples_per_s": round(n / our_s, 1),
        "reference_seconds_per_epoch": round(ref_s, 3),
        "reference_samples_per_s": round(n / ref_s, 1),
        "speedup_vs_reference": round(ref_s / our_s, 3),
        "vaekit_train_loss_by_epoch": [round(v, 2) for v in our_losses],
        "reference_train_loss_by_epoch": [round(v, 2) for v in ref_losses],
        **environment(),
    }))


if __name__ == "__main__":
    main()
