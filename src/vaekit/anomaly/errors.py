"""The anomaly detector's input error: a ``VaekitError`` that is also a ``ValueError``.

The CLI prints it as one line like every ``VaekitError``; scikit-learn code (and its
estimator checks) expects bad input to raise ``ValueError``, so this one error serves both.
"""

from __future__ import annotations

from vaekit.errors import VaekitError


class AnomalyInputError(VaekitError, ValueError):
    """Bad data or a bad setting given to the anomaly detector, stated in one line."""
