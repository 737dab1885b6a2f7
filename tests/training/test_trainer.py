"""The trainer: exact resume, reproducibility, NaN guard, early stopping, Ctrl-C, run directories."""

import json

import pytest
import torch

import vaekit
from vaekit.errors import VaekitError
from vaekit.models import VAE, VAEConfig
from vaekit.serialization import load_checkpoint, load_weights
from vaekit.training.trainer import TrainConfig, Trainer

from interrupts import train_interrupted

SMALL_MODEL = {"latent_dim": 4, "hidden": [32]}
DATA = {"source": "digits", "limit": 200}


def _weights(run_dir):
    return vaekit.load(run_dir).state_dict()


def test_training_lowers_the_validation_loss(tiny_digits):
    torch.manual_seed(0)
    model = VAE(VAEConfig(input_shape=(1, 8, 8), latent_dim=4, hidden=[64]))
    trainer = Trainer(model, TrainConfig(epochs=8, batch_size=32, lr=3e-3), progress=False)
    before = trainer.evaluate(tiny_digits.val)["elbo"]
    history = trainer.fit(tiny_digits)
    assert history[-1]["val_elbo"] < before - 5
    assert {"epoch", "train_loss", "train_recon", "train_kl", "val_loss", "val_recon", "val_kl", "seconds"} <= set(
        history[-1])


def test_same_seed_same_run_and_other_seed_other_run(tmp_path):
    train = {"epochs": 2, "batch_size": 64, "seed": 3}
    vaekit.train(DATA, SMALL_MODEL, train, tmp_path / "a", progress=False)
    vaekit.train(DATA, SMALL_MODEL, train, tmp_path / "b", progress=False)
    vaekit.train(DATA, SMALL_MODEL, {**train, "seed": 4}, tmp_path / "c", progress=False)
    a, b, c = (_weights(tmp_path / n) for n in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize(("train", "cut_after"), [
    ({"epochs": 4, "batch_size": 64, "seed": 1, "kl_anneal": "linear:3"}, 2),
    ({"epochs": 3, "batch_size": 64, "lr_schedule": "cosine", "free_bits": 0.2, "kl_anneal": "cyclical:2"}, 1),
    ({"epochs": 3, "batch_size": 64, "objective": "factorvae"}, 1),  # the discriminator's state resumes too
])
def test_resume_after_ctrl_c_ends_exactly_where_the_uninterrupted_run_ends(tmp_path, monkeypatch, train, cut_after):
    full = vaekit.train(DATA, SMALL_MODEL, train, tmp_path / "full", progress=False)
    train_interrupted((DATA, SMALL_MODEL, train), tmp_path / "cut", monkeypatch, cut_after)
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["state"]["epoch"] == cut_after

    resumed = vaekit.resume(tmp_path / "cut", progress=False)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in full.metrics]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in resumed.metrics]
    assert [r["epoch"] for r in resumed.metrics] == list(range(1, train["epochs"] + 1))


def test_a_second_fit_continues_the_run_exactly(tiny_digits):
    def fresh():
        torch.manual_seed(0)
        return VAE(VAEConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=[16]))

    # a constant rate: with cosine, raising epochs stretches the decay (documented)
    once = Trainer(fresh(), TrainConfig(epochs=3, batch_size=64, lr_schedule="constant"), progress=False)
    once.fit(tiny_digits)
    twice = Trainer(fresh(), TrainConfig(epochs=1, batch_size=64, lr_schedule="constant"), progress=False)
    twice.fit(tiny_digits)
    twice.config.epochs = 3
    twice.fit(tiny_digits)
    a, b = once.model.state_dict(), twice.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_can_extend_a_finished_run_reading_its_checkpoint_once(tmp_path, monkeypatch):
    vaekit.train(DATA, SMALL_MODEL, {"epochs": 1, "batch_size": 64}, tmp_path / "r", progress=False)
    load, reads = torch.load, []

    def counted(path, *args, **kwargs):
        reads.append(str(path))
        return load(path, *args, **kwargs)

    monkeypatch.setattr(torch, "load", counted)
    run = vaekit.resume(tmp_path / "r", epochs=3, progress=False)
    assert reads.count(str(tmp_path / "r" / "checkpoint.pt")) == 1  # checked and restored from one read
    assert [r["epoch"] for r in run.metrics] == [1, 2, 3]
    assert json.loads((tmp_path / "r" / "config.json").read_text())["train"]["epochs"] == 3


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path, tiny_digits):
    model = VAE(VAEConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=[16]))
    trainer = Trainer(model, TrainConfig(epochs=3, batch_size=100), tmp_path, progress=False)
    original_loss, calls = model.loss, {"n": 0}

    def loss_turning_nan(x, *args, **kwargs):
        calls["n"] += model.training
        out = original_loss(x, *args, **kwargs)
        if model.training and calls["n"] > 4:  # 3 steps per epoch: NaN at the 2nd step of the 2nd epoch
            out.total = out.total * float("nan")
        return out

    model.loss = loss_turning_nan
    with pytest.raises(VaekitError, match=r"training diverged at epoch 2, step 2 \(loss = nan\); the last good "
                                          r"checkpoint \(epoch 1\) is kept in .*try a lower --lr"):
        trainer.fit(tiny_digits)
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["state"]["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())


def test_early_stopping_stops_after_patience_epochs_without_improvement(tiny_digits, monkeypatch):
    model = VAE(VAEConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=[16]))
    trainer = Trainer(model, TrainConfig(epochs=20, batch_size=100, early_stopping=2), progress=False)
    losses = iter([10.0, 9.0, 9.5, 9.7, 8.0, 7.0])
    monkeypatch.setattr(trainer, "evaluate", lambda x, labels=None: {"loss": next(losses), "elbo": 0.0})
    history = trainer.fit(tiny_digits)
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    assert history[-1]["stopped_early"] and trainer.state.best_epoch == 2


def test_the_saved_model_is_the_best_validation_epoch(tmp_path, tiny_digits, monkeypatch):
    model = VAE(VAEConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=[16]))
    trainer = Trainer(model, TrainConfig(epochs=3, batch_size=100), tmp_path, progress=False)
    losses = iter([5.0, 1.0, 3.0])
    snapshots = []
    original = Trainer._end_epoch

    def record(self, row, optimizer, generator):
        snapshots.append({k: v.clone() for k, v in self.model.state_dict().items()})
        original(self, row, optimizer, generator)

    monkeypatch.setattr(trainer, "evaluate", lambda x, labels=None: {"loss": next(losses)})
    monkeypatch.setattr(Trainer, "_end_epoch", record)
    trainer.fit(tiny_digits)
    saved = VAE(model.config)
    load_weights(saved, tmp_path / "model.safetensors")
    assert all(torch.equal(saved.state_dict()[k], snapshots[1][k]) for k in snapshots[1])
    assert not all(torch.equal(model.state_dict()[k], snapshots[1][k]) for k in snapshots[1])  # last epoch


def test_an_existing_run_directory_is_refused_and_left_untouched(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(VaekitError, match=r"run directory already exists \(use --overwrite .* or --resume"):
        vaekit.train(DATA, SMALL_MODEL, {"epochs": 1}, out, progress=False)
    assert (out / "notes.txt").read_text() == "mine" and len(list(out.iterdir())) == 1


def test_bad_data_is_rejected_before_the_run_directory_is_touched(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    recorded = json.dumps({"vaekit_version": "0.1.0", "model": {"model": "vae", **SMALL_MODEL}})  # a run's own
    (out / "config.json").write_text(recorded)
    with pytest.raises(VaekitError, match="unknown dataset"):
        vaekit.train({"source": "no-such-set"}, SMALL_MODEL, {"epochs": 1}, out, overwrite=True, progress=False)
    assert (out / "config.json").read_text() == recorded


@pytest.mark.parametrize(("field", "value", "message"), [
    ("epochs", 0, "epochs: expected at least 1, got 0"),
    ("lr", -1.0, "lr: expected more than 0, got -1.0"),
    ("anneal_per", "batch", "anneal_per: expected 'step' or 'epoch'"),
    ("kl_anneal", "linear", "--kl-anneal: cannot read 'linear'"),
    ("optimizer", "sgd", r"unknown field\(s\) \['optimizer'\]"),
])
def test_bad_training_settings_name_the_field(field, value, message):
    with pytest.raises(VaekitError, match=message):
        TrainConfig.from_dict({field: value})


def test_cuda_asked_for_without_a_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    model = VAE(VAEConfig(input_shape=(4,), latent_dim=2, hidden=[8]))
    with pytest.raises(VaekitError, match="torch sees no CUDA GPU"):
        Trainer(model, TrainConfig(device="cuda"))


def test_dynamic_binarization_trains_on_fresh_binary_draws(tiny_digits):
    tiny_digits.info.dynamic_binarization = True
    seen = []
    model = VAE(VAEConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=[16]))
    original_loss = model.loss

    def spy(x, *args, **kwargs):
        if model.training:
            seen.append(x.clone())
        return original_loss(x, *args, **kwargs)

    model.loss = spy
    Trainer(model, TrainConfig(epochs=2, batch_size=300), progress=False).fit(tiny_digits)
    assert all(((x == 0) | (x == 1)).all() for x in seen)
    assert not torch.equal(seen[0].sum(0), seen[1].sum(0))  # a new draw each epoch


def test_cosine_lr_schedule_decays_from_lr_to_zero():
    model = VAE(VAEConfig(input_shape=(4,), latent_dim=2, hidden=[8]))
    trainer = Trainer(model, TrainConfig(lr=0.01, lr_schedule="cosine"), progress=False)
    assert [trainer.lr_at(s, 100) for s in (0, 50, 100)] == pytest.approx([0.01, 0.005, 0.0])


def test_gradient_clipping_scales_every_step_to_the_clip_norm(tiny_digits, monkeypatch):
    """A clip far below the natural gradient norm: each step's gradient leaves clipping at that norm."""
    torch.manual_seed(0)
    model = VAE(VAEConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=[16]))
    norms = []
    original = torch.nn.utils.clip_grad_norm_

    def spy(params, max_norm):
        params = list(params)
        original(params, max_norm)
        norms.append(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])).item())

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    Trainer(model, TrainConfig(epochs=1, batch_size=100, grad_clip=0.01), progress=False).fit(tiny_digits)
    assert len(norms) == 3 and all(n == pytest.approx(0.01, rel=1e-3) for n in norms)


def test_the_iwae_objective_trains_and_reports_a_bound_tighter_than_the_elbo(tiny_digits):
    torch.manual_seed(0)
    model = VAE(VAEConfig(input_shape=(1, 8, 8), latent_dim=4, hidden=[64]))
    history = Trainer(model, TrainConfig(epochs=3, batch_size=64, objective="iwae", iw_samples=10),
                      progress=False).fit(tiny_digits)
    assert all(r["train_loss"] < r["train_elbo"] for r in history)  # -IWAE bound <= -ELBO
    assert history[-1]["val_elbo"] < history[0]["val_elbo"]


@pytest.mark.parametrize(("settings", "message"), [
    ({"objective": "vimco"}, "objective: expected elbo or iwae"),
    ({"objective": "iwae", "free_bits": 0.5}, "free_bits: applies to the ELBO objective only"),
    ({"iw_samples": 0}, "iw_samples: expected at least 1"),
])
def test_bad_objective_settings_are_named(settings, message):
    with pytest.raises(VaekitError, match=message):
        TrainConfig.from_dict(settings)


def test_the_trainer_warns_once_when_the_posterior_collapses(tiny_digits):
    torch.manual_seed(0)
    model = VAE(VAEConfig(input_shape=(1, 8, 8), latent_dim=4, hidden=[32]))
    with pytest.warns(UserWarning, match=r"posterior-collapse.*--free-bits 0.5") as caught:
        Trainer(model, TrainConfig(epochs=4, batch_size=100, beta=50.0), progress=False).fit(tiny_digits)
    assert sum("posterior-collapse" in str(w.message) for w in caught) == 1


def test_no_collapse_warning_for_a_healthy_model(tiny_digits, recwarn):
    torch.manual_seed(0)
    model = VAE(VAEConfig(input_shape=(1, 8, 8), latent_dim=4, hidden=[64]))
    Trainer(model, TrainConfig(epochs=6, batch_size=32, lr=3e-3), progress=False).fit(tiny_digits)
    assert not any("collapse" in str(w.message) for w in recwarn)


def test_ctrl_c_during_the_end_of_epoch_writes_waits_until_they_are_done():
    import os
    import signal

    from vaekit.training.trainer import interrupts_deferred

    finished = []
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the suite runs in a background job
    with pytest.raises(KeyboardInterrupt), interrupts_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        finished.append("writes")  # still runs: the interrupt is held
    assert finished == ["writes"]
    assert signal.getsignal(signal.SIGINT) is before  # the handler given back


def test_auto_epochs_count_updates_not_passes(tmp_path):
    """A small dataset trains until it has made the updates a large one gets in 20 epochs'
    time; the run records the count it chose, and an explicit count is kept as given."""
    from vaekit.training.config import MIN_EPOCHS, MIN_UPDATES, epochs_for

    assert epochs_for(54_000, 64) == MIN_EPOCHS  # MNIST: 20 epochs are already 17,000 updates
    assert epochs_for(360, 64) * 6 >= MIN_UPDATES > (epochs_for(360, 64) - 1) * 6
    assert TrainConfig(epochs=3).for_data(10).epochs == 3
    data = {"source": "digits", "limit": 60}
    train = {"batch_size": 100, "lr_schedule": "constant"}
    run = vaekit.train(data, {"latent_dim": 2, "hidden": [8]}, train, tmp_path / "r", progress=False)
    recorded = json.loads((tmp_path / "r" / "config.json").read_text())["train"]["epochs"]
    bundle = vaekit.data.load("digits", limit=60)
    assert recorded == run.summary["epochs"] == epochs_for(len(bundle.train), 100) > MIN_EPOCHS
    assert run.summary["train_examples"] == len(bundle.train)  # what the epochs were counted from
    trainer = Trainer(VAE(VAEConfig(input_shape=tuple(bundle.info.shape), latent_dim=2, hidden=[8])),
                      TrainConfig(batch_size=100, lr_schedule="constant"), progress=False)
    assert len(trainer.fit(bundle)) == recorded  # the trainer alone counts the same way
