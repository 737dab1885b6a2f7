"""A detector that leaves its latent unused says so once (``collapsed_``, a warning with the remedy)."""

import warnings

import numpy as np
import pytest

from anomaly_helpers import tiny
from vaekit.anomaly import VAEAnomalyDetector, load_detector


def sign_flip_table(n: int, seed: int = 0, flip: bool = False) -> np.ndarray:
    """Four columns, b = 2 x a (+ a little noise), c and d independent; ``flip``: b = -2 x a (the anomalies)."""
    rng = np.random.default_rng(seed)
    a, c, d = rng.normal(size=(3, n))
    b = (-2.0 if flip else 2.0) * a + 0.05 * rng.normal(size=n)
    return np.c_[a, b, c, d].astype(np.float32)


def test_a_detector_warns_when_its_latent_goes_unused_on_the_sign_flip_table(tmp_path):
    """A KL weight of 3 (the tables preset's before) keeps the KL at ~0 on every dimension there."""
    with pytest.warns(UserWarning, match=r"left its latent unused \(KL below 0.01 nats on every dimension\).*"
                                         r"try a weaker KL weight \(model=\{'beta': 0.1\}\)") as caught:
        det = VAEAnomalyDetector(epochs=20, threads=1, model={"beta": 3.0}).fit(sign_flip_table(400))
    assert det.collapsed_ and sum("latent unused" in str(w.message) for w in caught) == 1  # once
    assert load_detector(det.save(tmp_path / "det")).collapsed_


def test_the_default_detector_uses_its_latent_on_the_sign_flip_table():
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        det = VAEAnomalyDetector(epochs=20, threads=1).fit(sign_flip_table(400))
    assert not det.collapsed_


def test_a_detector_that_uses_its_latent_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        det = tiny(epochs=20, beta=0.1, trim=0.0).fit(sign_flip_table(400))
    assert not det.collapsed_
