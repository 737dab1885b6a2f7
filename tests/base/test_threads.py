"""The threads policy (vaekit.threads): a count or VAEKIT_THREADS wins, auto is one thread for
small work or busy cores, more only for large work on free cores."""

import subprocess
import sys
import time

import pytest

from vaekit import threads
from vaekit.errors import VaekitError
from vaekit.threads import THREADS_VARIABLE, WORK_PER_THREAD, resolve_threads
from vaekit.training import TrainConfig

LARGE = 1e15  # work per step that would take every free core


@pytest.fixture(autouse=True)
def no_variable(monkeypatch):
    monkeypatch.delenv(THREADS_VARIABLE, raising=False)


def test_a_count_beats_the_variable_and_the_variable_beats_auto(monkeypatch):
    assert resolve_threads(3) == resolve_threads("3") == 3
    monkeypatch.setenv(THREADS_VARIABLE, "2")
    assert resolve_threads("auto") == resolve_threads(None) == 2
    assert resolve_threads(4, work=1.0) == 4


@pytest.mark.parametrize("bad", [0, -1, "many", 1.5, True])
def test_a_bad_setting_is_one_line(bad):
    with pytest.raises(VaekitError, match=r"^threads: expected auto or a count of at least 1, got "):
        resolve_threads(bad)
    with pytest.raises(VaekitError, match=r"^threads: expected "):  # a float or a bool: the typed check's line
        TrainConfig(threads=bad)


def test_a_bad_variable_names_the_variable(monkeypatch):
    monkeypatch.setenv(THREADS_VARIABLE, "lots")
    with pytest.raises(VaekitError, match=f"^{THREADS_VARIABLE}: expected auto or a count"):
        resolve_threads("auto")


def test_small_or_unknown_work_takes_one_thread_even_on_free_cores(monkeypatch):
    monkeypatch.setattr(threads, "cores", lambda: 8)
    monkeypatch.setattr(threads, "busy_cores", lambda: 0.0)
    assert resolve_threads("auto") == 1
    assert resolve_threads("auto", work=WORK_PER_THREAD) == 1


def test_large_work_takes_the_free_cores(monkeypatch):
    monkeypatch.setattr(threads, "cores", lambda: 8)
    monkeypatch.setattr(threads, "busy_cores", lambda: 2.8)
    assert resolve_threads("auto", work=LARGE) == 5
    assert resolve_threads("auto", work=3.5 * WORK_PER_THREAD) == 3  # each thread gets enough work


@pytest.mark.skipif(threads.cores() < 2, reason="one core: auto takes one thread whether or not it is busy")
def test_auto_picks_one_thread_when_other_processes_keep_the_cores_busy():
    """The cores kept busy by CPU-bound processes this test starts and stops: auto must see them
    (the runnable tasks right now, not only the 1-minute load average)."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(threads.cores())]
    try:
        deadline = time.monotonic() + 10
        while threads.busy_cores() < threads.cores() - 0.5 and time.monotonic() < deadline:
            time.sleep(0.1)  # the spinners' interpreters starting up
        assert threads.busy_cores() >= threads.cores() - 0.5
        assert resolve_threads("auto", work=LARGE) == 1
    finally:
        for p in spinners:
            p.kill()
        for p in spinners:
            p.wait()
