"""vaekit beside its peers on the pytorch/examples VAE, on a quiet machine and beside a
competing CPU-bound load.

Each contender trains the same network (MLP 784-400-20-400-784, ReLU, Bernoulli/BCE,
batch 128, Adam 1e-3, constant rate) on the 60,000 grey-level MNIST training images (or
the first ``--examples``), in a process of its own, with its own default threads (what a
user gets):

- ``vaekit``: ``vaekit.Trainer`` with its defaults (``threads="auto"``, fused Adam);
- ``vaekit-1thread``: the same with ``threads=1``, what the default should not be slower than
  under load;
- ``plain``: the loop of pytorch/examples/vae/main.py (DataLoader over a TensorDataset,
  the for-loop Adam), torch's default threads;
- ``pythae``: pythae 0.1.2's ``TrainingPipeline`` (its documented usage) with its
  ``VAE`` and ``Encoder_VAE_MLP``-style networks of the same sizes; left out, and said so,
  when pythae is not installed (``pip install pythae==0.1.2``).

The epochs are interleaved: the coordinator tells each worker in turn to train one epoch,
so machine noise hits all alike. Two conditions, in this order: ``quiet`` (nothing started
by the benchmark; the machine's own load is recorded: the 1-minute load average and the
cores other work kept busy over a second, ``busy_cores``, near 0 on a quiet machine) and
``loaded`` (one CPU-bound process per core, started before and stopped after). A
contender's speed is its median epoch after the first (warm-up). One JSON line per condition: samples/s per contender,
the ratios to ``plain`` (and ``pythae``), each one's test loss (nats per image, one
posterior sample; they must learn the same thing) and the threads each used.

    VAEKIT_DATA_DIR=../shared/data python benchmarks/peers.py --epochs 3
    python benchmarks/peers.py --epochs 3 --examples 15000   # shorter: a stalled loop takes minutes an epoch
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

import vaekit
from train_speed import BATCH, HIDDEN, LATENT, LR, ReferenceVAE, new_trainer, reference_epoch, reference_test_elbo
from vaekit.data.bundle import Dataset
from vaekit.threads import busy_cores

from common import environment  # benchmarks/ is on sys.path when a script here runs

CONTENDERS = ("vaekit", "vaekit-1thread", "plain", "pythae")
HERE = Path(__file__).resolve()


# -- workers: one process per contender, driven by lines on stdin ------------------------
class VaekitWorker:
    def __init__(self, data: Any, **options: Any) -> None:
        self.bundle = Dataset(train=data.train, info=data.info)
        self.test = data.test
        self.trainer = new_trainer(options)  # the defaults (threads auto, fused Adam) but ``options``
        self.epochs = 0

    def epoch(self) -> dict[str, Any]:
        self.epochs += 1
        self.trainer.config.epochs = self.epochs  # a second fit() continues the same run one more epoch
        row = self.trainer.fit(self.bundle)[-1]
        return {"seconds": row["seconds"], "threads": row["threads"]}

    def test_loss(self) -> float:
        return self.trainer.evaluate(self.test)["elbo"]


class PlainWorker:
    def __init__(self, data: Any) -> None:
        torch.manual_seed(0)
        self.model = ReferenceVAE()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=LR)
        self.loader = DataLoader(TensorDataset(data.train), batch_size=BATCH, shuffle=True)
        self.test = data.test

    def epoch(self) -> dict[str, Any]:
        self.model.train()
        return {"seconds": reference_epoch(self.model, self.opt, self.loader), "threads": torch.get_num_threads()}

    def test_loss(self) -> float:
        self.model.eval()
        return reference_test_elbo(self.model, self.test)


class PythaeWorker:
    """pythae's TrainingPipeline over all the epochs; a callback holds each epoch until the
    coordinator says go, and reports its seconds."""

    def __init__(self, data: Any) -> None:
        self.data, self.test, self.epochs = data, data.test, 0
        self.thread: Any = None
        self.model: Any = None

    def _start(self, epochs: int) -> None:
        import threading

        from pythae.models import VAE, VAEConfig
        from pythae.models.base.base_utils import ModelOutput
        from pythae.models.nn import BaseDecoder, BaseEncoder
        from pythae.pipelines import TrainingPipeline
        from pythae.trainers import BaseTrainerConfig
        from pythae.trainers.training_callbacks import TrainingCallback

        class Encoder(BaseEncoder):
            def __init__(self) -> None:
                super().__init__()
                self.fc1 = torch.nn.Linear(784, HIDDEN)
                self.mu, self.logvar = torch.nn.Linear(HIDDEN, LATENT), torch.nn.Linear(HIDDEN, LATENT)

            def forward(self, x: torch.Tensor) -> Any:
                h = torch.relu(self.fc1(x.reshape(len(x), -1)))
                return ModelOutput(embedding=self.mu(h), log_covariance=self.logvar(h))

        class Decoder(BaseDecoder):
            def __init__(self) -> None:
                super().__init__()
                self.fc3, self.fc4 = torch.nn.Linear(LATENT, HIDDEN), torch.nn.Linear(HIDDEN, 784)

            def forward(self, z: torch.Tensor) -> Any:
                out = torch.sigmoid(self.fc4(torch.relu(self.fc3(z))))
                return ModelOutput(reconstruction=out.reshape(len(z), 1, 28, 28))

        gate, done = threading.Semaphore(0), []
        self.gate, self.done = gate, done

        class Turns(TrainingCallback):
            def on_epoch_begin(self, training_config: Any, **kwargs: Any) -> None:
                gate.acquire()
                self.started = time.perf_counter()

            def on_epoch_end(self, training_config: Any, **kwargs: Any) -> None:
                done.append(time.perf_counter() - self.started)

        torch.manual_seed(0)
        config = VAEConfig(input_dim=(1, 28, 28), latent_dim=LATENT, reconstruction_loss="bce")
        self.model = VAE(config, encoder=Encoder(), decoder=Decoder())
        trainer_config = BaseTrainerConfig(output_dir=tempfile.mkdtemp(), num_epochs=epochs, learning_rate=LR,
                                           per_device_train_batch_size=BATCH, no_cuda=True, steps_saving=None,
                                           optimizer_cls="Adam")
        pipeline = TrainingPipeline(training_config=trainer_config, model=self.model)
        train = self.data.train.numpy()
        self.thread = threading.Thread(target=pipeline, kwargs={"train_data": train, "callbacks": [Turns()]},
                                       daemon=True)
        self.thread.start()

    def epoch(self, total: int) -> dict[str, Any]:
        if self.thread is None:
            self._start(total)
        self.epochs += 1
        self.gate.release()
        while len(self.done) < self.epochs:
            time.sleep(0.005)
        return {"seconds": self.done[-1], "threads": torch.get_num_threads()}

    def test_loss(self) -> float:
        self.thread.join()
        self.model.eval()
        with torch.no_grad():
            return sum(self.model({"data": self.test[i:i + 1000]}).loss.item() * len(self.test[i:i + 1000])
                       for i in range(0, len(self.test), 1000)) / len(self.test)


def worker(name: str, total_epochs: int, examples: int) -> None:
    data = vaekit.data.load("mnist", val_fraction=0.0)
    data.train = data.train[:examples]
    runner = {"vaekit": VaekitWorker, "vaekit-1thread": lambda d: VaekitWorker(d, threads=1), "plain": PlainWorker,
              "pythae": PythaeWorker}[name](data)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "epoch":
            reply = runner.epoch(total_epochs) if name == "pythae" else runner.epoch()
        elif command == "test":
            reply = {"test_loss": runner.test_loss()}
        else:
            return
        print(json.dumps(reply), flush=True)


# -- the coordinator ----------------------------------------------------------------------
def _ask(process: subprocess.Popen, command: str) -> dict[str, Any]:
    process.stdin.write(command + "\n")
    process.stdin.flush()
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"a worker stopped: {process.args}")
    return json.loads(line)


def _spinners() -> list[subprocess.Popen]:
    """One CPU-bound process per core this process may use: the competing load."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(len(os.sched_getaffinity(0)))]


def condition(name: str, contenders: list[str], epochs: int, examples: int, verbose: bool) -> dict[str, Any]:
    command = [sys.executable, str(HERE), "--epochs", str(epochs), "--examples", str(examples), "--worker"]
    workers = {c: subprocess.Popen([*command, c], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                   stderr=None if verbose else subprocess.DEVNULL) for c in contenders}
    spinners: list[subprocess.Popen] = []
    try:
        for process in workers.values():
            json.loads(process.stdout.readline())  # the data loaded
        if name == "loaded":
            spinners = _spinners()
            time.sleep(1.0)
        load_before, busy_before = os.getloadavg()[0], busy_cores(window=1.0)
        epochs_done: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
        for _ in range(epochs):
            for c, process in workers.items():
                epochs_done[c].append(_ask(process, "epoch"))
        load_after, busy_after = os.getloadavg()[0], busy_cores(window=1.0)
        for p in spinners:
            p.kill()
        losses = {c: _ask(process, "test")["test_loss"] for c, process in workers.items()}
    finally:
        for p in spinners:
            p.kill()
        for process in workers.values():
            process.kill()
    n = examples
    speed = {c: n / statistics.median([e["seconds"] for e in done[1:] or done]) for c, done in epochs_done.items()}
    result: dict[str, Any] = {
        "benchmark": "peers", "condition": name,
        "competing_processes": len(os.sched_getaffinity(0)) if name == "loaded" else 0,
        "load1": {"start": round(load_before, 2), "end": round(load_after, 2)},
        # cores other work kept busy over a second (vaekit.threads.busy_cores): what makes "quiet" quiet
        "busy_cores": {"start": round(busy_before, 2), "end": round(busy_after, 2)},
        "samples_per_s": {c: round(v, 1) for c, v in speed.items()},
        "threads": {c: sorted({e["threads"] for e in done}) for c, done in epochs_done.items()},
        "epoch_seconds": {c: [round(e["seconds"], 2) for e in done] for c, done in epochs_done.items()},
        "test_loss": {c: round(v, 2) for c, v in losses.items()},
        "ratios": {f"vaekit/{c}": round(speed["vaekit"] / speed[c], 3) for c in speed if c != "vaekit"},
        "architecture": f"mlp 784-{HIDDEN}-{LATENT}, relu, bce, batch {BATCH}, adam {LR}",
        "epochs": epochs, "examples_per_epoch": examples,
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per contender and condition (interleaved)")
    parser.add_argument("--conditions", nargs="*", default=["quiet", "loaded"], choices=["quiet", "loaded"])
    parser.add_argument("--examples", type=int, default=60000, help="MNIST training images per epoch (the first N)")
    parser.add_argument("--verbose", action="store_true", help="show the workers' own output (pythae's progress bars)")
    parser.add_argument("--worker", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.epochs, args.examples)
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # a timeout still stops the load and the workers
    contenders = [c for c in CONTENDERS if c != "pythae" or find_spec("pythae") is not None]
    versions = {"pythae": _version("pythae")} if "pythae" in contenders else {"pythae": "not installed: left out"}
    quiet_speed: dict[str, float] = {}
    for name in args.conditions:
        result = condition(name, contenders, args.epochs, args.examples, args.verbose)
        if name == "quiet":
            quiet_speed = result["samples_per_s"]
        elif quiet_speed:
            result["kept_of_quiet"] = {c: round(v / quiet_speed[c], 3) for c, v in result["samples_per_s"].items()}
        print(json.dumps({**result, **versions, **environment()}), flush=True)


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


if __name__ == "__main__":
    main()
