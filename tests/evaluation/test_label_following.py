"""The label-following check: a conditional model whose samples do not look like the label asked
for is flagged, by a classifier fitted on the run's own labels, with the remedy; a healthy one is not."""

import pytest
import torch

from vaekit.cli import main
from vaekit.data.bundle import Dataset
from vaekit.evaluation.evaluate import evaluate_run
from vaekit.evaluation.labels import label_following
from vaekit.models import CVAE, VAE, CVAEConfig, VAEConfig
from vaekit.training.diagnosis import diagnose, label_ignored
from vaekit.training.runs import open_run
from vaekit.training.trainer import TrainConfig, Trainer

# A few epochs on 1,500 digits leave little KL (the label explains most of a digit): the
# trainer's collapse warnings are expected and not what these tests are about.
pytestmark = pytest.mark.filterwarnings("ignore:epoch .*collapse:UserWarning")


@pytest.fixture
def digits(labeled_digits) -> Dataset:
    return labeled_digits


def _cvae(data: Dataset, train_labels: torch.Tensor, **config) -> CVAE:
    torch.manual_seed(0)
    model = CVAE(CVAEConfig(input_shape=(1, 8, 8), latent_dim=4, hidden=[128], num_classes=10, **config))
    shown = Dataset(train=data.train, val=None, test=data.test, train_labels=train_labels,
                    test_labels=data.test_labels, info=data.info)
    Trainer(model, TrainConfig(epochs=15, batch_size=64, lr=3e-3, seed=0), progress=False).fit(shown)
    return model.eval()


def _figures(model: CVAE, data: Dataset) -> dict:
    return label_following(model, data.train, data.train_labels, data.test, data.test_labels)


def test_a_cvae_that_follows_its_label_is_not_flagged(digits):
    model = _cvae(digits, digits.train_labels)
    figures = _figures(model, digits)
    assert figures["label_classifier_accuracy"] > 0.85 and figures["label_samples"] == 1000
    assert figures["label_following"] > 0.8 * figures["label_classifier_accuracy"]
    assert label_ignored(figures, model.config.to_dict()) is None
    assert not [f for f in diagnose({"kl": 3.0, "active_units": 4, **figures}, {"model": model.config.to_dict()})
                if f.cause == "label-ignored"]


def test_a_cvae_trained_with_its_label_zeroed_is_flagged_with_the_remedy(digits):
    model = _cvae(digits, torch.zeros_like(digits.train_labels), center_codes=False)  # never saw a label
    figures = _figures(model, digits)  # judged against the true labels
    assert figures["label_following"] < 0.5 * figures["label_classifier_accuracy"]
    finding = label_ignored(figures, model.config.to_dict())
    assert finding is not None and finding.kind == "partial-collapse" and finding.cause == "label-ignored"
    assert f"{figures['label_following']:.0%} of samples" in finding.seen
    assert finding.remedies[0].startswith("--center-codes ")  # the run did not centre its codes
    found = diagnose({"kl": 3.0, "active_units": 4, **figures}, {"model": model.config.to_dict()})
    assert [f.cause for f in found] == ["label-ignored"]


def test_the_remedy_already_in_use_is_not_suggested():
    finding = label_ignored({"label_following": 0.3, "label_classifier_accuracy": 0.9},
                            {"model": "cvae", "center_codes": True, "latent_dim": 16})
    assert finding is not None and not any(r.startswith("--center-codes") for r in finding.remedies)
    assert any(r.startswith("--latent-dim 4") for r in finding.remedies)
    assert label_ignored({"label_following": 0.8, "label_classifier_accuracy": 0.9}, {}) is None  # within 0.8 x


def test_an_unconditional_model_gets_no_label_figures(digits):
    model = VAE(VAEConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=[16]))
    assert label_following(model, digits.train, digits.train_labels, digits.test, digits.test_labels) is None


def test_training_warns_once_when_the_samples_do_not_follow_their_label(tmp_path, capsys):
    assert main(["train", "digits", "--model", "cvae", "--epochs", "1", "--hidden", "32", "--limit", "300",
                 "--quiet", "--out", str(tmp_path / "short")]) == 0  # one epoch: the label is not learnt yet
    warned = [line for line in capsys.readouterr().err.splitlines() if "samples drawn for a label" in line]
    assert len(warned) == 1 and warned[0].startswith("warning: ") and "label-ignored" not in warned[0]
    assert "Try: --latent-dim" in warned[0]  # the remedies, as flags (center_codes is on already)


def test_evaluate_reports_label_following_of_a_conditional_run(tmp_path, capsys):
    out = tmp_path / "cvae"
    assert main(["train", "digits", "--model", "cvae", "--epochs", "15", "--latent-dim", "4", "--hidden", "128",
                 "--lr", "3e-3", "--batch-size", "64", "--quiet", "--out", str(out)]) == 0
    assert "for a label" not in capsys.readouterr().err  # training did not warn
    metrics = evaluate_run(open_run(out), k=2, limit=200)
    assert metrics["label_samples"] == 1000 and metrics["label_classifier_accuracy"] > 0.85
    assert metrics["label_following"] > 0.8 * metrics["label_classifier_accuracy"]
    assert not any("label" in f for f in metrics["findings"])


def test_the_label_check_is_scored_on_test_else_validation_else_skipped(digits):
    from vaekit.evaluation.labels import labelled_held_out

    x, y = digits.train[:20], digits.train_labels[:20]
    info = digits.info
    assert labelled_held_out(Dataset(train=x, train_labels=y, val=x, val_labels=y, test=x, test_labels=y,
                                     info=info)) == "test"
    assert labelled_held_out(Dataset(train=x, train_labels=y, val=x, val_labels=y, info=info)) == "val"
    assert labelled_held_out(Dataset(train=x, train_labels=y, test=x, info=info)) is None  # unlabelled test
