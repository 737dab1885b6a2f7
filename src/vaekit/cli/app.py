"""The ``vaekit`` command: a thin layer over the Python API (no logic of its own).

Each module of ``vaekit.cli`` holds one group of commands on a Typer app of its own; this one
gathers them and runs them. Every user error (a ``VaekitError``) surfaces as one line
``error: ...`` on stderr and exit status 2, without a traceback; Ctrl-C during training exits
with 130 after saying how to resume.
"""

from __future__ import annotations

import warnings
from typing import Annotated, Any

import typer
from rich.markup import escape

from vaekit.cli import anomaly, codes, compress, images, molecules, runs, serve, train
from vaekit.cli.options import err_console
from vaekit.errors import VaekitError
from vaekit.training.trainer import TrainingInterrupted
from vaekit.version import __version__

app = typer.Typer(
    name="vaekit",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for _group in (train, images, runs):  # top-level commands, in the order `vaekit --help` lists them
    app.add_typer(_group.app)
app.add_typer(anomaly.app, name="anomaly")
app.add_typer(molecules.app, name="molecules")
for _group in (compress, serve, codes):
    app.add_typer(_group.app)


def _print_version(value: bool) -> None:
    if value:
        print(f"vaekit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print vaekit's version and exit.")] = False,
) -> None:
    """Train, inspect and sample variational autoencoders.

    Example: vaekit train digits --epochs 30
    """


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      file: Any = None, line: str | None = None) -> None:
    """Show a warning a user can act on (invalid SMILES dropped, a collapsed posterior) as one
    line: Python's default adds a file:line that points into vaekit, not at the user's input."""
    err_console.print(f"[yellow]warning:[/yellow] {escape(str(message))}", highlight=False, soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning user errors into one line and an exit status.

    Usage errors (an unknown option, a missing argument, a value of the wrong type) and
    vaekit's own errors alike are one line ``error: ...`` and exit status 2; a command or
    group given no arguments prints its help, as ``--help`` does, with exit status 2.
    """
    try:
        with warnings.catch_warnings():  # restores the default display when main returns
            warnings.showwarning = _one_line_warning
            code = app(args=argv, prog_name="vaekit", standalone_mode=False)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except typer.TyperException as e:  # Typer's usage errors (its vendored click's ClickException)
        message, context = e.format_message(), getattr(e, "ctx", None)
        if type(e).__name__ == "NoArgsIsHelpError":  # the message is the help (empty: Rich printed it already)
            if message.strip():
                print(message)
        else:
            _print_error(message + (f" (see '{context.command_path} --help')" if context is not None else ""))
        return 2
    except VaekitError as e:
        _print_error(str(e))
        return 2
    except TrainingInterrupted as e:
        err_console.print(f"[yellow]{e}[/yellow]", highlight=False, soft_wrap=True)
        return 130
    return code if isinstance(code, int) else 0


def _print_error(message: str) -> None:
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)  # '[nH]' stays
