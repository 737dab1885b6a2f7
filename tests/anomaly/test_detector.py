"""The anomaly detector: scikit-learn's estimator contract, thresholds, input errors, save / load."""

import numpy as np
import pytest
import torch

from anomaly_helpers import TINY, tiny
from vaekit.anomaly import AnomalyInputError, VAEAnomalyDetector, load_detector
from vaekit.anomaly.fits import Fit
from vaekit.anomaly.scores import combine, reference_scores, tail_log_p
from vaekit.errors import VaekitError


@pytest.fixture(scope="module")
def rows():
    """400 normal rows of 5 correlated features, and 40 anomalies far from them."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(400, 2))
    normal = np.hstack([z, z @ rng.normal(size=(2, 3))]) + 0.1 * rng.normal(size=(400, 5))
    anomalies = rng.normal(size=(40, 5)) * 3
    return normal.astype(np.float32), anomalies.astype(np.float32)


@pytest.fixture(scope="module")
def fitted(rows):
    return tiny(**{"epochs": 5}, contamination=0.05).fit(rows[0])


def test_passes_scikit_learns_estimator_checks_except_the_outlier_label_convention():
    """check_estimator runs in full; the failures allowed are the two checks that want
    scikit-learn's -1 / +1 outlier labels, where this detector follows PyOD (1 = anomaly), and
    the subset-invariance check at its 1e-7 tolerance: float32 matrix products round differently
    with the batch size (scores agree to ~1e-6 relative)."""
    from sklearn.utils.estimator_checks import check_estimator

    expected = {"check_outliers_train": "predict returns 1 = anomaly / 0 = normal (PyOD), not -1 / +1",
                "check_outliers_fit_predict": "fit_predict returns 1 = anomaly / 0 = normal (PyOD), not -1 / +1",
                "check_methods_subset_invariance": "float32 rounding depends on the batch size (~1e-6 relative)"}
    results = check_estimator(tiny(), expected_failed_checks=expected, on_fail=None,
                              on_skip=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert failed == []
    assert sum(r["status"] == "passed" for r in results) >= 40


def test_sign_conventions_and_learned_attributes(fitted, rows):
    normal, anomalies = rows
    x = np.vstack([normal[:100], anomalies])
    scores = fitted.decision_function(x)
    np.testing.assert_array_equal(fitted.score_samples(x), -scores)  # scikit-learn: higher = more normal
    np.testing.assert_array_equal(fitted.predict(x), (scores > fitted.threshold_).astype(int))
    assert set(np.unique(fitted.predict(x))) <= {0, 1}
    assert scores[100:].mean() > scores[:100].mean()  # higher = more anomalous
    assert fitted.n_features_in_ == 5 and fitted.input_shape_ == (5,)
    assert fitted.scaler_ is not None and fitted.model_.config.likelihood == "student-t"
    assert fitted.model_.config.obs_df == fitted.settings_.obs_df == 10.0
    assert fitted.decision_scores_.shape == (400,) and fitted.labels_.shape == (400,)


@pytest.mark.parametrize("rate", [0.05, 0.2])
def test_contamination_flags_that_share_of_the_training_data(rows, rate):
    det = tiny(contamination=rate).fit(rows[0])
    assert det.threshold_source_ == "contamination"
    assert abs(det.labels_.mean() - rate) <= 0.01
    assert abs(det.predict(rows[0]).mean() - rate) <= 0.01


def test_target_fpr_thresholds_on_held_out_normal_data(rows):
    det = tiny(target_fpr=0.1, holdout_fraction=0.25).fit(rows[0])
    assert det.threshold_source_ == "target_fpr" and len(det.holdout_scores_) == 100
    assert abs((det.holdout_scores_ > det.threshold_).mean() - 0.1) <= 0.02


def test_manual_threshold_and_rethresholding(fitted, rows):
    det = tiny(threshold=1e9).fit(rows[0])
    assert det.threshold_ == 1e9 and det.predict(rows[1]).sum() == 0
    det.set_threshold(contamination=0.1)
    assert abs(det.labels_.mean() - 0.1) <= 0.01
    with pytest.raises(AnomalyInputError, match="kept no held-out normal data"):
        det.set_threshold(target_fpr=0.1)
    with pytest.raises(AnomalyInputError, match="exactly one"):
        det.set_threshold(1.0, contamination=0.1)


def test_mismatched_columns_name_the_missing_and_extra_ones(rows):
    import pandas as pd  # a dev dependency: DataFrame columns carry the names
    frame = pd.DataFrame(rows[0], columns=list("abcde"))
    det = tiny().fit(frame)
    assert list(det.feature_names_in_) == list("abcde")
    other = frame.rename(columns={"d": "x", "e": "y"})
    with pytest.raises(VaekitError, match=r"columns differ from the training data's: "
                                          r"missing \['d', 'e'\], extra \['x', 'y'\]"):
        det.decision_function(other)
    shuffled = frame[list("edcba")]  # the same columns in another order are matched by name
    np.testing.assert_array_equal(det.decision_function(shuffled), det.decision_function(frame))


def test_wrong_shapes_and_values_are_one_line_errors(fitted, rows):
    with pytest.raises(AnomalyInputError, match="X has 3 features, but VAEAnomalyDetector is expecting 5 features"):
        fitted.predict(rows[0][:, :3])
    with pytest.raises(AnomalyInputError, match=r"found an array of shape \(5,\).*Reshape your data"):
        fitted.predict(rows[0][0])
    bad = rows[0][:10].copy()
    bad[3, 1] = np.nan
    with pytest.raises(AnomalyInputError, match="example 3 holds NaN"):
        fitted.decision_function(bad)
    images = tiny().fit(np.random.default_rng(0).random((50, 1, 6, 6), dtype=np.float32))
    with pytest.raises(AnomalyInputError, match=r"examples have shape \(1, 5, 5\), but the detector was fitted on "
                                                r"examples of shape \(1, 6, 6\)"):
        images.predict(np.zeros((3, 5, 5), dtype=np.float32))
    with pytest.raises(AnomalyInputError, match="contamination: expected a number in"):
        tiny(contamination=0.7).fit(rows[0])
    with pytest.raises(AnomalyInputError, match=r"anomaly_score: expected auto, recon, elbo, nll, knn, resid or a "
                                                r"sum of them such as recon\+knn, got .mse."):
        tiny(anomaly_score="mse").fit(rows[0])
    with pytest.raises(AnomalyInputError, match=r"got .recon\+recon."):
        tiny(anomaly_score="recon+recon").fit(rows[0])


@pytest.mark.parametrize("score", ["recon", "elbo", "nll", "knn", "resid", "recon+knn", "elbo+knn+resid"])
def test_save_and_load_give_identical_scores(tmp_path, rows, score):
    det = tiny(anomaly_score=score, k=8, target_fpr=0.05).fit(rows[0])
    det.save(tmp_path / "det")
    earlier = {f"fit-{i}.safetensors" for i in range(len(det.fits_) - 1)}  # model.safetensors: the last fit
    assert {p.name for p in (tmp_path / "det").iterdir()} == {"config.json", "model.safetensors",
                                                               "anomaly.safetensors", *earlier}
    loaded = load_detector(tmp_path / "det")
    x = np.vstack([rows[0][:50], rows[1]])
    np.testing.assert_array_equal(loaded.decision_function(x), det.decision_function(x))
    np.testing.assert_array_equal(loaded.predict(x), det.predict(x))
    assert loaded.threshold_ == det.threshold_ and loaded.get_params() == det.get_params()
    assert loaded.n_fits_ == det.n_fits_ > 1 and len(loaded.fits_) == det.n_fits_ - 1  # rows: the refits score
    np.testing.assert_array_equal(loaded.holdout_scores_, det.holdout_scores_)


def test_auto_score_is_recon_knn_for_images_and_elbo_knn_resid_for_rows(fitted, digits_tensor):
    assert fitted.anomaly_score == "auto" and fitted.score_ == "elbo+knn+resid"
    det = tiny().fit(digits_tensor[:200].numpy()[:, 0])  # (N, H, W) grey images
    assert det.score_ == "recon+knn" and det.settings_.trim == 0.0
    assert det.set_params(anomaly_score="nll").score_ == "nll"


def test_auto_epochs_latent_dims_and_decoders_differ_for_images_and_rows(digits_tensor, rows):
    params = {**TINY, "epochs": "auto", "latent_dim": "auto", "batch_size": 64}
    images = tiny(**params).fit(digits_tensor[:64].numpy()[:, 0])
    table = tiny(**params, trim=0).fit(rows[0][:64])
    assert (images.settings_.epochs, images.train_config_.epochs) == (200, 200)
    assert (table.settings_.epochs, table.train_config_.epochs) == (50, 50)
    assert (images.settings_.latent_dim, images.model_.config.latent_dim) == (16, 16)
    assert (table.settings_.latent_dim, table.model_.config.latent_dim) == (2, 2)
    assert (images.settings_.beta, images.train_config_.beta, images.settings_.learn_obs_std) == (1.0, 1.0, False)
    assert (table.settings_.beta, table.train_config_.beta, table.settings_.max_updates) == (1.0, 1.0, 10_000)
    assert table.settings_.learn_obs_std and table.model_.config.learn_obs_std
    assert table.model_.observation.obs_logvar.requires_grad  # the std per feature is trained...
    assert not torch.allclose(table.model_.observation.obs_logvar, torch.zeros(5))  # ...and moved from 1
    assert table.model_.config.likelihood == "student-t" and table.settings_.learn_obs_df
    assert table.model_.config.learn_obs_df
    assert not torch.allclose(table.model_.observation.obs_logdf.exp(), torch.full((5,), 10.0))  # df moved from 10
    fixed_df = tiny(**{"obs_df": 4, "learn_obs_df": False}).fit(rows[0][:64]).model_
    assert fixed_df.config.obs_df == 4.0 and not fixed_df.config.learn_obs_df
    gaussian = tiny(**{"likelihood": "gaussian"}).fit(rows[0][:64]).model_.config
    assert gaussian.likelihood == "gaussian" and not gaussian.learn_obs_df  # learn_obs_df: Student-t only
    kept = tiny(**{"latent_dim": 3, "beta": 0.5, "learn_obs_std": False}).fit(rows[0][:64])
    assert (kept.train_config_.epochs, kept.model_.config.latent_dim) == (TINY["epochs"], 3)
    assert (kept.train_config_.beta, kept.model_.config.learn_obs_std) == (0.5, False)
    for name in ("epochs", "latent_dim"):
        with pytest.raises(AnomalyInputError, match=rf"{name}: expected 'auto' or a positive integer, got 'many'"):
            tiny(**{name: "many"}).fit(rows[0])
    with pytest.raises(AnomalyInputError, match=r"beta: expected a number, got 'strong'"):
        tiny(**{"beta": "strong"}).fit(rows[0])
    with pytest.raises(AnomalyInputError, match=r"learn_obs_std: expected True or False, got 'yes'"):
        tiny(**{"learn_obs_std": "yes"}).fit(rows[0])
    with pytest.raises(AnomalyInputError, match=r"learn_obs_df: expected True or False, got 'yes'"):
        tiny(**{"learn_obs_df": "yes"}).fit(rows[0])
    with pytest.raises(AnomalyInputError, match=r"obs_df: expected a positive number, got -1"):
        tiny(**{"obs_df": -1}).fit(rows[0])


def test_images_use_a_bernoulli_vae_without_scaling(digits_tensor):
    det = tiny().fit(digits_tensor[:200].numpy()[:, 0])  # (N, H, W) grey images
    assert det.scaler_ is None and det.input_shape_ == (1, 8, 8)
    assert det.model_.config.likelihood == "bernoulli"
    assert det.decision_function(digits_tensor[200:210]).shape == (10,)  # tensors are accepted too


def test_fit_leaves_the_global_random_state_alone(rows):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tiny().fit(rows[0][:50])
    assert torch.equal(torch.rand(3), expected)


def test_a_hierarchical_vae_detector_separates_anomalies_and_round_trips(tmp_path, rows):
    from sklearn.metrics import roc_auc_score

    det = tiny(**{"epochs": 20}, family="hvae", groups=(2, 3), anomaly_score="elbo",
                             k=4).fit(rows[0])
    assert det.model_.config.model == "hvae" and det.model_.config.groups == [2, 3]
    x = np.vstack([rows[0][:100], rows[1]])
    assert roc_auc_score([0] * 100 + [1] * 40, det.decision_function(x)) > 0.9
    det.save(tmp_path / "det")
    loaded = load_detector(tmp_path / "det")
    np.testing.assert_array_equal(loaded.decision_function(x), det.decision_function(x))
    assert loaded.get_params() == det.get_params()
    with pytest.raises(AnomalyInputError, match="family: expected vae, hvae, got 'vqvae'"):
        tiny(family="vqvae").fit(rows[0])


def test_an_hvae_detectors_elbo_score_is_the_negative_elbo_of_the_models_own_loss(rows):
    """The elbo score goes through the model's ``infer``: for a hierarchical VAE each row's score is
    the negative ELBO that its training loss computes (``Loss.elbo`` = recon + KL, over the whole
    top-down posterior, each group's KL given its drawn parents), not the mean-path posterior
    against N(0, I). The score draws at random, seeded by ``random_state``: with k=1 and one row per
    call it draws what the loss draws after ``torch.manual_seed(random_state)``, so they agree."""
    det = tiny(family="hvae", groups=(2, 3), anomaly_score="elbo", k=1, trim=0,
                             random_state=7).fit(rows[0])
    x = np.vstack([rows[0][:4], rows[1][:4]])
    xm = det.transform_input(x)
    for i in range(len(x)):
        score = det.decision_function(x[i:i + 1])
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(7)
            loss = det.model_.loss(xm[i:i + 1])
        assert score[0] == pytest.approx(float(loss.elbo), rel=1e-5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="device auto is the GPU on this machine")
def test_device_auto_is_the_default_and_without_a_gpu_gives_the_cpus_scores(rows):
    auto = tiny(trim=0).fit(rows[0][:100])
    cpu = tiny(trim=0, device="cpu").fit(rows[0][:100])
    assert auto.device == "auto" and cpu.device == "cpu"
    np.testing.assert_array_equal(auto.decision_function(rows[1]), cpu.decision_function(rows[1]))
    np.testing.assert_array_equal(auto.decision_scores_, cpu.decision_scores_)


def _mean_nearest(codes: np.ndarray, reference: np.ndarray, n: int, *, skip_self: bool = False) -> np.ndarray:
    d = np.sqrt(((codes[:, None, :].astype(np.float64) - reference[None, :, :]) ** 2).sum(axis=-1))
    d.sort(axis=1)
    return d[:, 1:n + 1].mean(axis=1) if skip_self else d[:, :n].mean(axis=1)


def test_knn_is_the_mean_distance_to_the_nearest_training_codes_leaving_each_training_example_out(rows):
    normal, anomalies = rows
    det = tiny(anomaly_score="knn", n_neighbors=3, target_fpr=0.1, trim=0).fit(normal)
    with torch.no_grad():
        codes = det.model_.encode(det.transform_input(normal)).mean.numpy()
        new = det.model_.encode(det.transform_input(anomalies)).mean.numpy()
    train = det.codes_.numpy()
    assert len(train) == 360  # the 40 held-out rows are not reference codes
    np.testing.assert_allclose(det.decision_function(anomalies), _mean_nearest(new, train, 3), rtol=1e-5)
    in_train = np.isin(codes, train).all(axis=1)
    assert in_train.sum() == 360
    np.testing.assert_allclose(det.decision_scores_[in_train], _mean_nearest(codes[in_train], train, 3,
                                                                            skip_self=True), rtol=1e-5)
    np.testing.assert_allclose(det.holdout_scores_, _mean_nearest(codes[~in_train], train, 3), rtol=1e-5)


def test_resid_is_the_residuals_mahalanobis_distance_under_the_training_residuals_shrunk_covariance(rows, tmp_path):
    from safetensors.torch import load_file, save_file
    from sklearn.covariance import ShrunkCovariance

    from vaekit.anomaly.scores import held_out_shrinkage

    normal, anomalies = rows
    det = tiny(anomaly_score="resid", trim=0).fit(normal)

    def residual(x):
        xm = det.transform_input(x)
        with torch.no_grad():
            return (xm - det.model_.reconstruct(xm)).double().numpy()

    train = residual(normal)
    expected = ShrunkCovariance(shrinkage=held_out_shrinkage(train)).fit(train).mahalanobis(residual(anomalies))
    np.testing.assert_allclose(det.decision_function(anomalies), expected, rtol=1e-6)
    assert det.decision_function(anomalies).mean() > det.decision_scores_.mean()
    # the d x d statistics are kept only where the score reads them: asking another fit is one line
    other = tiny(anomaly_score="elbo+knn", trim=0).fit(normal)
    assert all(fit.residual is None for fit in other.fits_)
    with pytest.raises(AnomalyInputError, match="resid: this detector kept no training residuals"):
        other.set_params(anomaly_score="resid").decision_function(anomalies)
    # saved and read back with them, and without them (as an earlier vaekit wrote it)
    path = det.save(tmp_path / "det")
    np.testing.assert_array_equal(load_detector(path).decision_function(anomalies), det.decision_function(anomalies))
    tensors = {k: v for k, v in load_file(str(path / "anomaly.safetensors")).items() if not k.startswith("residual")}
    save_file(tensors, str(path / "anomaly.safetensors"))
    with pytest.raises(AnomalyInputError, match="resid: this detector kept no training residuals"):
        load_detector(path).decision_function(anomalies)


def test_a_sum_is_fishers_statistic_of_its_parts_tail_probabilities_among_the_training_scores(rows, tmp_path):
    normal, anomalies = rows
    det = tiny(anomaly_score="recon+knn", trim=0).fit(normal)
    x = np.vstack([normal[:50], anomalies])
    recon = det.set_params(anomaly_score="recon").decision_function(x)
    knn = det.set_params(anomaly_score="knn").decision_function(x)
    refs = det.references_
    recon_train = det.set_params(anomaly_score="recon").decision_function(normal)
    np.testing.assert_allclose(refs["recon"], np.sort(recon_train), rtol=1e-6)  # the fit's training scores
    combined = det.set_params(anomaly_score="recon+knn").decision_function(x)
    np.testing.assert_allclose(combined, 2 * (tail_log_p(recon, refs["recon"]) + tail_log_p(knn, refs["knn"])),
                               rtol=1e-6)
    median = tail_log_p(np.median(refs["recon"]), refs["recon"])
    assert median == pytest.approx(np.log(2), abs=0.01)  # the median training score: p = 1/2
    assert combined[50:].mean() > combined[:50].mean()
    loaded = load_detector(det.save(tmp_path / "det"))  # the references travel with the detector
    assert all(np.array_equal(loaded.references_[name], refs[name]) for name in ("recon", "knn"))
    np.testing.assert_array_equal(loaded.decision_function(x), combined)
    with pytest.raises(AnomalyInputError, match=r"anomaly_score recon\+elbo: the training scores of elbo were "
                                                r"not computed .* fit it with anomaly_score='recon\+elbo'"):
        det.set_params(anomaly_score="recon+elbo").decision_function(x)


def test_tail_probabilities_are_monotone_and_blind_to_a_parts_units():
    """The rule ranks by how rare a score is among the training scores: any positive scale and shift
    of a part (and its training scores) leaves the sum unchanged, and a higher part never lowers it."""
    rng = np.random.default_rng(0)
    train = {"elbo": rng.gamma(2.0, size=500), "knn": rng.normal(size=500)}
    new = {"elbo": rng.gamma(2.0, size=300) * 1.5, "knn": rng.normal(size=300) * 2}
    refs = {name: reference_scores(values) for name, values in train.items()}
    base = combine(new, refs)
    rescaled = combine({"elbo": new["elbo"], "knn": 1e4 * new["knn"] - 7},
                       {"elbo": refs["elbo"], "knn": reference_scores(1e4 * train["knn"] - 7)})
    np.testing.assert_allclose(rescaled, base, rtol=1e-9)
    grid = np.linspace(-5, 40, 400)  # across the training range and far beyond its maximum
    logp = tail_log_p(grid, refs["elbo"])
    assert np.all(np.diff(logp) >= 0) and np.all(np.diff(logp[grid > refs["elbo"][-1]]) > 0)  # no ties beyond
    assert logp[0] == 0.0  # below every training score: p = 1
    raised = combine({"elbo": new["elbo"] + 0.5, "knn": new["knn"]}, refs)
    assert np.all(raised >= base) and np.any(raised > base)
    assert np.array_equal(combine({"elbo": new["elbo"]}, refs), new["elbo"])  # one part: as it is


def test_the_residual_shrinkage_is_the_one_held_out_residuals_find_likeliest():
    from sklearn.covariance import ShrunkCovariance, ledoit_wolf_shrinkage
    from sklearn.model_selection import KFold

    from vaekit.anomaly.scores import SHRINKAGES, held_out_shrinkage

    rng = np.random.default_rng(0)
    for n, d in ((300, 4), (40, 20), (20, 40)):
        r = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
        held_out = [sum(len(h) * ShrunkCovariance(shrinkage=s).fit(r[t]).score(r[h])
                        for t, h in KFold(5, shuffle=True, random_state=0).split(r)) for s in SHRINKAGES]
        assert held_out_shrinkage(r) == SHRINKAGES[int(np.argmax(held_out))]
    # an exact relation between two columns (b = 2a) keeps its near-zero variance: far less shrinkage
    # than Ledoit-Wolf's, whose lift of that variance blurs the rows that break the relation
    a = rng.normal(size=500)
    r = np.c_[a, 2 * a + 0.05 * rng.normal(size=500), rng.normal(size=(500, 2))]
    assert held_out_shrinkage(r) < ledoit_wolf_shrinkage(r) / 10
    # too few rows to hold any out: Ledoit-Wolf's
    assert held_out_shrinkage(r[:3]) == pytest.approx(ledoit_wolf_shrinkage(r[:3]))


def test_a_detector_saved_before_format_5_keeps_its_sums_of_z_scores(rows, tmp_path):
    import json

    from safetensors.torch import load_file, save_file

    det = tiny(anomaly_score="recon+knn", trim=0).fit(rows[0][:200])
    path = det.save(tmp_path / "det")
    config = json.loads((path / "config.json").read_text())
    section = config["anomaly"]
    stats = {name: [float(ref.mean()), float(ref.std())] for name, ref in det.references_.items()}
    section["format"], section["score_stats"] = 4, [stats]
    del section["score_parts"]
    (path / "config.json").write_text(json.dumps(config))
    tensors = {k: v for k, v in load_file(str(path / "anomaly.safetensors")).items() if not k.startswith("reference")}
    save_file(tensors, str(path / "anomaly.safetensors"))
    x = rows[1]
    parts = [det.set_params(anomaly_score=name).decision_function(x) for name in ("recon", "knn")]
    expected = sum((p - mean) / std for p, (mean, std) in zip(parts, stats.values(), strict=True))
    old = load_detector(path)
    np.testing.assert_allclose(old.decision_function(x), expected, rtol=1e-6)
    resaved = old.save(tmp_path / "again")  # saving it again keeps format 4 and its scores
    assert json.loads((resaved / "config.json").read_text())["anomaly"]["format"] == 4
    np.testing.assert_allclose(load_detector(resaved).decision_function(x), expected, rtol=1e-6)


def test_trim_fits_again_without_the_training_rows_that_score_highest(rows):
    normal, anomalies = rows
    mixed = np.vstack([normal, anomalies])  # ADBench-style: anomalies left in the training data
    params = {**TINY, "epochs": 5, "anomaly_score": "elbo", "k": 8}
    once = tiny(**params, trim=0).fit(mixed)
    det = tiny(**params, trim=0.2, trim_rounds=1).fit(mixed)
    kept = once.decision_scores_ <= np.quantile(once.decision_scores_, 0.8)  # the first fit's verdict
    assert det.settings_.trim == 0.2 and kept.sum() == 352 and (~kept[400:]).sum() >= 35  # most planted rows go
    with torch.no_grad():
        expected = det.model_.encode(det.transform_input(mixed[kept])).mean
    torch.testing.assert_close(det.codes_, expected)  # the final model's reference: the kept rows only
    assert det.decision_scores_.shape == (440,)  # every training row is scored, trimmed ones too
    assert tiny().fit(normal).settings_.trim == 0.3  # auto: rows are trimmed
    with pytest.raises(AnomalyInputError, match=r"trim: expected a number in \[0, 0.5\), got 0.7"):
        tiny(trim=0.7).fit(normal)


def test_each_trim_round_refits_without_the_rows_the_previous_fit_scored_highest(rows, capsys):
    normal, anomalies = rows
    mixed = np.vstack([normal, anomalies])
    params = {**TINY, "epochs": 5, "anomaly_score": "elbo", "k": 8, "trim": 0.2}
    one = tiny(**params, trim_rounds=1).fit(mixed)
    two = tiny(**params, trim_rounds=2, verbose=True).fit(mixed)
    said = capsys.readouterr().err
    assert "fit 1 of 3: all 440 training examples" in said
    assert "fit 3 of 3: 352 of 440 training examples, without the 20% that the last fit scored highest" in said
    assert one.n_fits_ == 2 and two.n_fits_ == 3
    kept = one.decision_scores_ <= np.quantile(one.decision_scores_, 0.8)  # the verdict of the fit after round 1
    with torch.no_grad():
        expected = two.model_.encode(two.transform_input(mixed[kept])).mean
    torch.testing.assert_close(two.codes_, expected)  # round 2 trained on the rows that round 1's model kept
    assert not np.array_equal(two.decision_scores_, one.decision_scores_)  # and it is another model
    assert two.settings_.trim_rounds == 2 and one.settings_.trim_rounds == 1
    assert tiny().fit(normal).settings_.trim_rounds == 3  # auto, rows
    images = np.random.default_rng(0).random((64, 1, 4, 4)).astype(np.float32)
    assert tiny().fit(images).settings_.trim_rounds == 1  # auto, images (whose trim is 0)
    with pytest.raises(AnomalyInputError, match=r"trim_rounds: expected a positive integer, got 0"):
        tiny(trim_rounds=0).fit(normal)


def test_ensemble_averages_the_scores_of_the_fits_it_names(rows, tmp_path):
    """Which fits score does not change how they are trained: the average of the refits equals the
    average of detectors stopped after each round (same seed, same rows)."""
    normal, anomalies = rows
    mixed = np.vstack([normal, anomalies])
    params = {**TINY, "epochs": 3, "anomaly_score": "recon+knn", "trim": 0.2}
    first = tiny(**{**params, "trim": 0}).fit(mixed)  # the first fit alone
    round1 = tiny(**params, trim_rounds=1).fit(mixed)  # ensemble: its one refit
    last2 = tiny(**params, trim_rounds=2, ensemble="last").fit(mixed)
    refits2 = tiny(**params, trim_rounds=2).fit(mixed)  # the default: both refits
    all2 = tiny(**params, trim_rounds=2, ensemble="all").fit(mixed)
    assert [len(d.fits_) for d in (first, round1, last2, refits2, all2)] == [1, 1, 1, 2, 3]
    assert first.settings_.ensemble == "refits" and all(d.n_fits_ == 3 for d in (last2, refits2, all2))
    x = np.vstack([normal[:30], anomalies])
    s0, s1, s2 = (d.decision_function(x) for d in (first, round1, last2))
    assert not np.allclose(s1, s2)  # two different models...
    np.testing.assert_allclose(refits2.decision_function(x), (s1 + s2) / 2, rtol=1e-6)  # ...averaged
    np.testing.assert_allclose(all2.decision_function(x), (s0 + s1 + s2) / 3, rtol=1e-6)
    np.testing.assert_allclose(refits2.decision_scores_, (round1.decision_scores_ + last2.decision_scores_) / 2,
                               rtol=1e-6)  # the training scores, and so the threshold, are averaged too
    assert refits2.model_ is refits2.fits_[-1].model and refits2.codes_ is refits2.fits_[-1].codes
    loaded = load_detector(refits2.save(tmp_path / "det"))
    np.testing.assert_array_equal(loaded.decision_function(x), refits2.decision_function(x))
    with pytest.raises(AnomalyInputError, match=r"ensemble: expected refits, last, all, got 'mean'"):
        tiny(ensemble="mean").fit(normal)


def test_a_detector_directory_from_another_format_or_missing_a_fit_is_refused_by_name(rows, tmp_path):
    import json

    det = tiny(trim=0.2, trim_rounds=2, anomaly_score="recon").fit(rows[0][:200])
    path = det.save(tmp_path / "det")
    assert len(det.fits_) == 2 and (path / "fit-0.safetensors").is_file()
    config = json.loads((path / "config.json").read_text())
    config["anomaly"]["format"] = 2  # a detector saved before the fits were averaged
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(VaekitError, match=r"config.json: anomaly format 2 is not 5 or 4 or 3 .*fit the detector again"):
        load_detector(path)
    config["anomaly"]["format"] = 5
    (path / "config.json").write_text(json.dumps(config))
    (path / "fit-0.safetensors").unlink()
    with pytest.raises(VaekitError, match=r"fit-0.safetensors: no such weights file"):
        load_detector(path)


def test_trim_rounds_stop_at_a_fixed_point(rows, monkeypatch):
    """A refit on the very rows of the last fit (same seed) would give the same model: it is skipped."""
    fitted_on = []

    def fake_fit_on(self, x, rows, spec):  # scores that do not depend on the model
        fitted_on.append(rows.copy())
        return Fit(None, torch.zeros(0, 2), {}), np.arange(len(x), dtype=np.float64)

    monkeypatch.setattr(VAEAnomalyDetector, "_fit_on", fake_fit_on)
    monkeypatch.setattr("vaekit.anomaly.fits.unused_latent", lambda *args, **kwargs: False)  # no VAE here
    det = tiny(trim=0.25, trim_rounds=5).fit(rows[0][:100])
    assert len(fitted_on) == 2 and len(fitted_on[1]) == 75  # the first fit, one refit, then the same rows again
    assert det.n_fits_ == 2


@pytest.mark.filterwarnings("ignore:VAEAnomalyDetector. the training scores barely vary")  # two rows, knn
@pytest.mark.parametrize("score", ["auto", "knn", "elbo"])
def test_the_fewest_rows_a_detector_accepts_fit_without_a_refit_on_fewer(rows, score):
    """Two rows are enough (one is refused): a trimmed refit would keep one, too few to learn a spread
    from or for knn to leave one out, so the refits stop there."""
    det = tiny(anomaly_score=score).fit(rows[0][:2])
    assert det.n_fits_ == 1 and np.isfinite(det.decision_function(rows[1])).all()
    assert tiny(anomaly_score=score).fit(rows[0][:3]).n_fits_ >= 2  # 3 rows: refits on 2
    with pytest.raises(AnomalyInputError, match="n_samples = 1"):
        tiny(anomaly_score=score).fit(rows[0][:1])
