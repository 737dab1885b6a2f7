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


def _readings(monkeypatch, cpu, own):
    """Fake ``/proc/stat`` (busy, all seconds of the watched CPUs) and this process's CPU seconds,
    one reading before the window and one after it; a load average that would say "busy"."""
    monkeypatch.setattr(threads, "_cpu_seconds", lambda cpus: cpu.pop(0))
    monkeypatch.setattr(threads, "_own_cpu_seconds", lambda: own.pop(0))
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (8.0, 8.0, 8.0))


def test_busy_cores_are_the_share_of_the_window_other_work_kept_them_from_idling(monkeypatch):
    """Two cores watched for 1 s (2 s of CPU time): what the load average says plays no part."""
    _readings(monkeypatch, [(100.0, 1000.0), (100.0, 1002.0)], [5.0, 5.0])  # idle throughout
    assert threads.busy_cores({0, 1}, window=0) == 0.0
    _readings(monkeypatch, [(100.0, 1000.0), (101.5, 1002.0)], [5.0, 5.0])  # 1.5 of 2 core-seconds busy
    assert threads.busy_cores({0, 1}, window=0) == pytest.approx(1.5)
    _readings(monkeypatch, [(100.0, 1000.0), (101.5, 1002.0)], [5.0, 6.0])  # 1 s of it was this process
    assert threads.busy_cores({0, 1}, window=0) == pytest.approx(0.5)


def test_a_machine_whose_cores_were_idle_just_now_gets_the_threads_the_work_asks_for(monkeypatch):
    """The reported case: the load average still counts processes that have finished or are
    waiting (a benchmark's idle contenders), yet the cores are free now."""
    monkeypatch.setattr(threads, "cores", lambda: 2)
    monkeypatch.setattr(threads, "affinity", lambda: {0, 1})
    monkeypatch.setattr(threads.time, "sleep", lambda seconds: None)
    _readings(monkeypatch, [(100.0, 1000.0), (100.02, 1000.2)], [5.0, 5.0])  # 10% of the window busy
    assert resolve_threads("auto", work=LARGE) == 2


def test_without_proc_stat_the_load_average_stands_in(monkeypatch):
    monkeypatch.setattr(threads, "_cpu_seconds", lambda cpus: None)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (1.25, 0.0, 0.0))
    assert threads.busy_cores({0, 1, 2, 3}, window=0) == 1.25


def test_auto_picks_one_thread_when_other_processes_keep_the_cores_busy():
    """One CPU-bound process per core of this process's affinity (they inherit it), started and
    stopped by the test: the cores are measured busy now and auto takes one thread."""
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
