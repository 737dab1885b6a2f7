"""The trainer under the threads policy: the count is recorded, and auto learns the model one
thread learns."""

import json

import pytest
import torch

import vaekit
from vaekit.threads import THREADS_VARIABLE

SMALL_MODEL = {"latent_dim": 4, "hidden": [32]}
DATA = {"source": "digits", "limit": 300}


@pytest.fixture(autouse=True)
def no_variable(monkeypatch):
    monkeypatch.delenv(THREADS_VARIABLE, raising=False)


def _run(tmp_path, name, threads):
    run = vaekit.train(DATA, SMALL_MODEL, {"epochs": 2, "batch_size": 32, "threads": threads}, tmp_path / name,
                       progress=False)
    rows = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    return run.model.state_dict(), rows


def test_auto_and_one_thread_train_the_same_model_bit_for_bit(tmp_path):
    """auto resolves to one thread for a model this small (its step's work is far below
    WORK_PER_THREAD), so the weights are identical, not merely close."""
    before = torch.get_num_threads()
    one, one_rows = _run(tmp_path, "one", 1)
    auto, auto_rows = _run(tmp_path, "auto", "auto")
    assert [r["threads"] for r in one_rows] == [r["threads"] for r in auto_rows] == [1, 1]
    for (name, a), b in zip(one.items(), auto.values(), strict=True):
        assert torch.equal(a, b), name
    assert vaekit.open_run(tmp_path / "auto").train_config.threads == "auto"  # the setting, as asked
    assert torch.get_num_threads() == before  # vaekit.train gives the caller's count back


def test_two_threads_learn_the_same_model_within_rounding(tmp_path):
    """A count above one splits the matrix products' sums differently: the same model up to
    float rounding, not bit for bit."""
    one, _ = _run(tmp_path, "one", 1)
    two, rows = _run(tmp_path, "two", 2)
    assert rows[-1]["threads"] == 2
    for (name, a), b in zip(one.items(), two.values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4, msg=name)


def test_the_variable_sets_auto(tmp_path, monkeypatch):
    monkeypatch.setenv(THREADS_VARIABLE, "2")
    _, rows = _run(tmp_path, "env", "auto")
    assert rows[-1]["threads"] == 2


def test_the_command_line_trains_the_same_model_with_threads_1_and_auto(tmp_path):
    from vaekit.cli import main

    quick = ["train", "digits", "--epochs", "2", "--latent-dim", "3", "--hidden", "32", "--limit", "200", "--quiet"]
    for setting in ("1", "auto"):
        assert main([*quick, "--threads", setting, "--out", str(tmp_path / setting)]) == 0
    one, auto = vaekit.load(tmp_path / "1").state_dict(), vaekit.load(tmp_path / "auto").state_dict()
    rows = (tmp_path / "auto" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["threads"] for r in rows] == [1, 1]  # a step this small: auto is one thread
    for (name, a), b in zip(one.items(), auto.values(), strict=True):
        assert torch.equal(a, b), name


def test_auto_on_free_cores_with_enough_work_takes_them_and_learns_the_same_model(tmp_path, monkeypatch):
    """Where auto does choose more than one thread (free cores, a step worth splitting), the
    model is the one-thread model up to float rounding."""
    from vaekit import threads

    monkeypatch.setattr(threads, "cores", lambda: 2)
    monkeypatch.setattr(threads, "busy_cores", lambda *a, **k: 0.0)
    monkeypatch.setattr(threads, "WORK_PER_THREAD", 1.0)  # any step is worth a second thread
    one, _ = _run(tmp_path, "one", 1)
    auto, rows = _run(tmp_path, "auto", "auto")
    assert [r["threads"] for r in rows] == [2, 2]
    for (name, a), b in zip(one.items(), auto.values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4, msg=name)
