"""The Trainer: one loop for every model that speaks the protocol.

It batches in-memory tensors by index permutation (no per-sample DataLoader), applies
beta with a KL schedule and free bits, validates each epoch, keeps the best weights,
writes ``metrics.jsonl`` and an atomic checkpoint every epoch, and resumes from that
checkpoint to exactly the state an uninterrupted run would reach: the checkpoint holds
the model, optimizer, both random number generators and the early-stopping state.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from vaekit.data.bundle import Dataset
from vaekit.errors import VaekitError
from vaekit.models.base import Model
from vaekit.objectives.image_terms import ReconstructionTerm, build_recon_term
from vaekit.objectives.regularizers import LatentRegularizer, build_regularizer
from vaekit.objectives.schedules import KLSchedule
from vaekit.objectives.terms import ObjectiveTerm
from vaekit.serialization import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    METRICS_FILE,
    WEIGHTS_FILE,
    load_checkpoint,
    read_json,
    read_metrics,
    save_checkpoint,
    save_weights,
    write_metrics,
)
from vaekit.threads import step_work, use_threads
from vaekit.training import distributed
from vaekit.training.config import TrainConfig
from vaekit.training.devices import denormals_flushed, resolve_device
from vaekit.training.diagnosis import training_findings
from vaekit.training.param_groups import LR_FACTOR, parameter_groups
from vaekit.training.progress import TrainingProgress
from vaekit.training.tracking import Tracker, open_tracker


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold a Ctrl-C until the block ends, so the end-of-epoch writes (weights, metrics,
    checkpoint) always finish together and the run directory stays consistent."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            raise KeyboardInterrupt


class TrainingInterrupted(Exception):
    """Raised after Ctrl-C once the run directory is consistent (the last epoch's checkpoint)."""


@dataclass
class _State:
    epoch: int = 0  # epochs completed
    step: int = 0
    best_val: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped_early: bool = False


class Trainer:
    """Fits a model to a ``Dataset``; with a ``run_dir`` it checkpoints and logs there."""

    def __init__(self, model: Model, config: TrainConfig, run_dir: str | Path | None = None, *,
                 progress: bool = True) -> None:
        self.model = model
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.progress = progress
        self.device = resolve_device(config.device)
        self.config = config.for_device(self.device)  # precision "auto": what it means on this device
        self.schedule = KLSchedule.parse(config.kl_anneal, config.epochs) if config.epochs != "auto" else None
        self.history: list[dict[str, Any]] = []
        self.state = _State()
        self._optimizer: torch.optim.Optimizer | None = None
        self._generator = torch.Generator()
        self._train_module: torch.nn.Module = model
        self._regularizer: LatentRegularizer | None = None
        self._recon_term: ReconstructionTerm | None = None
        self._warned: set[tuple[str, str]] = set()  # (kind, cause) of the findings already warned of
        #: torch's compute threads in this run's training (``config.threads`` resolved by ``fit``).
        self.threads = torch.get_num_threads()
        #: The experiment trackers of ``config.loggers`` (opened by ``fit`` on the run directory).
        self.tracker = Tracker({})
        self._tracker_opened = False

    def _objective_terms(self) -> dict[str, ObjectiveTerm]:
        """The extra terms of this run's objective, by their checkpoint key."""
        terms = {"regularizer": self._regularizer, "recon_term": self._recon_term}
        return {name: term for name, term in terms.items() if term is not None}

    # -- schedule ---------------------------------------------------------------------
    def beta_at(self, epoch: float) -> float:
        """Effective beta (configured beta times the schedule's weight) at a fractional epoch."""
        if self.config.anneal_per == "epoch":
            epoch = math.floor(epoch)
        return self.config.beta * self.schedule.weight(epoch)

    def lr_at(self, step: int, total_steps: int) -> float:
        """Learning rate for optimizer step ``step`` (0-based) of ``total_steps``."""
        if self.config.lr_schedule == "cosine":
            return self.config.lr * 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
        return self.config.lr

    # -- evaluation -------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, Any]:
        """Mean recon, KL, negative ELBO and KL per dim over ``x`` (one posterior sample each).

        ``labels``: the examples' class labels, passed as ``cond`` to a conditional model
        (required there, ignored otherwise). Under torchrun each rank evaluates its share and
        the sums are added across ranks, so every rank gets the same figures (and makes the
        same early-stopping decision).
        """
        self.model.eval()
        labels = self._labels(labels, len(x), "evaluation")
        x = x[distributed.rank()::distributed.world_size()]
        if labels is not None:
            labels = labels[distributed.rank()::distributed.world_size()]
        sums = torch.zeros(3 + self.model.config.latent_dim, dtype=torch.float64)  # recon, KL, n, KL per dim
        for start in range(0, len(x), self.config.eval_batch_size):
            xb = x[start:start + self.config.eval_batch_size].to(self.device)
            cb = None if labels is None else labels[start:start + self.config.eval_batch_size].to(self.device)
            loss = self.model.loss(xb, cb)
            m = len(xb)
            sums[:3] += torch.tensor([loss.recon.item() * m, loss.kl.item() * m, m], dtype=torch.float64)
            sums[3:] += loss.kl_per_dim.double().cpu().flatten() * m
        sums = distributed.sum_across(sums)
        recon, kl, n = (sums[:3] / torch.tensor([sums[2], sums[2], 1.0])).tolist()
        return {"elbo": recon + kl, "recon": recon, "kl": kl,
                "loss": recon + self.config.beta * kl, "kl_per_dim": (sums[3:] / n).tolist()}

    def _labels(self, labels: torch.Tensor | None, n: int, split: str) -> torch.Tensor | None:
        """The labels a conditional model is trained or evaluated with (``None`` for an
        unconditional model), checked once per split here rather than at every step."""
        config = self.model.config
        if not config.conditional:
            return None
        k = config.num_classes
        if labels is None:
            raise VaekitError(f"{split} data: model '{config.model}' is conditional and needs class labels; "
                              "this data has none")
        if len(labels) != n:
            raise VaekitError(f"{split} data: {n} examples but {len(labels)} labels")
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= k):
            raise VaekitError(f"{split} labels: expected classes 0..{k - 1} (num_classes={k}), got values from "
                              f"{int(labels.min())} to {int(labels.max())}")
        return labels.long()

    # -- training ---------------------------------------------------------------------
    def fit(self, data: Dataset, *, resume: bool = False, checkpoint: dict[str, Any] | None = None
            ) -> list[dict[str, Any]]:
        """Train until ``config.epochs`` epochs are done (or early stopping); returns the metrics rows.

        The trainer's model ends with the last epoch's weights; the run directory's
        ``model.safetensors`` holds the best validation epoch's (what ``vaekit.load`` gives).
        The first call seeds everything and builds the optimizer (restoring both from the
        run's checkpoint with ``resume=True``); a later call on the same trainer continues
        the same run, so raising ``config.epochs`` and calling again trains further (with
        the cosine schedule the decay is then stretched to the new total). ``checkpoint``: the
        run's checkpoint when the caller has already read it (``pipeline.resume``), so it is
        read once.

        It sets torch's compute threads for the process by ``config.threads`` (``vaekit.threads``;
        logged as ``threads`` in each metrics row) and, with ``config.flush_denormal``, flushes
        denormal numbers to zero while it trains.
        """
        if self.config.epochs == "auto":  # counted from the data: TrainConfig.for_data
            self.config = self.config.for_data(len(data.train))
            self.schedule = KLSchedule.parse(self.config.kl_anneal, self.config.epochs)
        cfg = self.config
        self.threads = use_threads(cfg.threads, work=step_work(self.model, cfg.batch_size * cfg.loss_samples))
        if self._optimizer is None:
            distributed.init_from_env(self.device)
            torch.manual_seed(cfg.seed + distributed.rank())  # each rank its own reparameterization noise
            self._generator = torch.Generator().manual_seed(cfg.seed)  # the same permutation on every rank
            self.model.to(self.device)
            if distributed.active() and not self.model.distributed_training:
                raise VaekitError(f"model '{self.model.config.model}' does not support multi-process training yet "
                                  "(its codebook updates are per process); run it in one process")
            self._train_module = distributed.wrap(self.model)
            if cfg.compile:
                self._train_module = torch.compile(self._train_module)
            groups = parameter_groups(self.model, cfg.lr, cfg.likelihood_lr_factor)
            self._optimizer = torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                               fused=cfg.fused_optimizer or None)
            self._regularizer = build_regularizer(cfg.objective, tc_weight=cfg.tc_weight, capacity=cfg.capacity,
                                                  latent_dim=self.model.config.latent_dim,
                                                  dataset_size=len(data.train))
            if self._regularizer is not None and distributed.active() and cfg.objective == "factorvae":
                raise VaekitError("objective factorvae: its discriminator trains in one process; run it "
                                  "without torchrun")
            self._recon_term = build_recon_term(cfg.recon_term, data, seed=cfg.seed)
            for term in self._objective_terms().values():
                term.to(self.device)
            if resume:
                self._restore(self._optimizer, self._generator, checkpoint)
        optimizer, generator = self._optimizer, self._generator
        train = data.train.to(self.device)
        val = data.val.to(self.device) if data.val is not None and len(data.val) else None
        # A conditional model gets each batch's labels as cond, indexed with the same
        # permutation (and rank shard) as the examples.
        train_labels = self._labels(data.train_labels, len(train), "training")
        if train_labels is not None:
            train_labels = train_labels.to(self.device)
        val_labels = self._labels(data.val_labels, len(val), "validation") if val is not None else None
        if val_labels is not None:
            val_labels = val_labels.to(self.device)  # once, not per validation batch
        if not self._tracker_opened and self.run_dir is not None and distributed.is_main():
            # opened once every check that can refuse the start has passed: a refused start leaves
            # no tracker run open (an MLflow run RUNNING)
            config = read_json(self.run_dir / CONFIG_FILE) if (self.run_dir / CONFIG_FILE).is_file() else {
                "model": self.model.config.to_dict(), "train": cfg.to_dict()}
            self.tracker = open_tracker(cfg.loggers, self.run_dir, resume=resume, config=config)
            self._tracker_opened = True
        steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
        bar = TrainingProgress(cfg.epochs, steps_per_epoch, enabled=self.progress)
        try:
            with bar, denormals_flushed(cfg.flush_denormal):
                while self.state.epoch < cfg.epochs and not self.state.stopped_early:
                    row = self._train_epoch(data, train, train_labels, optimizer, generator, steps_per_epoch, bar)
                    if val is not None:
                        scores = self.evaluate(val, val_labels)
                        row.update({f"val_{k}": v for k, v in scores.items()})
                    self._end_epoch(row, optimizer, generator)
                    bar.end_epoch(row)
        except KeyboardInterrupt:
            self.tracker.close("KILLED")
            raise TrainingInterrupted(
                f"interrupted after {self.state.epoch} complete epoch(s); "
                + (f"resume with --resume ({self.run_dir})" if self.run_dir else "nothing saved (no run directory)")
            ) from None
        except BaseException:
            self.tracker.close("FAILED")
            raise
        self.model.eval()
        return self.history

    def close_tracking(self, summary: dict[str, Any] | None = None) -> None:
        """Log the run's test figures (``summary["test"]``, as ``test_elbo`` ...) at the last
        epoch and close the trackers; ``fit`` closes them itself when training fails."""
        if summary and "test" in summary:
            self.tracker.log_metrics(self.state.epoch, {f"test_{k}": v for k, v in summary["test"].items()})
        self.tracker.close()

    def _train_epoch(self, data: Dataset, train: torch.Tensor, labels: torch.Tensor | None,
                     optimizer: torch.optim.Optimizer, generator: torch.Generator, steps_per_epoch: int,
                     bar: TrainingProgress) -> dict[str, Any]:
        cfg, model, epoch = self.config, self.model, self.state.epoch
        model.train()
        started = time.perf_counter()
        x_epoch = data.train_epoch_view(generator).to(self.device) if data.info.dynamic_binarization else train
        order = data.train_order(generator, cfg.batch_size).to(self.device)  # sequences: bucketed by length
        totals = [0.0, 0.0, 0.0]  # objective, recon, KL: summed over this rank's examples
        extra_totals: dict[str, float] = {}
        seen = 0
        rank, world = distributed.rank(), distributed.world_size()
        terms = list(self._objective_terms().values())  # looked up once per epoch, not per step
        for i in range(steps_per_epoch):
            # batch_size is the global batch: under torchrun each rank takes every world-th example
            # of it, and DistributedDataParallel averages the ranks' gradients.
            idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size][rank::world]
            if len(idx) == 0:
                continue  # a last global batch smaller than the number of ranks
            beta = self.beta_at(epoch + i / steps_per_epoch)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bfloat16"):
                for term in terms:
                    term.epoch = epoch + i / steps_per_epoch
                loss = self._train_module(x_epoch[idx], None if labels is None else labels[idx], beta=beta,
                                          free_bits=cfg.free_bits, iw_samples=cfg.loss_samples,
                                          regularizer=self._regularizer, recon_term=self._recon_term,
                                          recon_weight=cfg.recon_weight)
            names = list(loss.extras)  # a family's own figures (a VQ-VAE's perplexity), logged per epoch
            total, recon, kl, *extras = torch.stack(  # one host sync a step
                [loss.total, loss.recon, loss.kl, *(loss.extras[k].float() for k in names)]).detach().tolist()
            if not math.isfinite(total):
                raise VaekitError(
                    f"training diverged at epoch {epoch + 1}, step {i + 1} (loss = {total}); "
                    + (f"the last good checkpoint (epoch {epoch}) is kept in {self.run_dir}; " if self.run_dir else "")
                    + "try a lower --lr or set --grad-clip"
                )
            if cfg.lr_schedule != "constant":
                rate = self.lr_at(self.state.step, cfg.epochs * steps_per_epoch)
                for group in optimizer.param_groups:
                    group["lr"] = rate * group.get(LR_FACTOR, 1.0)
            optimizer.zero_grad(set_to_none=True)
            loss.total.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            self.state.step += 1
            m = len(idx)
            seen += m
            for j, value in enumerate((total, recon, kl)):
                totals[j] += value * m
            for name, value in zip(names, extras, strict=True):
                extra_totals[name] = extra_totals.get(name, 0.0) + value * m
            bar.step(totals[0] / seen, totals[1] / seen, totals[2] / seen)
        summed = distributed.sum_across(torch.tensor([*totals, seen], dtype=torch.float64)).tolist()
        loss_mean, recon_mean, kl_mean = (t / summed[3] for t in summed[:3])
        return {
            "epoch": epoch + 1,
            "step": self.state.step,
            "beta": self.beta_at(epoch + 1 - 1e-9),
            "lr": optimizer.param_groups[0]["lr"],
            "train_loss": loss_mean,
            "train_recon": recon_mean,
            "train_kl": kl_mean,
            "train_elbo": recon_mean + kl_mean,
            **{f"train_{name}": value / seen for name, value in extra_totals.items()},  # this rank's share
            "seconds": time.perf_counter() - started,
            "threads": self.threads,
        }

    def _end_epoch(self, row: dict[str, Any], optimizer: torch.optim.Optimizer, generator: torch.Generator) -> None:
        st, cfg = self.state, self.config
        st.epoch += 1
        val_loss = row.get("val_loss", row["train_loss"])
        improved = val_loss < st.best_val
        if improved:
            st.best_val, st.best_epoch, st.bad_epochs = val_loss, st.epoch, 0
        else:
            st.bad_epochs += 1
        if cfg.early_stopping and st.bad_epochs >= cfg.early_stopping:
            st.stopped_early = True
            row["stopped_early"] = True
        self.history.append(row)
        self._warn_if_collapsed(row)
        rng_states = distributed.gather_objects(torch.get_rng_state())  # collective: every rank calls it
        if self.run_dir is None or not distributed.is_main():
            return
        with interrupts_deferred():
            self._write_epoch(improved, optimizer, generator, rng_states)
        self.tracker.log_metrics(st.epoch, row)  # after the run's own files: a tracker never stops the run

    def _write_epoch(self, improved: bool, optimizer: torch.optim.Optimizer, generator: torch.Generator,
                     rng_states: list[torch.Tensor]) -> None:
        st, cfg = self.state, self.config
        if improved:
            save_weights(self.model, self.run_dir / WEIGHTS_FILE)
        write_metrics(self.run_dir / METRICS_FILE, self.history)
        save_checkpoint(self.run_dir / CHECKPOINT_FILE, {
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "generator": generator.get_state(),
            "torch_rng": rng_states,  # one per rank
            "state": asdict(st),
            "train_config": cfg.to_dict(),
            **{name: term.state_dict() for name, term in self._objective_terms().items()},
        })

    def _warn_if_collapsed(self, row: dict[str, Any]) -> None:
        """Warn once of each collapse an epoch's figures show (every dimension's KL ~0, the
        KL at the free-bits floor, a weak hierarchy level: ``diagnosis.training_findings``),
        with the remedies that apply; ``vaekit evaluate`` gives the full diagnosis."""
        if "val_kl_per_dim" not in row or self.beta_at(self.state.epoch) == 0:
            return
        config = {"model": self.model.config.to_dict(), "train": self.config.to_dict()}
        for finding in training_findings(row, config):
            if (finding.kind, finding.cause) not in self._warned:
                self._warned.add((finding.kind, finding.cause))
                warnings.warn(f"epoch {self.state.epoch}: {finding}", stacklevel=2)

    def _restore(self, optimizer: torch.optim.Optimizer, generator: torch.Generator,
                 ckpt: dict[str, Any] | None = None) -> None:
        if self.run_dir is None:
            raise VaekitError("resume needs a run directory")
        if ckpt is None:
            ckpt = load_checkpoint(self.run_dir / CHECKPOINT_FILE)
        self.model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        generator.set_state(ckpt["generator"])
        for name, term in self._objective_terms().items():
            term.load_state_dict(ckpt.get(name, {}))
        states = ckpt["torch_rng"]
        if len(states) != distributed.world_size():
            raise VaekitError(f"{self.run_dir / CHECKPOINT_FILE}: written by {len(states)} process(es); resume it with "
                              f"the same number (now {distributed.world_size()})")
        torch.set_rng_state(states[distributed.rank()])
        self.state = _State(**ckpt["state"])
        self.history = [r for r in read_metrics(self.run_dir / METRICS_FILE) if r["epoch"] <= self.state.epoch]
