"""mkdocs hook: pages generated from the code at build time, so they cannot drift from it.

- ``<!-- vaekit:cli -->`` becomes the reference of every ``vaekit`` command: its help, its
  arguments and options with their defaults, and its examples, read from the click command
  that typer builds from ``vaekit.cli.app`` (what ``vaekit COMMAND --help`` prints).
- ``<!-- vaekit:settings -->`` becomes the settings-file schema: the fields of ``DataConfig``,
  ``TrainConfig`` and each model family's config, with types and defaults.
- ``<!-- vaekit:readme -->`` becomes README.md, its links rewritten for the site: the home
  page is the landing page, kept in one file.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))


def _cell(text: object) -> str:
    """Text safe inside a Markdown table cell."""
    text = " ".join(str(text).split())
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _default(param) -> str:
    shown = getattr(param, "show_default", None)
    if isinstance(shown, str):
        return shown.strip("()")
    if param.default is None or callable(param.default) or shown is False:
        return ""
    if isinstance(param.default, bool):
        return ""
    if isinstance(param.default, (list, tuple)):
        return ", ".join(str(v) for v in param.default)
    return str(param.default)


def _names(param) -> str:
    if param.param_type_name == "argument":
        return (param.name or "").upper()
    opts = list(param.opts) + [o for o in param.secondary_opts]
    return " / ".join(opts)


def _epilog(command) -> str:
    epilog = (command.epilog or "").strip()
    if not epilog:
        return ""
    epilog = re.sub(r"^\s*Examples?:\s*", "", epilog)
    examples = [e.strip() for e in re.split(r"\s*\|\s{1,}|\n", epilog) if e.strip()]
    return "Examples:\n\n```bash\n" + "\n".join(examples) + "\n```\n"


def _command(command, path: list[str], level: int) -> list[str]:
    import click

    name = " ".join(path)
    out = [f"{'#' * level} `{name}`", ""]
    help_text = (command.help or "").strip()
    help_text = help_text.split("\f")[0]
    if help_text:
        out += [help_text.replace("\b\n", "").replace("\\[", "["), ""]
    if hasattr(command, "commands"):  # a group: anomaly, molecules
        for sub_name, sub in command.commands.items():
            out += _command(sub, [*path, sub_name], min(level + 1, 4))
        return out
    ctx = click.Context(command, info_name=name)
    out += ["```text", " ".join(command.collect_usage_pieces(ctx)).join([f"Usage: {name} ", ""]), "```", ""]
    rows = [p for p in command.params if not getattr(p, "hidden", False) and p.name != "help"]
    if rows:
        out += ["| argument / option | default | what |", "|---|---|---|"]
        for p in rows:
            out.append(f"| `{_cell(_names(p))}` | {_cell(_default(p))} | {_cell(getattr(p, 'help', '') or '')} |")
        out.append("")
    epilog = _epilog(command)
    if epilog:
        out += [epilog, ""]
    return out


def cli_reference() -> str:
    import typer

    from vaekit.cli import app

    root = typer.main.get_command(app)
    lines = [(root.help or "").strip(), ""]
    for name, command in root.commands.items():
        lines += _command(command, ["vaekit", name], 2)
    return "\n".join(lines)


def _field_default(cls: type, field: dataclasses.Field) -> str:
    if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:  # type: ignore[misc]
        return "(required)"
    from vaekit.cli.train import _field_default as default

    value = default(cls, field.name)
    if isinstance(value, (list, tuple)):
        value = list(value)
    return repr(value) if isinstance(value, str) else str(value)


def _flag_help() -> dict[tuple[str, str], str]:
    """``vaekit train``'s option help by the (section, field) each option sets
    (``vaekit.cli.train.FIELDS``): ``--log`` documents ``train.loggers``."""
    import typer

    from vaekit.cli import app
    from vaekit.cli.train import FIELDS

    train = typer.main.get_command(app).commands["train"]
    return {FIELDS[p.name]: getattr(p, "help", "") or "" for p in train.params if p.name in FIELDS}


#: Fields that no ``vaekit train`` flag sets (or whose flag, like DATA, has no help text).
_FIELD_HELP = {
    "data": {"source": "Dataset name or path (the positional DATA of vaekit train).",
             "split_seed": "Seed of the train / validation / test split of user data.",
             "test_fraction": "Share of user data held out as the test split.",
             "channels": "Image channels: 1 (grey), 3 (RGB) or null (as the files are); the flag is --color."},
    "model": {"activation": "Hidden activation (elu by default; relu, ...).",
              "weight_decay": "Adam weight decay."},
    "train": {"weight_decay": "Adam weight decay.",
              "eval_batch_size": "Batch size of validation and evaluation."},
}


def settings_reference() -> str:
    from vaekit.data import DataConfig
    from vaekit.models import MODELS
    from vaekit.training import TrainConfig

    helps = _flag_help()
    sections = [("`data:` (`vaekit.data.DataConfig`)", DataConfig, "data"),
                ("`train:` (`vaekit.TrainConfig`)", TrainConfig, "train")]
    for family, entry in MODELS.items():
        sections.append((f"`model:` with `model: {family}` (`{entry[1].__name__}`)", entry[1], "model"))
    out: list[str] = []
    for title, cls, section in sections:
        out += [f"### {title}", "", "| key | type | default | what |", "|---|---|---|---|"]
        for field in dataclasses.fields(cls):
            if field.name == "input_shape":
                continue  # always taken from the data
            out.append(f"| `{field.name}` | `{_cell(field.type)}` | `{_cell(_field_default(cls, field))}` | "
                       f"{_cell(_FIELD_HELP[section].get(field.name) or helps.get((section, field.name), ''))} |")
        out.append("")
    return "\n".join(out)


def readme() -> str:
    """README.md with its repository links made site links (docs/x.md -> x.md)."""
    text = (SRC.parent / "README.md").read_text(encoding="utf-8")
    text = text.replace("(docs/images/", "(images/").replace("(docs/", "(")
    text = text.replace("[changelog](CHANGELOG.md)", "[changelog](changelog.md)")
    return text.replace("under the [MIT license](LICENSE)",
                        "under the MIT license (the `LICENSE` file of the repository)")


_RENDERERS = {"<!-- vaekit:cli -->": cli_reference, "<!-- vaekit:settings -->": settings_reference,
              "<!-- vaekit:readme -->": readme}


def on_page_markdown(markdown: str, page, config, files) -> str:  # the mkdocs hook signature
    for marker, render in _RENDERERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, render())
    return markdown
