"""What the commands share: the options every command spells the same way, small parsers of
flag values, and the two consoles.

Each shared option is declared here once: ``--out/-o`` (every command that writes a file or
a directory), ``--device`` (default ``auto``) and ``--threads`` (every command that runs a
model), ``--seed``. ``tests/cli/test_options.py`` checks that every command uses them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from vaekit import threads as threads_policy
from vaekit.atomic import check_new_files
from vaekit.errors import VaekitError

out_console = Console(soft_wrap=True, highlight=False)
err_console = Console(stderr=True, soft_wrap=True, highlight=False)

#: ``--device``'s default on every command: CUDA when torch sees a GPU, else the CPU.
DEFAULT_DEVICE = "auto"


def out(help: str) -> Any:
    """``--out/-o``, with this command's description of what it writes."""
    return typer.Option("--out", "-o", help=help)


#: ``--overwrite`` on every command that writes files the user names (``--out``).
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace the output file(s) if they exist.")]


def new_files(out: Path | None, overwrite: bool, *beside: Path) -> None:
    """The rule of every command that writes a file: ``--out`` (and the files written
    ``beside`` it) must not exist unless ``--overwrite``, and its folder must
    (``atomic.check_new_files``), checked before any work. ``None``: the command's default
    output in the run directory, under a name no file there has (``Run.new_output_paths``:
    ``samples-2.png`` beside the ``samples.png`` training wrote), so nothing is replaced."""
    if out is not None:
        check_new_files([out, *beside], overwrite=overwrite)


def writing(threads: str | None, out: Path | None, overwrite: bool, *beside: Path) -> None:
    """What every command that writes does first: apply ``--threads``, then check the files it
    will write (``new_files``), before any work."""
    use_threads(threads)
    new_files(out, overwrite, *beside)


def seed(help: str = "Random seed.", **extra: Any) -> Any:
    """``--seed``, with what this command seeds."""
    return typer.Option("--seed", help=help, **extra)


def device(**extra: Any) -> Any:
    """``--device``; its default is ``DEFAULT_DEVICE``."""
    return typer.Option("--device", help="auto (cuda when torch sees a GPU, else cpu), cpu, cuda or cuda:N.",
                        **extra)


def threads(**extra: Any) -> Any:
    """``--threads``: ``auto`` (the default) or a count, applied by ``use_threads``."""
    return typer.Option("--threads", metavar="auto|N",
                        help=f"CPU threads torch computes with: a count, or auto (the "
                             f"{threads_policy.THREADS_VARIABLE} variable if set, else one thread unless the work is "
                             "large and cores are free).",
                        **extra)


#: ``device: Device = DEFAULT_DEVICE`` on every command that runs a model where it can.
Device = Annotated[str, device()]
#: ``threads: Threads = "auto"`` on every command that runs a model; call ``use_threads`` first.
Threads = Annotated[str, threads()]
#: ``--json``: print one JSON object instead of the text summary.
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
#: The run directory most commands start from.
RunDir = Annotated[Path, typer.Argument(metavar="RUN", help="A run directory.")]


def device_or_none(name: str) -> str | None:
    """``--device`` for the APIs whose own default (``None``) means ``auto``."""
    return None if name == DEFAULT_DEVICE else name


def use_threads(setting: str | None) -> None:
    """Apply ``--threads`` by the policy of ``vaekit.threads`` (the work unknown here: ``auto``
    is one thread; the trainer resolves it again from the step's work)."""
    threads_policy.use_threads(setting)


# -- parsers of flag values -------------------------------------------------------------------

COLOR_CHANNELS = {"auto": None, "gray": 1, "rgb": 3}


def int_list(value: str | None, flag: str) -> list[int] | None:
    """``--hidden 512,256`` as ``[512, 256]``; positive integers only."""
    if value is None:
        return None
    try:
        items = [int(v) for v in value.replace(" ", "").split(",") if v]
    except ValueError:
        raise VaekitError(f"{flag}: expected comma-separated integers like 512,256, got '{value}'") from None
    if not items or min(items) < 1:
        raise VaekitError(f"{flag}: expected positive integers like 512,256, got '{value}'")
    return items


def names(value: str | None) -> list[str] | None:
    """``--properties logP,qed`` as a list of column names."""
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def color_channels(value: str | None) -> int | None:
    """``--color auto|gray|rgb`` as the data's channel count (``None``: as the images are)."""
    if value is None:
        return None
    if value not in COLOR_CHANNELS:
        raise VaekitError(f"--color: expected auto, gray or rgb, got '{value}'")
    return COLOR_CHANNELS[value]
