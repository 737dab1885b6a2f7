"""``--log mlflow``: one MLflow run per vaekit run, through ``MlflowClient``.

The store is ``MLFLOW_TRACKING_URI`` when set (a server, a database: where the user names),
else a local one inside the run directory, ``RUN/mlflow/``: ``mlflow.db`` (SQLite) and
``artifacts/``, so nothing is written beside the user's files and the run carries its own
history (``mlflow ui --backend-store-uri sqlite:///runs/digits/mlflow/mlflow.db``). The
experiment is ``MLFLOW_EXPERIMENT_NAME`` or ``vaekit``. The MLflow run's id is kept in
``RUN/mlflow.json``, so a resumed run (and the pictures logged after training) continue it.
A run built beside the one it replaces records the artifact folder of its final place
(``atomic.final_place``), where its pictures are logged once it is swapped in.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from vaekit.atomic import atomic_write_text, final_place
from vaekit.errors import VaekitError
from vaekit.extras import require

#: The modules this backend needs; the local store also needs SQLAlchemy and Alembic.
REQUIRES = ("mlflow",)
LOCAL_STORE_REQUIRES = ("sqlalchemy", "alembic")
RUN_FILE = "mlflow.json"
#: The local store's folder inside the run directory.
STORE_DIR = "mlflow"
DEFAULT_EXPERIMENT = "vaekit"
BATCH = 100  # MLflow takes at most 100 params and 1000 metrics per call


def requirements() -> tuple[str, ...]:
    return REQUIRES + (() if os.environ.get("MLFLOW_TRACKING_URI") else LOCAL_STORE_REQUIRES)


def local_store(run_dir: Path) -> tuple[str, str]:
    """The default tracking URI and artifact root: ``RUN/mlflow/`` (the artifacts where the run
    will be once built: ``atomic.final_place``)."""
    run_dir = Path(run_dir).resolve()
    (run_dir / STORE_DIR).mkdir(exist_ok=True)
    return f"sqlite:///{run_dir / STORE_DIR / 'mlflow.db'}", (final_place(run_dir) / STORE_DIR / "artifacts").as_uri()


def legacy_store(run_dir: Path) -> str | None:
    """The tracking URI of a run trained before the store moved inside it (``mlflow.db`` beside
    the run directory), when the run has no store of its own and that file is there: its
    MLflow run lives in it, so a resume continues it there rather than in a new, empty store
    that does not know the run's id."""
    run_dir = Path(run_dir).resolve()
    old = run_dir.parent / "mlflow.db"
    if (run_dir / STORE_DIR / "mlflow.db").exists() or not old.is_file():
        return None
    return f"sqlite:///{old}"


def _forget_store(uri: str) -> None:
    """Let go of what MLflow keeps of the store ``uri`` for the life of the process: one store
    object and one SQLAlchemy engine, with its SQLite connections, per URI. A run's local store
    goes with its run (deleted, or replaced by ``--overwrite``), and a connection kept open to
    the old file would read and write there; so each logger opens the file anew and lets go of
    it when done. (MLflow has no public call for this: where its internals differ, nothing is
    forgotten, as before.)"""
    try:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
        from mlflow.tracking._tracking_service.utils import _tracking_store_registry
    except ImportError:
        return
    engines = getattr(SqlAlchemyStore, "_engine_map", None)
    engine = engines.pop(uri, None) if isinstance(engines, dict) else None
    if engine is not None:
        engine.dispose()
    clear = getattr(getattr(_tracking_store_registry, "_get_store_with_resolved_uri", None), "cache_clear", None)
    if clear is not None:
        clear()


class MLflowLogger:
    def __init__(self, run_dir: Path, *, resume: bool = False) -> None:
        tracking = require("mlflow.tracking", "track", "--log mlflow")
        self.entities = require("mlflow.entities", "track", "--log mlflow")
        self.run_dir = Path(run_dir)
        record = self.run_dir / RUN_FILE
        saved = json.loads(record.read_text(encoding="utf-8")) if resume and record.is_file() else None
        uri = (saved or {}).get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI") or \
            (legacy_store(self.run_dir) if saved is not None else None)
        artifacts = None
        if not uri:
            uri, artifacts = local_store(self.run_dir)
            _forget_store(uri)
        self.local_uri = uri if artifacts is not None else None
        self.local_artifacts = artifacts  # None: a store the user names, its artifacts its own affair
        self.client = tracking.MlflowClient(tracking_uri=uri)
        if saved is not None:
            self.run_id = saved["run_id"]
            return
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME", DEFAULT_EXPERIMENT)
        experiment = self.client.get_experiment_by_name(name)
        experiment_id = (experiment.experiment_id if experiment is not None
                         else self.client.create_experiment(name, artifact_location=artifacts))
        run = self.client.create_run(experiment_id, run_name=self.run_dir.name,
                                     tags={"vaekit.run_dir": str(self.run_dir.resolve())})
        self.run_id = run.info.run_id
        # the default store's URI is not kept: it is found inside the run again (the run may move)
        atomic_write_text(record, json.dumps({"run_id": self.run_id,
                                              "tracking_uri": os.environ.get("MLFLOW_TRACKING_URI")}) + "\n")

    def _batches(self, items: list[Any], **kind: Any) -> None:
        for start in range(0, len(items), BATCH):
            self.client.log_batch(self.run_id, **{k: items[start:start + BATCH] for k in kind})

    def log_params(self, params: dict[str, bool | int | float | str]) -> None:
        Param = self.entities.Param
        self._batches([Param(k[:250], str(v)[:6000]) for k, v in params.items()], params=True)

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        Metric, now = self.entities.Metric, int(time.time() * 1000)
        self._batches([Metric(k, v, now, step) for k, v in metrics.items()], metrics=True)

    def log_image(self, name: str, path: Path, step: int) -> None:
        if self.local_artifacts is not None:
            where = self.client.get_run(self.run_id).info.artifact_uri
            if not where.startswith(self.local_artifacts + "/"):  # the run was moved: never write outside it
                raise VaekitError(f"the run's MLflow artifacts are recorded at {where}, outside the run (was it "
                                  "moved?); pictures not logged")
        self.client.log_artifact(self.run_id, str(path), artifact_path="pictures")

    def close(self, status: str = "FINISHED") -> None:
        # the name the run ends with (a replaced run is built under a temporary one)
        self.client.set_tag(self.run_id, "mlflow.runName", self.run_dir.name)
        self.client.set_tag(self.run_id, "vaekit.run_dir", str(self.run_dir.resolve()))
        self.client.set_terminated(self.run_id, status)
        if self.local_uri is not None:
            _forget_store(self.local_uri)
