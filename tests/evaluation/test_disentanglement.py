"""Disentanglement metrics on codes whose answer is known, and `vaekit evaluate --disentanglement`."""

import json
import math

import numpy as np
import pytest

import vaekit.evaluation.evaluate
from vaekit import pipeline
from vaekit.cli import main
from vaekit.errors import VaekitError
from vaekit.evaluation import disentanglement as dis
from vaekit.training import runs

SIZES = np.array([3, 6, 10, 8, 8])  # the shapes-small grid: every factor has at most MIG's 20 bins
FACTORS = np.random.default_rng(0).integers(0, SIZES, size=(3000, 5))
PERM = np.array([3, 0, 4, 1, 2])
GAIN = np.array([2.0, -0.5, 7.0, 1.5, 0.3])


def standardised(f: np.ndarray) -> np.ndarray:
    return (f - (SIZES - 1) / 2) / (SIZES / math.sqrt(12))


def permuted(f: np.ndarray) -> np.ndarray:
    """A perfect code: each dimension is one factor, rescaled and shifted, in another order."""
    return (standardised(f) * GAIN + 1.0)[:, PERM]


ROTATION = np.linalg.qr(np.random.default_rng(1).normal(size=(5, 5)))[0]


def rotated(f: np.ndarray) -> np.ndarray:
    return standardised(f) @ ROTATION


def mixed(f: np.ndarray) -> np.ndarray:
    """Every dimension an equal-weight mix of four equal-size factors (a 4x4 Hadamard rotation)."""
    hadamard = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]]) / 2.0
    return (f - 3.5) @ hadamard


def constant(f: np.ndarray) -> np.ndarray:
    return np.full((len(f), 5), 0.7)


SMALL_SCORES = {"n_train": 150, "n_eval": 100, "batch_size": 32}


def test_a_permuted_rescaled_copy_of_the_factors_scores_one_on_every_metric():
    codes = permuted(FACTORS)
    assert dis.mig(codes, FACTORS) > 0.97
    scores = dis.dci(codes, FACTORS, n_train=1000, n_test=500)
    assert scores["disentanglement"] > 0.97 and scores["completeness"] > 0.97
    assert scores["informativeness"] > 0.97
    importance = np.array(scores["importance"])
    assert (importance.argmax(0) == np.argsort(PERM)).all()  # each factor is read off its own dimension
    assert dis.beta_vae_score(permuted, SIZES, **SMALL_SCORES)["eval_accuracy"] > 0.97
    factor = dis.factor_vae_score(permuted, SIZES, n_variance=2000, **SMALL_SCORES)
    assert factor["eval_accuracy"] > 0.97 and factor["active_dims"] == 5


def test_a_random_rotation_scores_low_on_mig_and_dci_while_the_two_lenient_scores_stay_high():
    codes = rotated(FACTORS)
    assert dis.mig(codes, FACTORS) < 0.3
    scores = dis.dci(codes, FACTORS, n_train=1000, n_test=500)
    assert scores["disentanglement"] < 0.4 and scores["completeness"] < 0.4
    # Documented weakness of both scores: they need each factor to move some dimension most,
    # not a dimension of its own, so a generic rotation still classifies well.
    assert dis.beta_vae_score(rotated, SIZES, **SMALL_SCORES)["eval_accuracy"] > 0.8
    assert dis.factor_vae_score(rotated, SIZES, n_variance=2000, **SMALL_SCORES)["eval_accuracy"] > 0.7


def test_an_equal_mix_of_every_factor_scores_near_chance_on_all_four():
    sizes = np.array([8, 8, 8, 8])
    f = np.random.default_rng(2).integers(0, sizes, size=(3000, 4))
    assert dis.mig(mixed(f), f) < 0.05
    assert dis.dci(mixed(f), f, n_train=1000, n_test=500)["disentanglement"] < 0.05
    assert dis.beta_vae_score(mixed, sizes, **SMALL_SCORES)["eval_accuracy"] < 0.45  # chance: 0.25
    assert dis.factor_vae_score(mixed, sizes, n_variance=2000, **SMALL_SCORES)["eval_accuracy"] < 0.5


def test_a_constant_code_scores_zero():
    codes = constant(FACTORS)
    assert dis.mig(codes, FACTORS) == 0.0
    assert dis.dci(codes, FACTORS, n_train=600, n_test=300)["disentanglement"] == 0.0
    factor = dis.factor_vae_score(constant, SIZES, n_variance=500, **SMALL_SCORES)
    assert factor == {"train_accuracy": 0.0, "eval_accuracy": 0.0, "active_dims": 0}


def test_mig_of_a_factor_with_more_values_than_bins_is_capped_by_the_binning():
    f = np.random.default_rng(3).integers(0, 40, size=(20000, 1))
    gap = dis.mig_per_factor(f.astype(float), f)[0]
    assert gap == pytest.approx(math.log(20) / math.log(40), abs=0.02)
    assert dis.mig(f.astype(float), f, bins=40) > 0.99


def test_mig_and_dci_are_reexported_from_evaluation_and_refuse_bad_arrays():
    assert vaekit.evaluation.mig is dis.mig and vaekit.evaluation.dci is dis.dci
    with pytest.raises(VaekitError, match="integer factor indices"):
        dis.mig(FACTORS.astype(float), FACTORS.astype(float))
    with pytest.raises(VaekitError, match="one row per example"):
        dis.dci(permuted(FACTORS)[:10], FACTORS)
    with pytest.raises(VaekitError, match="NaN"):
        dis.mig(np.full((10, 2), np.nan), FACTORS[:10])
    with pytest.raises(VaekitError, match="every factor is constant"):
        dis.mig(permuted(FACTORS), np.zeros_like(FACTORS))


SHAPES_RUN = {"arch": "conv", "channels": [8, 16, 16, 16], "hidden": [32], "latent_dim": 4}


def quick_run(data: dict, model: dict, out) -> None:
    """A one-epoch run without the pictures, GMM and report (their t-SNE map alone takes ~10 s)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "_write_run_extras", lambda run, bundle, **options: None)
        pipeline.train(data, model, {"epochs": 1, "batch_size": 32}, out, progress=False)


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("dis") / "shapes"
    quick_run({"source": "shapes-small", "limit": 128}, SHAPES_RUN, out)
    return out


@pytest.fixture
def small_budget(monkeypatch):
    monkeypatch.setattr(dis, "SCORE_POINTS", (40, 20))
    monkeypatch.setattr(dis, "SCORE_BATCH", 8)
    monkeypatch.setattr(dis, "VARIANCE_POINTS", 200)


@pytest.mark.filterwarnings("ignore:epoch 1. posterior-collapse")  # one epoch on 128 sprites: no matter here
def test_evaluate_disentanglement_on_a_shapes_run_prints_all_four_as_json(shapes_run, small_budget, capsys):
    assert main(["evaluate", str(shapes_run), "--disentanglement", "--limit", "300", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["dataset"] == "shapes-small" and scores["n"] == 300
    for key in ("mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "beta_vae_score",
                "factor_vae_score"):
        assert 0.0 <= scores[key] <= 1.0, key
    assert set(scores["mig_per_factor"]) == {"shape", "scale", "orientation", "pos_x", "pos_y"}
    again = dis.evaluate_run(runs.open_run(shapes_run), n=300)
    assert {k: v for k, v in again.items() if k != "seconds"} == {k: v for k, v in scores.items() if k != "seconds"}
    assert main(["evaluate", str(shapes_run), "--disentanglement", "--limit", "300"]) == 0
    assert "FactorVAE score" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore:epoch 1. posterior-collapse")
def test_evaluate_disentanglement_refuses_a_run_without_factor_labels(tmp_path, capsys):
    out = tmp_path / "digits"
    quick_run({"source": "digits", "limit": 100}, {"latent_dim": 2, "hidden": [16]}, out)
    assert main(["evaluate", str(out), "--disentanglement"]) == 2
    err = capsys.readouterr().err
    assert "carries no factor labels" in err and "Traceback" not in err
