"""How many CPU threads torch computes with: one policy for every entry point.

A setting is ``auto`` (the default everywhere) or a count N. ``--threads N`` on a command,
``threads=`` in the Python API (``TrainConfig.threads``, ``VAEAnomalyDetector(threads=)``)
give it; ``auto`` first reads the ``VAEKIT_THREADS`` environment variable (a count, or
``auto``), so an explicit setting beats the variable and the variable beats the rule.

The rule of ``auto``: **one thread unless the work per step is large and cores are free.**
With more compute threads than free cores, every parallel region waits for a descheduled
thread: on a busy 2-core machine ``vaekit train digits --epochs 20`` took 31.7 s with torch's
two threads and 1.9 s with one (issue 33), while a second thread on a quiet machine gains
little on these small networks. So ``auto`` takes ``min(free cores, work / WORK_PER_THREAD)``
threads, at least one: free cores are the cores this process may run on
(``os.sched_getaffinity``) less the busier of the 1-minute load average and the runnable
tasks counted right now (``/proc/loadavg``, a few readings); the work is an estimate of the
floating-point operations of one training step (``step_work``). Where the work is unknown
(commands that only run a trained model), ``auto`` is one thread.
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
#: ``/proc/loadavg`` readings (``READ_EVERY`` seconds apart) for the runnable tasks right now.
READINGS, READ_EVERY = 5, 0.01


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


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def busy_cores() -> float:
    """Cores other work keeps busy: the larger of the 1-minute load average and the tasks
    runnable now (``/proc/loadavg``'s 4th field, less this process's reading thread), so a
    job that has just started counts as much as one running for minutes."""
    try:
        average = os.getloadavg()[0]
    except (AttributeError, OSError):
        average = 0.0
    runnable = []
    for i in range(READINGS):
        try:
            with open("/proc/loadavg") as f:
                runnable.append(int(f.read().split()[3].split("/")[0]) - 1)
        except (OSError, IndexError, ValueError):
            break
        if i + 1 < READINGS:
            time.sleep(READ_EVERY)
    now = sorted(runnable)[len(runnable) // 2] if runnable else 0  # the median reading
    return max(average, float(now))


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
    if work is None or work < 2 * WORK_PER_THREAD:
        return 1  # no load reading needed: small work takes one thread anywhere
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
