"""Anomaly detection with a VAE: fit on normal data, score new data, flag what is above a threshold.

```python
from vaekit.anomaly import VAEAnomalyDetector, load_detector
det = VAEAnomalyDetector(contamination=0.05).fit(x_train)   # arrays (N, D) or images (N, C, H, W)
det.decision_function(x)   # anomaly scores, higher = more anomalous
det.predict(x)             # 1 = anomaly, 0 = normal
det.save("runs/detector"); load_detector("runs/detector")
```

Modules, one job each: ``detector`` (the estimator), ``presets`` (every setting of a fit,
``IMAGES`` and ``TABLES``), ``settings`` (the checks of every parameter), ``fits`` (one fitted VAE and which
fits are averaged), ``scores`` (recon / elbo / nll / knn, through the model protocol),
``thresholds``, ``arrays`` (checking array input), ``inputs`` (image folders, arrays, tables
and label files), ``saved`` (a detector directory's files), ``storage`` (``save_detector`` /
``load_detector``), ``writers`` (CSV, histogram, image grid, ROC / PR curves), ``errors`` and
``commands`` (what the CLI's `vaekit anomaly` calls). Imports run one way: storage ->
detector -> saved, settings -> presets -> fits -> scores.
"""

from vaekit.anomaly.detector import VAEAnomalyDetector
from vaekit.anomaly.errors import AnomalyInputError
from vaekit.anomaly.scores import SCORES, anomaly_scores
from vaekit.anomaly.storage import load_detector, save_detector

__all__ = ["SCORES", "AnomalyInputError", "VAEAnomalyDetector", "anomaly_scores", "load_detector", "save_detector"]
