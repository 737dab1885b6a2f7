"""How many CPU threads torch computes with: one policy for every entry point.

A setting is ``auto`` (the default everywhere) or a count N. ``--threads N`` on a command,
``threads=`` in the Python API (``TrainConfig.threads``, ``VAEAnomalyDetector(threads=)``)
give it; ``auto`` first reads the ``VAEKIT_THREADS`` environment variable (a count, or
``auto``), so an explicit setting beats the variable and the variable beats the rule.

The rule of ``auto``: **one thread unless the work per step is large and cores are free now.**
With more compute threads than free cores, every parallel region waits for a descheduled
thread, so a small network on a busy machine runs many times slower with more threads than
with one (docs/guides/training.md, "CPU threads"), while a second thread on a quiet machine
gains little on these small networks. So ``auto`` takes ``min(free cores, work / WORK_PER_THREAD)``
threads, at least one: the work is an estimate of the floating-point operations of one
training step (``step_work``); the free cores are the cores this process may run on
(``os.sched_getaffinity``) less the cores other work keeps busy *now*, measured by watching
those cores for ``WINDOW`` seconds (``/proc/stat``: the share of the time they were not
idle, less this process's own CPU time). A process that is sleeping, waiting for input or
has just finished keeps no core busy and is not counted (the load average counted such
processes for a minute after they stopped, so a quiet machine looked busy). Where the work
is unknown (commands that only run a trained model), ``auto`` is one thread; where
``/proc/stat`` cannot be read (not Linux), the 1-minute load average stands in.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator
from typing import Any

import torch

from vaekit.errors import VaekitError

#: The environment variable ``auto`` reads first.
THREADS_VARIABLE = "VAEKIT_THREADS"
AUTO = "auto"
#: Floating-point operations per training step each thread must get before another one
#: pays: about 5 ms of single-thread fp32 work, against the parallel regions' overhead of a
#: few microseconds each over the hundred-odd ops of a step.
WORK_PER_THREAD = 2.5e8
#: Seconds ``auto`` watches the cores (``/proc/stat``) to see how busy other work keeps them.
WINDOW = 0.1


def parse_threads(value: Any, name: str = "threads") -> str | int:
    """``auto`` or a count of at least 1 (a count may come as text: ``"4"``); else a one-line error."""
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    try:
        count = int(value.strip()) if isinstance(value, str) else value
    except ValueError:
        count = None
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise VaekitError(f"{name}: expected auto or a count of at least 1, got {value!r}")
    return count


def affinity() -> set[int]:
    """The CPUs this process may run on."""
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return set(range(os.cpu_count() or 1))


def cores() -> int:
    """How many cores this process may run on."""
    return len(affinity())


def _cpu_seconds(cpus: set[int]) -> tuple[float, float] | None:
    """(busy, all) seconds the CPUs ``cpus`` have counted since boot (``/proc/stat``: idle
    and waiting for I/O are not busy); ``None`` where it cannot be read."""
    busy = total = 0
    try:
        with open("/proc/stat", encoding="ascii") as f:
            for line in f:
                name, *values = line.split()
                if not (name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus):
                    continue
                # user nice system idle iowait irq softirq steal (guest time is inside user)
                ticks = [int(v) for v in values[:8]]
                total += sum(ticks)
                busy += sum(ticks) - ticks[3] - ticks[4]
    except (OSError, ValueError, IndexError):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    return (busy / hz, total / hz) if total else None


def _own_cpu_seconds() -> float:
    """CPU seconds of every thread of this process so far."""
    return time.process_time()


def busy_cores(cpus: set[int] | None = None, window: float = WINDOW) -> float:
    """Cores of ``cpus`` (default: this process's) other work keeps busy now: their share of
    ``window`` seconds spent not idle, less this process's own CPU time over it, times their
    count. Sleeping and waiting processes count for nothing. Without ``/proc/stat`` the
    1-minute load average stands in."""
    cpus = affinity() if cpus is None else cpus
    before, own_before = _cpu_seconds(cpus), _own_cpu_seconds()
    if before is None:
        try:
            return min(float(len(cpus)), os.getloadavg()[0])
        except (AttributeError, OSError):
            return 0.0
    time.sleep(window)
    after, own_after = _cpu_seconds(cpus), _own_cpu_seconds()
    if after is None or after[1] <= before[1]:
        return 0.0
    busy = after[0] - before[0] - (own_after - own_before)
    return min(1.0, max(0.0, busy / (after[1] - before[1]))) * len(cpus)


def step_work(model: torch.nn.Module, batch_size: int) -> float:
    """Floating-point operations of one training step, for a dense network: 2 per weight and
    example forward, 4 backward. Convolutions reuse weights, so theirs is underestimated, and
    ``auto`` errs towards one thread."""
    return 6.0 * batch_size * sum(p.numel() for p in model.parameters())


def resolve_threads(setting: Any = AUTO, *, work: float | None = None) -> int:
    """The thread count ``setting`` means here and now (see the module's docstring);
    ``work``: ``step_work`` of what will run, ``None`` when unknown."""
    setting = parse_threads(AUTO if setting is None else setting)
    if setting == AUTO:
        setting = parse_threads(os.environ.get(THREADS_VARIABLE, AUTO), THREADS_VARIABLE)
    if setting != AUTO:
        return setting
    if work is None or work < 2 * WORK_PER_THREAD or cores() < 2:
        return 1  # nothing to measure: small work, or one core, takes one thread anywhere
    free = cores() - busy_cores()
    return max(1, min(math.floor(free + 0.5), int(work // WORK_PER_THREAD)))


def use_threads(setting: Any = AUTO, *, work: float | None = None) -> int:
    """Set torch's compute threads for this process by the policy; returns the count."""
    count = resolve_threads(setting, work=work)
    if count != torch.get_num_threads():
        torch.set_num_threads(count)
    return count


@contextlib.contextmanager
def kept() -> Iterator[None]:
    """Give torch's thread count back as it was when the block ends (an API call leaves the
    caller's process as it found it)."""
    before = torch.get_num_threads()
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


@contextlib.contextmanager
def used(setting: Any = AUTO, *, work: float | None = None) -> Iterator[int]:
    """``use_threads`` for the block (yielding the count), then torch's count back as it was."""
    with kept():
        yield use_threads(setting, work=work)
