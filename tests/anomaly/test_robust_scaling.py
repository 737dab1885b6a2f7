"""Robust feature scaling (median; IQR or std, the smaller), fitted once on a detector's training rows."""

import numpy as np
import pytest
import torch

from anomaly_helpers import tiny
from vaekit.anomaly import AnomalyInputError, load_detector
from vaekit.data.standardize import NORMAL_IQR, Standardizer


@pytest.fixture(scope="module")
def contaminated():
    """1000 standard normal rows of 3 features; 8% of them 30 stds out in the first feature."""
    x = np.random.default_rng(0).normal(size=(1000, 3))
    x[:80, 0] += 30.0
    return x.astype(np.float32)


def test_anomalies_in_the_rows_move_mean_and_std_but_not_median_and_iqr(contaminated):
    standard = Standardizer.fit(torch.from_numpy(contaminated))
    robust = Standardizer.fit(torch.from_numpy(contaminated), robust=True)
    assert standard.mean[0] > 2.0 and standard.std[0] > 7.0  # the anomalies set the first feature's scale
    assert abs(robust.mean[0]) < 0.2 and 0.85 < robust.std[0] < 1.2  # the normal rows' N(0, 1)
    x64 = contaminated.astype(np.float64)
    low, median, high = np.quantile(x64, [0.25, 0.5, 0.75], axis=0)
    np.testing.assert_allclose(robust.mean.numpy(), median, rtol=1e-6)
    np.testing.assert_allclose(robust.std.numpy(), np.minimum((high - low) / NORMAL_IQR, x64.std(0)), rtol=1e-6)


def test_the_std_where_the_iqr_overstates_the_spread_or_is_zero_and_1_for_a_constant_column():
    x = np.zeros((100, 3), dtype=np.float32)
    x[:10, 0] = 1.0  # IQR 0: 90% zeros
    x[:, 2] = np.repeat([-1.0, 1.0], 50)  # two clusters: IQR / 1.349 = 1.48, std 1
    robust = Standardizer.fit(torch.from_numpy(x), robust=True)
    assert robust.std[0] == pytest.approx(0.3)  # the std of 10% ones
    assert robust.std[1] == 1.0  # constant: left as is
    assert robust.std[2] == pytest.approx(1.0)  # the std, not the IQR's 1.48
    restored = Standardizer.from_dict(robust.to_dict())  # saved as the mean / std lists, no new keys
    torch.testing.assert_close(restored.transform(torch.from_numpy(x)), robust.transform(torch.from_numpy(x)))


def test_the_detector_scales_rows_robustly_once_on_all_training_rows(contaminated):
    """``auto`` is robust for rows; the trimmed refits do not refit the scaler on the rows they keep."""
    det = tiny(trim=0.25, trim_rounds=2).fit(contaminated)
    assert det.settings_.standardize == "robust" and det.n_fits_ == 3
    np.testing.assert_allclose(det.scaler_.mean.numpy(), np.median(contaminated, axis=0), rtol=1e-5)
    standard = tiny(trim=0.25, trim_rounds=2, standardize="standard").fit(contaminated)
    np.testing.assert_allclose(standard.scaler_.mean.numpy(), contaminated.mean(axis=0), rtol=1e-4, atol=1e-6)
    assert tiny(standardize=True).fit(contaminated).settings_.standardize == "standard"
    unscaled = tiny(standardize="none").fit(contaminated)
    assert unscaled.scaler_ is None and unscaled.settings_.standardize == "none"
    images = np.random.default_rng(0).random((64, 1, 4, 4)).astype(np.float32)
    assert tiny().fit(images).settings_.standardize == "none"


def test_a_saved_detector_keeps_its_robust_scaler(contaminated, tmp_path):
    det = tiny().fit(contaminated)
    det.save(tmp_path / "det")
    loaded = load_detector(tmp_path / "det")
    torch.testing.assert_close(loaded.scaler_.mean, det.scaler_.mean)
    np.testing.assert_array_equal(loaded.decision_function(contaminated), det.decision_function(contaminated))


def test_an_unknown_scaling_is_refused_by_name(contaminated):
    with pytest.raises(AnomalyInputError, match=r"standardize: expected robust, standard, none, True or "
                                                r"False, got 'minmax'"):
        tiny(standardize="minmax").fit(contaminated)
