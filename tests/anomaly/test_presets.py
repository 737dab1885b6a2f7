"""The detector's presets: the old ``auto`` values, one place for every setting, old detectors still load."""

import json

import numpy as np
import pytest

from anomaly_helpers import tiny
from vaekit.anomaly import AnomalyInputError, VAEAnomalyDetector, load_detector
from vaekit.anomaly.presets import FIELDS, IMAGES, TABLES, Preset, parse_override

#: What the ``auto`` parameters resolved to before the presets, written out (settings.py's tables).
OLD_AUTO = {
    "tables": {"family": "vae", "arch": "mlp", "hidden": (128, 64, 32), "channels": (32, 64), "groups": None,
               "latent_dim": 2, "likelihood": "student-t", "obs_std": 1.0, "learn_obs_std": True,
               "heteroscedastic": False, "min_obs_std": 0.05, "obs_df": 10.0, "learn_obs_df": True,
               "standardize": "robust", "beta": 3.0, "kl_anneal": "none", "epochs": 50, "batch_size": 64,
               "lr": 1e-3, "likelihood_lr_factor": 1.0, "score": "elbo", "k": 100, "n_neighbors": 10, "trim": 0.3,
               "trim_rounds": 3,
               "ensemble": "refits", "max_updates": None},
    "images": {"family": "vae", "arch": "mlp", "hidden": (512, 256), "channels": (32, 64), "groups": None,
               "latent_dim": 16, "likelihood": "auto", "obs_std": 1.0, "learn_obs_std": False,
               "heteroscedastic": False, "min_obs_std": 0.05, "obs_df": 3.0, "learn_obs_df": False,
               "standardize": "none", "beta": 1.0, "kl_anneal": "none", "epochs": 200, "batch_size": 64,
               "lr": 1e-3, "likelihood_lr_factor": 1.0, "score": "recon+knn", "k": 100, "n_neighbors": 10, "trim": 0.0,
               "trim_rounds": 1,
               "ensemble": "refits", "max_updates": None},
}


@pytest.fixture(scope="module")
def rows():
    """200 normal rows of 5 correlated features, and 20 anomalies far from them."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 2))
    normal = np.hstack([z, z @ rng.normal(size=(2, 3))]) + 0.1 * rng.normal(size=(200, 5))
    return normal.astype(np.float32), (3 * rng.normal(size=(20, 5))).astype(np.float32)


def test_the_presets_hold_the_old_auto_values_but_the_tables_score_kl_weight_and_length():
    assert {name: getattr(TABLES, name) for name in FIELDS} == {**OLD_AUTO["tables"], "score": "elbo+knn+resid",
                                                                "beta": 1.0, "max_updates": 10_000}
    assert {name: getattr(IMAGES, name) for name in FIELDS} == OLD_AUTO["images"]


def test_a_detector_fitted_when_auto_meant_another_score_keeps_scoring_with_it(rows, tmp_path):
    det = tiny(anomaly_score="elbo").fit(rows[0][:120])  # what "auto" gave tables before
    path = det.save(tmp_path / "det")
    config = json.loads((path / "config.json").read_text())
    config["anomaly"]["params"]["anomaly_score"] = "auto"
    del config["anomaly"]["score"]  # not written then: the fits' score parts tell
    (path / "config.json").write_text(json.dumps(config))
    loaded = load_detector(path)
    assert loaded.score_ == "elbo" and loaded.anomaly_score == "elbo"
    np.testing.assert_array_equal(loaded.decision_function(rows[1]), det.decision_function(rows[1]))
    fresh = load_detector(tiny().fit(rows[0][:120]).save(tmp_path / "new"))
    assert fresh.anomaly_score == "auto" and fresh.score_ == "elbo+knn+resid"  # today's auto stays auto


def test_the_override_names_fields_and_user_options_win_over_it(rows):
    det = tiny(trim=0.1, score="recon").set_params(latent_dim=3, epochs=1).fit(rows[0][:80])
    assert (det.settings_.trim, det.settings_.latent_dim, det.settings_.epochs, det.score_) == (0.1, 3, 1, "recon")
    assert det.set_params(anomaly_score="knn").score_ == "knn"  # a scoring choice after fit
    images = VAEAnomalyDetector(preset="tables", epochs=1, model={"hidden": (8,), "trim": 0})
    images.fit(np.random.default_rng(0).random((40, 1, 4, 4), dtype=np.float32))
    assert images.settings_.standardize == "robust"
    with pytest.raises(AnomalyInputError, match=r"model: unknown setting\(s\) depth \(expected some of latent_dim"):
        tiny(depth=3).fit(rows[0])
    with pytest.raises(AnomalyInputError, match=r"preset: expected auto, images, tables, got 'audio'"):
        VAEAnomalyDetector(preset="audio").fit(rows[0])


def test_set_strings_are_read_by_each_fields_type():
    assert parse_override(["hidden=64,32", "trim=0", "learn-obs-std=no", "score=recon+knn", "groups=none"]) == {
        "hidden": (64, 32), "trim": 0.0, "learn_obs_std": False, "score": "recon+knn", "groups": None}
    with pytest.raises(AnomalyInputError, match=r"--set trim_rounds: expected an integer, got 'many'"):
        parse_override(["trim_rounds=many"])
    with pytest.raises(AnomalyInputError, match=r"--set: expected FIELD=VALUE with FIELD one of latent_dim"):
        parse_override(["width=3"])


def test_a_whole_preset_override_round_trips(rows, tmp_path):
    det = VAEAnomalyDetector(epochs=2, model=Preset(**{**OLD_AUTO["tables"], "hidden": (16,), "trim": 0.0}))
    loaded = load_detector(det.fit(rows[0][:80]).save(tmp_path / "det"))
    assert loaded.get_params() == det.get_params() and isinstance(loaded.model, Preset)


def test_a_detector_saved_before_the_presets_loads_with_its_settings(rows, tmp_path):
    """Format 3 kept every setting as a parameter (``auto`` or a value): the values given become
    ``model`` fields, the rest is the preset, and the scores are the same."""
    det = tiny(family="vae", trim_rounds=2, heteroscedastic=True, likelihood="gaussian",
               anomaly_score="elbo").fit(rows[0][:120])  # elbo: what "auto" gave tables then
    path = det.save(tmp_path / "det")
    config = json.loads((path / "config.json").read_text())
    section = config["anomaly"]
    section["format"] = 3  # which kept each score part's training mean and std in config.json
    section["score_stats"] = [{name: [float(ref.mean()), float(ref.std())] for name, ref in fit.references.items()}
                              for fit in det.fits_]
    del section["score_parts"]
    old = {"anomaly_score": "auto", "contamination": 0.1, "target_fpr": None, "threshold": None,
           "holdout_fraction": 0.1, "model": "vae", "latent_dim": 2, "groups": None, "arch": "mlp",
           "hidden": [16], "channels": [32, 64], "likelihood": "auto", "obs_std": 1.0, "learn_obs_std": "auto",
           "heteroscedastic": True, "min_obs_std": 0.05, "obs_df": "auto", "learn_obs_df": "auto", "beta": "auto",
           "kl_anneal": "none", "epochs": 2, "batch_size": 32, "lr": 0.001, "k": 100, "n_neighbors": 10,
           "trim": "auto", "trim_rounds": 2, "standardize": "auto", "ensemble": "refits", "random_state": 0,
           "device": "auto", "threads": "auto", "verbose": False}
    section["params"] = old
    del section["model_is_preset"]
    (path / "config.json").write_text(json.dumps(config))
    loaded = load_detector(path)
    assert loaded.model == {"hidden": (16,), "heteroscedastic": True, "batch_size": 32, "trim_rounds": 2,
                            "likelihood": "gaussian"}
    assert loaded.settings_ == det.settings_ and loaded.anomaly_score == "elbo"
    np.testing.assert_array_equal(loaded.decision_function(rows[1]), det.decision_function(rows[1]))


def test_max_updates_shortens_training_only_where_the_rows_would_pass_it(rows):
    from dataclasses import replace

    from vaekit.anomaly.presets import capped_epochs

    settings = replace(TABLES, epochs=50, batch_size=64, max_updates=1000)
    assert capped_epochs(settings, 640) == 50  # 10 updates an epoch: 500 in all, under the limit
    assert capped_epochs(settings, 6400) == 10  # 100 an epoch: 10 epochs make the 1,000
    assert capped_epochs(settings, 10 ** 6) == 1  # at least one epoch
    assert capped_epochs(replace(settings, max_updates=None), 10 ** 6) == 50
    assert parse_override(["max_updates=none", "max_updates=500"]) == {"max_updates": 500}
    with pytest.raises(AnomalyInputError, match=r"max_updates: expected a positive integer, got 0"):
        tiny(max_updates=0).fit(rows[0])
    det = tiny(trim=0, batch_size=16, max_updates=20).set_params(epochs=7).fit(rows[0][:160])
    assert det.train_config_.epochs == 2  # 10 updates an epoch
    assert tiny(trim=0, batch_size=16, max_updates=None).set_params(epochs=7).fit(rows[0][:160]) \
        .train_config_.epochs == 7
