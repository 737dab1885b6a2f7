"""What `vaekit anomaly fit` and `vaekit anomaly score` do, as Python functions.

The CLI only parses flags and prints; everything it does can be done from here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from vaekit.anomaly import writers as outputs
from vaekit.anomaly.arrays import column_order
from vaekit.anomaly.detector import VAEAnomalyDetector
from vaekit.anomaly.errors import AnomalyInputError
from vaekit.anomaly.inputs import Examples, read_examples, read_label_file
from vaekit.anomaly.storage import load_detector, save_detector
from vaekit.atomic import building
from vaekit.data.bundle import DataInfo
from vaekit.data.config import DataConfig


def fit(data: str | Path, out: str | Path, params: dict[str, Any] | None = None, *, label_column: str | None = None,
        image_size: int | None = None, channels: int | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Fit a detector on the (normal) data at ``data`` and save it in directory ``out``.

    ``params`` are ``VAEAnomalyDetector`` parameters; ``label_column`` is a table column
    left out of the features (and out of later scored tables). Data and parameters are
    checked before ``out`` is touched. Returns a summary.
    """
    from vaekit.training.runs import check_output_directory, prepare_directory

    out = Path(out)
    check_output_directory(out, overwrite=overwrite, what="detector directory")
    detector = VAEAnomalyDetector(**(params or {}))
    detector._check_params()  # settings first: a typo should not wait for the data to be read
    examples = read_examples(data, label_column=label_column, image_size=image_size, channels=channels)
    detector.fit(examples.x, feature_names=examples.columns)
    # a detector that replaces one is written beside it and swapped in once complete
    with building(prepare_directory(out, overwrite=overwrite, what="detector directory"), out) as build_dir:
        save_detector(detector, build_dir, data=_data_section(examples, detector, label_column, image_size, channels))
    return {
        "detector": str(out),
        "data": examples.source,
        "examples": len(examples.x),
        "shape": list(detector.input_shape_),
        "score": detector.score_,
        "fits": detector.n_fits_,
        "scoring_fits": len(detector.fits_),
        "threshold": detector.threshold_,
        "threshold_source": detector.threshold_source_,
        "flagged_in_training": int(detector.labels_.sum()),
        "flagged_fraction_in_training": float(detector.labels_.mean()),
    }


def _data_section(examples: Examples, detector: VAEAnomalyDetector, label_column: str | None,
                  image_size: int | None, channels: int | None) -> dict[str, Any]:
    """The "data" part of a run's config.json, so the run tools (`vaekit info`, `sample`) open it."""
    likelihood = detector.model_.config.likelihood
    model_space = detector.transform_input(examples.x)
    info = DataInfo(name=Path(examples.source).name, shape=detector.input_shape_, kind=examples.kind,
                    value_range=(float(model_space.min()), float(model_space.max())), likelihood=likelihood,
                    columns=examples.columns, source=examples.source)
    config = DataConfig(source=examples.source, label_column=label_column, image_size=image_size, channels=channels)
    return {"config": config.to_dict(), "info": info.to_dict(),
            "standardizer": detector.scaler_.to_dict() if detector.scaler_ is not None else None}


def score(run: str | Path, data: str | Path, *, labels: str | None = None, out: str | Path | None = None,
          threshold: float | None = None, top: int = 32) -> dict[str, Any]:
    """Score the data at ``data`` with the detector in ``run``; write the CSV and figures into ``out``.

    ``labels``: a table column or a label file (1 = anomaly), for ROC / PR curves.
    ``threshold`` overrides the detector's own. Returns the summary figures.
    """
    run = Path(run)
    detector = load_detector(run)
    data_section = _fitted_data(run)
    ignore = data_section.get("label_column")
    label_file = labels is not None and Path(labels).is_file()
    column = labels if labels is not None and not label_file else None
    path = Path(data).expanduser()
    if column is not None and path.is_dir():
        raise AnomalyInputError(f"--labels: '{labels}' is not a file, and '{data}' is an image folder, not a table "
                                "with a label column")
    examples = read_examples(data, label_column=column, shape=detector.input_shape_, ignore_column=ignore)
    x = examples.x
    expected = getattr(detector, "feature_names_in_", None)
    if expected is not None and examples.columns is not None:
        x = x[:, column_order(examples.columns, list(expected), f"'{examples.source}'")]
    try:
        scores = detector.decision_function(x)
    except AnomalyInputError as exc:  # name the file rather than "X"
        raise AnomalyInputError(f"'{examples.source}': {str(exc).removeprefix('X: ').removeprefix('X ')}") from None
    y = examples.labels if column is not None else (read_label_file(labels, len(x)) if label_file else None)
    thr = detector.threshold_ if threshold is None else float(threshold)
    flags = (scores > thr).astype(np.int64)

    out = Path(out) if out is not None else run / f"scores-{_stem(examples.source)}"
    out.mkdir(parents=True, exist_ok=True)
    files = {"scores": outputs.write_scores_csv(out / outputs.SCORES_CSV, scores, flags, names=examples.names,
                                                labels=y),
             "histogram": outputs.write_histogram(out / outputs.HISTOGRAM_PNG, scores, thr,
                                                  score_name=detector.score_, labels=y)}
    if examples.is_image:
        files["most_anomalous"] = outputs.write_top_grid(out / outputs.TOP_PNG, x, scores, n=top)
    summary: dict[str, Any] = {
        "detector": str(run), "data": examples.source, "examples": len(x), "score": detector.score_,
        "threshold": thr, "flagged": int(flags.sum()), "flagged_fraction": float(flags.mean()),
    }
    if y is not None:
        figures = outputs.write_curves(out / outputs.CURVES_PNG, scores, y)
        files["curves"] = out / outputs.CURVES_PNG
        summary.update({k: (None if math.isnan(v) else v) for k, v in figures.items()})
        summary["anomalies_labelled"] = int(y.sum())
    summary["files"] = {k: str(v) for k, v in files.items()}
    return summary


def _fitted_data(run: Path) -> dict[str, Any]:
    from vaekit.serialization import CONFIG_FILE, read_json

    return read_json(run / CONFIG_FILE).get("data", {}).get("config", {})


def _stem(source: str) -> str:
    name = Path(source).name
    for suffix in (".gz", ".csv", ".tsv", ".npy", ".npz", ".parquet", ".pq"):
        name = name.removesuffix(suffix)
    return name or "data"

