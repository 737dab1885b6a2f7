"""The conditional VAE: the label feeds encoder and decoder, the trainer passes each batch's
labels, runs save and load it, and the CLI draws a chosen class; bad labels are one-line errors."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

import vaekit
from vaekit import latent
from vaekit.cli import main
from vaekit.data.bundle import Dataset
from vaekit.errors import VaekitError
from vaekit.models import CVAE, VAE, CVAEConfig, VAEConfig, build
from vaekit.training.trainer import TrainConfig, Trainer

QUICK = ["--epochs", "3", "--hidden", "32", "--limit", "300", "--quiet"]
# A few epochs on 300 digits leave little KL (the label explains most of a digit): the
# trainer's collapse warning is expected here and not what these tests are about.
pytestmark = pytest.mark.filterwarnings("ignore:epoch .*posterior-collapse:UserWarning")


@pytest.fixture(scope="module")
def trained(labeled_digits) -> CVAE:
    """A small MLP CVAE fitted for a few seconds: enough for the label to decide the digit."""
    torch.manual_seed(0)
    model = CVAE(CVAEConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=[128], num_classes=10))
    Trainer(model, TrainConfig(epochs=25, batch_size=64, lr=3e-3, seed=0), progress=False).fit(labeled_digits)
    return model.eval()


@pytest.fixture(scope="module")
def judge(labeled_digits) -> LogisticRegression:
    """A linear classifier of real 8x8 digits (about 95% test accuracy): does a decode look like its label?"""
    clf = LogisticRegression(max_iter=2000)
    clf.fit(labeled_digits.train.flatten(1).numpy(), labeled_digits.train_labels.numpy())
    return clf


def test_same_z_with_each_label_decodes_to_that_digit(trained, judge):
    """The decoder uses the label and not only z: one code per row, decoded as every class, is
    recognized as the class asked for; and changing the label changes the picture."""
    z = torch.randn(20, 2, generator=torch.Generator().manual_seed(1))
    grid = latent.restyle(trained, z)  # (20 codes, 10 classes, 1, 8, 8)
    predicted = judge.predict(grid.flatten(2).reshape(200, -1).numpy()).reshape(20, 10)
    assert (predicted == np.arange(10)[None, :]).mean() > 0.8
    # the same z under two labels differs more than two codes under one label
    across_labels = (grid[:, 1:] - grid[:, :1]).abs().mean()
    across_codes = (grid[1:] - grid[:1]).abs().mean()
    assert across_labels > across_codes


def test_sample_with_a_label_draws_that_class_and_without_one_cycles_the_classes(trained, judge):
    sevens = trained.sample(50, 7, generator=torch.Generator().manual_seed(0))
    assert (judge.predict(sevens.flatten(1).numpy()) == 7).mean() > 0.8
    cycled = latent.sample(trained, 30, seed=0)
    assert (judge.predict(cycled.flatten(1).numpy()) == np.arange(30) % 10).mean() > 0.8


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("condition", ["onehot", "embedding"])
def test_every_protocol_method_takes_labels_and_iw_samples_broadcast_them(arch, condition):
    torch.manual_seed(0)
    model = CVAE(CVAEConfig(input_shape=(1, 8, 8), arch=arch, latent_dim=3, hidden=[16], channels=[4, 8],
                            num_classes=4, condition=condition))
    x, y = torch.rand(5, 1, 8, 8), torch.tensor([0, 1, 2, 3, 0])
    assert model.reconstruct(x, y).shape == x.shape
    assert model.log_likelihood(x, y, k=6, chunk=4).shape == (5,)
    assert torch.isfinite(model.loss(x, y, iw_samples=3).total)
    z = torch.zeros(4, 3)
    by_label = model.decode(z, torch.arange(4)).mean
    assert not torch.allclose(by_label[0], by_label[1])
    soft = model.decode(z[:1], torch.tensor([[0.5, 0.5, 0.0, 0.0]])).mean  # class weights: a mixture
    assert soft.shape == (1, 1, 8, 8)
    loss = model.loss(x, y)
    loss.total.backward()
    label_grad = model.label_encoder.embedding.weight.grad if condition == "embedding" else \
        model.decoder.net[0].weight.grad[:, -4:] if arch == "mlp" else model.decoder.dense[0].weight.grad[:, -4:]
    assert label_grad.abs().sum() > 0  # the label reaches the networks


def test_missing_or_bad_labels_are_one_line_errors():
    model = CVAE(CVAEConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=[8], num_classes=3,
                            class_names=["a", "b", "c"])).eval()
    x = torch.rand(2, 1, 8, 8)
    with pytest.raises(VaekitError, match="conditional and needs class labels"):
        model.encode(x)
    with pytest.raises(VaekitError, match=r"labels must lie in 0\.\.2"):
        model.reconstruct(x, torch.tensor([0, 3]))
    assert model.config.class_index("b") == 1 and model.config.class_index("2") == 2
    with pytest.raises(VaekitError, match=r"label: 5 is out of range \(expected 0\.\.2 or a name \(a, b, c\)\)"):
        model.config.class_index(5)
    with pytest.raises(VaekitError, match="unknown class 'z'"):
        model.config.class_index("z")
    with pytest.raises(VaekitError, match="num_classes"):
        CVAEConfig(input_shape=(1, 8, 8), num_classes=0)
    with pytest.raises(VaekitError, match="condition"):
        CVAEConfig(input_shape=(1, 8, 8), num_classes=2, condition="film")


def test_trainer_refuses_a_conditional_model_on_unlabelled_data(tiny_digits):
    model = CVAE(CVAEConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=[8], num_classes=10))
    with pytest.raises(VaekitError, match="training data: model 'cvae' is conditional and needs class labels"):
        Trainer(model, TrainConfig(epochs=1), progress=False).fit(tiny_digits)
    with pytest.raises(VaekitError, match="needs class labels, but dataset 'digits' has none"):
        vaekit.training.runs.model_config_for(tiny_digits.info, {"model": "cvae"}, tiny_digits)


def test_unconditional_models_are_unchanged_by_labels(tiny_digits):
    """The trainer passes labels only to conditional models: a VAE ignores them."""
    torch.manual_seed(0)
    vae = VAE(VAEConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=[8]))
    assert vae.sample_cond(4) is None and vae.check_cond(torch.tensor([9])) is None
    x, labels = tiny_digits.train[:16], torch.arange(16) % 10
    torch.manual_seed(1)
    with_labels = vae.loss(x, labels).total
    torch.manual_seed(1)
    assert torch.equal(vae.loss(x).total, with_labels)


def test_save_load_round_trip_keeps_classes_and_outputs(trained, tmp_path, monkeypatch):
    monkeypatch.setattr(trained.config, "class_names", [str(i) for i in range(10)])  # undone after this test
    vaekit.save(trained, tmp_path / "m")
    loaded = vaekit.load(tmp_path / "m")
    assert isinstance(loaded, CVAE) and loaded.config == trained.config
    z, y = torch.randn(6, 2), torch.arange(6)
    assert torch.equal(loaded.decode(z, y).mean, trained.decode(z, y).mean)
    assert build(trained.config.to_dict()).config.num_classes == 10


@pytest.fixture(scope="module")
def cvae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cvae") / "run"
    assert main(["train", "digits", "--model", "cvae", "--latent-dim", "2", *QUICK, "--out", str(out)]) == 0
    return out


def test_cli_trains_a_cvae_whose_classes_come_from_the_data(cvae_run):
    run = vaekit.open_run(cvae_run)
    assert run.model.config.model == "cvae" and run.model.config.num_classes == 10
    assert run.model.config.class_names == [str(i) for i in range(10)]
    for name in ("model.safetensors", "samples.png", "reconstructions.png", "report.html", "gmm_sampler.safetensors"):
        assert (cvae_run / name).is_file(), name
    assert "test" in run.summary


def test_cli_sample_label_restyle_evaluate_and_latent_tools_on_a_cvae_run(cvae_run, tmp_path, capsys):
    for label in ("5", "7"):  # an index, which for digits is also the class name
        assert main(["sample", str(cvae_run), "--label", label, "-n", "4", "-o", str(tmp_path / f"{label}.png")]) == 0
    assert main(["sample", str(cvae_run), "--sampler", "gmm", "-n", "10", "-o", str(tmp_path / "g.png")]) == 0
    assert main(["restyle", str(cvae_run), "--from", "0,1", "-o", str(tmp_path / "r.png")]) == 0
    assert main(["restyle", str(cvae_run), "-n", "2", "-o", str(tmp_path / "p.png")]) == 0
    assert main(["interpolate", str(cvae_run), "--from", "0", "--to", "1", "--steps", "3",
                 "-o", str(tmp_path / "i.png")]) == 0
    assert main(["traverse", str(cvae_run), "--dims", "2", "--steps", "3", "-o", str(tmp_path / "t.png")]) == 0
    assert main(["reconstruct", str(cvae_run), "-n", "4", "-o", str(tmp_path / "rec.png")]) == 0
    assert main(["evaluate", str(cvae_run), "--k", "5", "--limit", "20", "--json"]) == 0
    for name in ("5.png", "7.png", "g.png", "r.png", "p.png", "i.png", "t.png", "rec.png"):
        assert (tmp_path / name).is_file(), name


@pytest.mark.parametrize("label, message", [("10", "label: 10 is out of range (expected 0..9 or a name"),
                                            ("seven", "label: unknown class 'seven'")])
def test_cli_bad_label_is_one_line_with_exit_2(cvae_run, label, message, capsys):
    assert main(["sample", str(cvae_run), "--label", label]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_cli_cvae_on_data_without_labels_and_label_on_a_vae_are_refused(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((50, 1, 8, 8), dtype=np.float32))
    assert main(["train", str(tmp_path / "x.npy"), "--model", "cvae", "--quiet", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "model 'cvae' is conditional and needs class labels, but dataset 'x' has none" in err
    assert not (tmp_path / "r").exists()
    vae = tmp_path / "vae"
    assert main(["train", "digits", "--epochs", "1", "--hidden", "8", "--limit", "100", "--quiet",
                 "--out", str(vae)]) == 0
    assert main(["sample", str(vae), "--label", "3"]) == 2
    assert "--label needs a conditional model (train with --model cvae)" in capsys.readouterr().err


def test_a_resumed_cvae_run_ends_exactly_where_the_uninterrupted_one_ends(labeled_digits, tmp_path):
    """Labels are indexed with the trainer's permutation: a resumed run sees the same (x, y) batches."""
    data = Dataset(train=labeled_digits.train[:300], val=labeled_digits.test[:100],
                   train_labels=labeled_digits.train_labels[:300], val_labels=labeled_digits.test_labels[:100],
                   info=labeled_digits.info)

    def trainer(epochs, run_dir):
        torch.manual_seed(0)
        model = CVAE(CVAEConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=[16], num_classes=10,
                                condition="embedding", embedding_dim=4))
        config = TrainConfig(epochs=epochs, batch_size=32, seed=3, lr_schedule="constant")  # cosine: set by epochs
        return Trainer(model, config, run_dir, progress=False)

    full = trainer(2, tmp_path / "full")
    full.fit(data)
    trainer(1, tmp_path / "cut").fit(data)
    resumed = trainer(2, tmp_path / "cut")
    resumed.fit(data, resume=True)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert full.history[-1]["val_elbo"] == resumed.history[-1]["val_elbo"]


def test_interpolating_two_labelled_examples_blends_their_labels_and_ends_at_their_reconstructions(
        trained, labeled_digits):
    x, y = labeled_digits.test, labeled_digits.test_labels
    j = int(torch.nonzero(y != y[0])[0])  # an example of another class
    pair, labels = torch.stack([x[0], x[j]]), torch.stack([y[0], y[j]])
    frames = latent.interpolate(trained, pair[0], pair[1], steps=5, cond=labels)
    ends = trained.reconstruct(pair, labels)
    assert torch.allclose(frames[0], ends[0], atol=1e-5) and torch.allclose(frames[-1], ends[1], atol=1e-5)
    path = latent.label_path(trained, 2, 5, 5)
    assert path.shape == (5, 10) and path[2, 2] == path[2, 5] == 0.5 and torch.allclose(path.sum(1), torch.ones(5))
    assert torch.equal(latent.label_path(trained, 3, 3, 4), torch.full((4,), 3))


@pytest.mark.slow
def test_two_processes_pass_each_rank_its_share_of_the_labels(tmp_path):
    """Under torchrun each rank indexes the labels with its shard of the global batch: a
    two-process CVAE run follows the one-process run with the same global batch."""
    import json
    import subprocess
    import sys

    args = ["digits", "--model", "cvae", "--latent-dim", "4", "--hidden", "64", "--limit", "400", "--batch-size",
            "40", "--lr-schedule", "constant", "--epochs", "2", "--quiet"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "vaekit",
           "train", *args, "--out", str(tmp_path / "two")]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert main(["train", *args, "--out", str(tmp_path / "one")]) == 0
    rows = [[json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
            for name in ("one", "two")]
    for a, b in zip(*rows, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=0.02)
        assert b["val_elbo"] == pytest.approx(a["val_elbo"], rel=0.02)


def test_codes_are_centred_per_class_and_old_runs_keep_uncentred_codes(trained, labeled_digits, tmp_path):
    """The default centres each class's codes (the running class means are saved with the
    weights); a config.json written before ``center_codes`` existed builds the old model."""
    assert trained.config.center_codes and "class_means" in trained.state_dict()
    codes = trained.encode(labeled_digits.train, labeled_digits.train_labels).mean.detach()
    class_means = torch.stack([codes[labeled_digits.train_labels == c].mean(0) for c in range(10)])
    assert class_means.norm(dim=1).max() < 0.25 * codes.std(0).norm()  # no class sits apart from the rest
    old = trained.config.to_dict()
    del old["center_codes"]
    model = build(old)
    assert not model.config.center_codes and "class_means" not in model.state_dict()
    assert build(trained.config.to_dict()).config.center_codes
    weights = {k: v for k, v in trained.state_dict().items() if k != "class_means"}
    model.load_state_dict(weights)  # an old run's weights fit the model its config builds
