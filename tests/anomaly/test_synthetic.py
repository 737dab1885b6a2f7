"""Synthetic cases with a known answer (``vaekit.anomaly.synthetic``): the plain method that solves
each, and the default detector against it (within 0.02 of the best plain method, seed 0)."""

import warnings

import pytest
from sklearn.metrics import roc_auc_score

from vaekit.anomaly import VAEAnomalyDetector
from vaekit.anomaly.synthetic import CASES, plain_scores

#: The plain method each case is built for, and the AUROC it reaches at least (measured, minus a margin).
PLAIN = {"correlation": ("mahalanobis", 0.95), "manifold": ("pca", 0.98), "local": ("knn", 0.98),
         "heavy-tails": ("mcd", 0.98)}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    name = request.param
    x_train, x_test, y = CASES[name]()
    plain = {method: roc_auc_score(y, s) for method, s in plain_scores(x_train, x_test).items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a collapse warning is tested in test_collapse.py
        det = VAEAnomalyDetector(threads=1).fit(x_train)
    return name, plain, roc_auc_score(y, det.decision_function(x_test))


def test_the_plain_method_solves_its_case(case):
    name, plain, _ = case
    method, at_least = PLAIN[name]
    assert plain[method] >= at_least, plain


def test_the_default_detector_is_within_002_of_the_best_plain_method(case):
    name, plain, vaekit = case
    best = max(plain.values())
    assert vaekit >= best - 0.02, (name, vaekit, plain)
