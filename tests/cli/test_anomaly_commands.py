"""`vaekit anomaly fit` / `score` end to end on tiny image folders and tables, and their errors."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from vaekit.anomaly import load_detector
from vaekit.cli import main

QUICK = ["--epochs", "2", "--latent-dim", "2", "--set", "hidden=32", "--quiet"]


@pytest.fixture(scope="module")
def digit_folders(tmp_path_factory):
    """Zeros to train on; a test folder of 20 zeros and 10 ones with a label file (1 = a one)."""
    root = tmp_path_factory.mktemp("digits")
    digits = load_digits()
    images = (digits.images / 16 * 255).astype(np.uint8)
    zeros, ones = images[digits.target == 0], images[digits.target == 1]
    (root / "train").mkdir()
    (root / "test").mkdir()
    for i, img in enumerate(zeros[:100]):
        Image.fromarray(img).save(root / "train" / f"{i:03d}.png")
    test = [*zeros[100:120], *ones[:10]]
    for i, img in enumerate(test):
        Image.fromarray(img).save(root / "test" / f"{i:03d}.png")
    (root / "labels.txt").write_text("label\n" + "\n".join(["0"] * 20 + ["1"] * 10) + "\n")
    return root


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    root = tmp_path_factory.mktemp("tables")
    rng = np.random.default_rng(0)
    train = rng.normal(size=(200, 4))
    test = np.vstack([rng.normal(size=(40, 4)), 6 + rng.normal(size=(10, 4))])
    labels = ["normal"] * 40 + ["anomaly"] * 10

    def write(name, header, rows):
        with open(root / name, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows)

    write("train.csv", ["a", "b", "c", "d", "kind"], [[*r, "normal"] for r in train])
    write("test.csv", ["d", "c", "b", "a", "kind"], [[*r[::-1], lab] for r, lab in zip(test, labels, strict=True)])
    write("other.csv", ["a", "b", "x", "kind"], [[*r[:3], lab] for r, lab in zip(test, labels, strict=True)])
    return root


def test_fit_and_score_an_image_folder(digit_folders, tmp_path, capsys):
    run = tmp_path / "det"
    assert main(["anomaly", "fit", str(digit_folders / "train"), "--out", str(run), *QUICK,
                 "--contamination", "0.05"]) == 0
    assert "threshold" in capsys.readouterr().out
    assert load_detector(run).input_shape_ == (1, 8, 8)
    out = tmp_path / "scored"
    assert main(["anomaly", "score", str(run), str(digit_folders / "test"), "--labels",
                 str(digit_folders / "labels.txt"), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["examples"] == 30 and summary["anomalies_labelled"] == 10
    assert {p.name for p in out.iterdir()} == {"scores.csv", "histogram.png", "most_anomalous.png", "roc_pr.png"}
    with open(out / "scores.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["file"] for r in rows[:2]] == ["000.png", "001.png"] and rows[25]["label"] == "1"
    threshold = summary["threshold"]
    assert all(int(r["anomaly"]) == (float(r["score"]) > threshold) for r in rows)
    from sklearn.metrics import roc_auc_score  # the summary's AUROC is that of the written scores

    labels, scores = [int(r["label"]) for r in rows], [float(r["score"]) for r in rows]
    assert summary["auroc"] == pytest.approx(roc_auc_score(labels, scores))
    assert Image.open(out / "most_anomalous.png").width >= 256


def test_fit_and_score_tables_with_a_label_column(tables, tmp_path, capsys):
    run = tmp_path / "det"
    assert main(["anomaly", "fit", str(tables / "train.csv"), "--out", str(run), *QUICK,
                 "--label-column", "kind", "--target-fpr", "0.1", "--score", "elbo+knn", "--set", "n_neighbors=3",
                 "--set", "trim=0.1", "--json"]) == 0
    fitted = json.loads(capsys.readouterr().out)
    assert fitted["threshold_source"] == "target_fpr" and fitted["examples"] == 200
    assert fitted["score"] == "elbo+knn" and load_detector(run).settings_.n_neighbors == 3
    assert load_detector(run).settings_.trim == 0.1
    assert fitted["fits"] == load_detector(run).n_fits_ > 1  # trimmed refits, saved with the detector
    assert fitted["scoring_fits"] == len(load_detector(run).fits_) == fitted["fits"] - 1  # the refits, averaged
    model = load_detector(run).model_.config
    assert model.likelihood == "student-t" and model.obs_df == 10.0  # the tables' auto decoder
    # columns in another order are matched by name; the label column is not a feature
    assert main(["anomaly", "score", str(run), str(tables / "test.csv"), "--labels", "kind", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["auroc"] > 0.9 and summary["anomalies_labelled"] == 10
    assert (run / "scores-test" / "roc_pr.png").is_file()
    assert not (run / "scores-test" / "most_anomalous.png").exists()
    assert main(["info", str(run)]) == 0  # the detector directory is a vaekit run too
    assert main(["anomaly", "fit", str(tables / "train.csv"), "--out", str(tmp_path / "het"), *QUICK,
                 "--label-column", "kind", "--set", "heteroscedastic=yes", "--set", "min_obs_std=0.2",
                 "--set", "likelihood=gaussian"]) == 0
    het = load_detector(tmp_path / "het").model_.config
    assert het.heteroscedastic and het.min_obs_std == 0.2 and het.likelihood == "gaussian"
    assert main(["anomaly", "fit", str(tables / "train.csv"), "--out", str(tmp_path / "t5"), *QUICK,
                 "--label-column", "kind", "--set", "obs_df=5", "--set", "heteroscedastic=yes"]) == 0
    t5 = load_detector(tmp_path / "t5").model_.config
    assert t5.likelihood == "student-t" and t5.obs_df == 5.0 and t5.heteroscedastic  # the preset's
    assert main(["anomaly", "fit", str(tables / "train.csv"), "--out", str(tmp_path / "std"), *QUICK,
                 "--label-column", "kind", "--set", "standardize=standard"]) == 0
    assert load_detector(tmp_path / "std").settings_.standardize == "standard"
    assert load_detector(run).settings_.standardize == "robust"  # the default for tables


def test_errors_are_one_line_without_traceback(tables, digit_folders, tmp_path, capsys):
    run = tmp_path / "det"
    assert main(["anomaly", "fit", str(tables / "train.csv"), "--out", str(run), *QUICK,
                 "--label-column", "kind"]) == 0
    capsys.readouterr()

    def fails(*args):
        assert main(["anomaly", *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
        return err.replace("\n", "")

    # as a user runs it: exit status 2, one line, no traceback
    r = subprocess.run([sys.executable, "-m", "vaekit", "anomaly", "score", str(run), str(tables / "other.csv")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert "columns differ from the training data's: missing ['c', 'd'], extra ['x']" in r.stderr

    (tmp_path / "bad_labels.txt").write_text("\n".join(["0"] * 49 + ["cat"]))
    assert "row 50: label 'cat' is not 0 / 1" in fails("score", str(run), str(tables / "test.csv"), "--labels",
                                                     str(tmp_path / "bad_labels.txt"))
    (tmp_path / "one_label.txt").write_text("1\n")
    assert "1 labels for 50 examples" in fails("score", str(run), str(tables / "test.csv"), "--labels",
                                               str(tmp_path / "one_label.txt"))
    assert "examples have shape (1, 8, 8), but the detector was fitted on examples of shape (4,)" in fails(
        "score", str(run), str(digit_folders / "test"))
    assert "already exists" in fails("fit", str(tables / "train.csv"), "--out", str(run))
    assert "contamination: expected a number in (0, 0.5]" in fails(
        "fit", str(tables / "train.csv"), "--out", str(tmp_path / "new"), "--contamination", "0.9")
    assert not (tmp_path / "new").exists()
    for option, value, message in [
        ("--set", "trim=half", "--set trim: expected a number, got 'half'"),
        ("--epochs", "ten", "--epochs: expected auto or a positive integer, got 'ten'"),
        ("--set", "trim_rounds=0", "trim_rounds: expected a positive integer, got 0"),
        ("--latent-dim", "two", "--latent-dim: expected auto or a positive integer, got 'two'"),
        ("--set", "beta=-1", "beta: expected a number >= 0, got -1.0"),
        ("--set", "learn_obs_std=maybe", "--set learn_obs_std: expected yes or no, got 'maybe'"),
        ("--set", "likelihood=poisson", "likelihood: expected auto, bernoulli, gaussian, student-t, got 'poisson'"),
        ("--set", "standardize=minmax", "standardize: expected robust, standard, none, True or False, "
                                        "got 'minmax'"),
        ("--set", "ensemble=mean", "ensemble: expected refits, last, all, got 'mean'"),
        ("--set", "width=3", "--set: expected FIELD=VALUE with FIELD one of latent_dim, hidden"),
        ("--preset", "audio", "preset: expected auto, images, tables, got 'audio'"),
    ]:
        assert message in fails("fit", str(tables / "train.csv"), "--out", str(tmp_path / "new"), option, value)
    assert "min_obs_std: expected a number in (0, obs_std=1.0), got 2.0" in fails(
        "fit", str(tables / "train.csv"), "--out", str(tmp_path / "new"), "--set", "heteroscedastic=yes",
        "--set", "min_obs_std=2")
    assert "anomaly_score: expected auto, recon, elbo, nll, knn, resid or a sum of them such as recon+knn, got " \
           "'recon+mse'" in fails("fit", str(tables / "train.csv"), "--out", str(tmp_path / "new"), "--score",
                                  "recon+mse")
    assert not (tmp_path / "new").exists()
    assert "no such detector directory" in fails("score", str(tmp_path / "missing"), str(tables / "test.csv"))


@pytest.mark.parametrize("fits, scoring, words", [(1, 1, "1 fit"), (4, 3, "4 fits, the last 3 averaged"),
                                                   (4, 1, "4 fits, the last scoring"), (4, 4, "4 fits, all averaged")])
def test_the_fit_summary_says_how_many_fits_score(fits, scoring, words):
    from vaekit.cli.anomaly import _fits_in_words

    assert _fits_in_words(fits, scoring) == words
