"""Experiment tracking (``--log``): what a run writes to TensorBoard and MLflow, read back with
each library's own reader; a missing extra is refused before training; a failing tracker
never stops a run."""

import json
import sys

import pytest

import vaekit
from vaekit.cli import main
from vaekit.errors import VaekitError
from vaekit.training import TrainConfig, tracking

SMALL_MODEL = {"latent_dim": 4, "hidden": [32]}
DATA = {"source": "digits", "limit": 200}


def _event_accumulator(log_dir):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    events = accumulator.EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    return events


def test_tensorboard_holds_every_metric_the_settings_and_the_pictures(tmp_path):
    pytest.importorskip("torch.utils.tensorboard")
    from tensorboard.plugins.hparams import plugin_data_pb2

    run = vaekit.train(DATA, SMALL_MODEL, {"epochs": 3, "loggers": "tensorboard"}, tmp_path / "run", progress=False)
    events = _event_accumulator(run.path / "tensorboard")
    for row in run.metrics:
        for key, value in tracking.metric_scalars(row).items():
            logged = {e.step: e.value for e in events.Scalars(key)}
            assert logged[row["epoch"]] == pytest.approx(value, rel=1e-6), key
    assert [e.step for e in events.Scalars("val_kl_per_dim/3")] == [1, 2, 3]
    assert events.Scalars("test_elbo")[0].value == pytest.approx(run.summary["test"]["elbo"], rel=1e-6)
    assert {"samples", "reconstructions"} <= set(events.Tags()["images"])
    assert events.Images("samples")[0].width > 0
    hparams = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(hparams["_hparams_/session_start_info"])
    params = start.session_start_info.hparams
    assert params["train.epochs"].number_value == 3
    assert params["model.latent_dim"].number_value == 4
    assert params["data.config.source"].string_value == "digits"


@pytest.mark.filterwarnings("error:--log mlflow")
def test_mlflow_run_is_written_and_read_back_from_its_store_inside_the_run(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    pytest.importorskip("sqlalchemy")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "vaekit-test")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    run = vaekit.train(DATA, SMALL_MODEL, {"epochs": 2, "loggers": "mlflow"}, tmp_path / "runs" / "run",
                       progress=False)
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["run"]  # nothing beside the user's run
    # a run that replaces it is built beside it and swapped in: its store and pictures end up inside it
    run = vaekit.train(DATA, SMALL_MODEL, {"epochs": 2, "loggers": "mlflow"}, tmp_path / "runs" / "run",
                       overwrite=True, progress=False)
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["run"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]
    client = MlflowClient(tracking_uri=f"sqlite:///{run.path / 'mlflow' / 'mlflow.db'}")  # the default store
    run_id = json.loads((run.path / "mlflow.json").read_text())["run_id"]
    logged = client.get_run(run_id)
    assert logged.info.status == "FINISHED" and logged.info.run_name == "run"
    assert client.get_experiment(logged.info.experiment_id).name == "vaekit-test"
    assert logged.data.params["train.epochs"] == "2" and logged.data.params["model.hidden"] == "[32]"
    history = {m.step: m.value for m in client.get_metric_history(run_id, "val_elbo")}
    assert history == pytest.approx({r["epoch"]: r["val_elbo"] for r in run.metrics}, rel=1e-6)
    assert logged.data.metrics["test_elbo"] == pytest.approx(run.summary["test"]["elbo"], rel=1e-6)
    pictures = {a.path for a in client.list_artifacts(run_id, "pictures")}
    assert {"pictures/samples.png", "pictures/reconstructions.png"} <= pictures
    assert (run.path / "mlflow" / "artifacts").is_dir()
    # a moved run continues in its own store; its pictures are never written to where it was
    moved = (tmp_path / "runs" / "run").rename(tmp_path / "runs" / "moved")
    with pytest.warns(UserWarning, match="--log mlflow: logging .* outside the run"):
        vaekit.resume(moved, epochs=3, progress=False)
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["moved"]
    client = MlflowClient(tracking_uri=f"sqlite:///{moved / 'mlflow' / 'mlflow.db'}")
    assert sorted(m.step for m in client.get_metric_history(run_id, "train_loss")) == [1, 2, 3]


def test_mlflow_respects_the_tracking_uri_and_a_resume_continues_the_run(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    pytest.importorskip("sqlalchemy")
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # MLflow's own default artifact root (./mlruns) for a store it is given
    uri = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    run = vaekit.train(DATA, SMALL_MODEL, {"epochs": 1, "loggers": "mlflow"}, tmp_path / "run", progress=False)
    vaekit.resume(run.path, epochs=2, progress=False)
    assert not (tmp_path / "mlflow.db").exists()
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1  # the resumed run logged into the same MLflow run
    steps = [m.step for m in client.get_metric_history(runs[0].info.run_id, "train_loss")]
    assert sorted(steps) == [1, 2]


@pytest.mark.filterwarnings("error:--log mlflow")
def test_a_run_saved_before_the_store_moved_inside_it_resumes_in_its_old_store(tmp_path, monkeypatch):
    """Runs trained before the local store moved into RUN/mlflow kept it beside the run
    (runs/mlflow.db) and recorded no URI: a resume continues that MLflow run there, and makes
    no new store in the run that would not know the run's id."""
    pytest.importorskip("mlflow")
    pytest.importorskip("sqlalchemy")
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    old_store = f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", old_store)  # where the former default put it
    run = vaekit.train(DATA, SMALL_MODEL, {"epochs": 1, "loggers": "mlflow"}, tmp_path / "runs" / "run",
                       progress=False)
    record = run.path / "mlflow.json"
    run_id = json.loads(record.read_text())["run_id"]
    record.write_text(json.dumps({"run_id": run_id, "tracking_uri": None}) + "\n")  # as the former default wrote it
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    vaekit.resume(run.path, epochs=2, progress=False)
    assert not (run.path / "mlflow").exists()
    steps = [m.step for m in MlflowClient(tracking_uri=old_store).get_metric_history(run_id, "train_loss")]
    assert sorted(steps) == [1, 2]


def test_a_missing_extra_is_refused_before_anything_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow now fails
    with pytest.raises(VaekitError, match=r"track extra .*pip install 'vaekit\[track\]'"):
        vaekit.train(DATA, SMALL_MODEL, {"epochs": 1, "loggers": "mlflow"}, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
    assert main(["train", "digits", "--limit", "200", "--log", "mlflow", "--out", str(tmp_path / "cli")]) == 2
    assert "track extra" in capsys.readouterr().err
    assert not (tmp_path / "cli").exists()


def test_loggers_are_checked_by_name():
    assert tracking.parse_loggers("tensorboard, MLflow,none") == ["tensorboard", "mlflow"]
    assert tracking.parse_loggers("none") == []
    with pytest.raises(VaekitError, match="loggers: unknown 'wandb'"):
        TrainConfig(loggers="wandb")


class _Broken:
    def __init__(self, run_dir, *, resume=False):
        pass

    def log_params(self, params):
        pass

    def log_metrics(self, step, metrics):
        raise OSError("disk full")

    def log_image(self, name, path, step):
        pass

    def close(self, status="FINISHED"):
        pass


def test_a_failing_tracker_warns_once_and_the_run_completes(tmp_path, monkeypatch):
    monkeypatch.setitem(tracking.LOGGERS, "broken", tracking.registry.Backend(_Broken, lambda: (), "a broken one"))
    with pytest.warns(UserWarning, match="--log broken: logging epoch 1 failed .*disk full") as caught:
        run = vaekit.train(DATA, SMALL_MODEL, {"epochs": 3, "loggers": "broken"}, tmp_path / "run", progress=False)
    assert sum("--log broken" in str(w.message) for w in caught) == 1
    assert [r["epoch"] for r in run.metrics] == [1, 2, 3]
