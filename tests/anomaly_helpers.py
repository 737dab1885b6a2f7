"""Quick anomaly detectors for the tests: few epochs, a small network."""

from typing import Any

from vaekit.anomaly import VAEAnomalyDetector

#: A quick fit: parameters and preset fields together (``tiny`` sorts them).
TINY = {"epochs": 2, "latent_dim": 2, "hidden": (16,), "batch_size": 32}
PARAMS = frozenset(VAEAnomalyDetector().get_params())


def tiny(**changes: Any) -> VAEAnomalyDetector:
    """A detector of ``TINY`` with ``changes``: the detector's parameters as such, the preset fields
    (``hidden``, ``trim``, ``family``...) in its ``model=`` override."""
    given = {**TINY, **changes}
    fields = {name: value for name, value in given.items() if name not in PARAMS}
    return VAEAnomalyDetector(**{name: value for name, value in given.items() if name in PARAMS},
                              model=fields or None)
