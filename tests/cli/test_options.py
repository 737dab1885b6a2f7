"""Each option is declared once and spelled the same on every command, and every config field
is reachable from `vaekit train`: checked on the click-style commands typer builds
(``typer.main.get_command``), not on help text."""

from __future__ import annotations

from dataclasses import fields
from types import SimpleNamespace
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from vaekit.cli import app, main
from vaekit.cli import train as train_cli
from vaekit.data.config import DataConfig
from vaekit.models import MODELS
from vaekit.training import TrainConfig


def _walk(group: Any, path: tuple[str, ...] = ()) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a sub-app: anomaly, molecules
            found.update(_walk(command, (*path, name)))
        else:
            found[" ".join((*path, name))] = command
    return found


COMMANDS = _walk(typer.main.get_command(app))
TRAIN = COMMANDS["train"]
#: Commands that write a file or a directory the user names: each takes --out/-o.
WRITERS = {"train", "report", "reconstruct", "sample", "interpolate", "arithmetic", "restyle", "traverse", "latent-map",
           "anomaly fit", "anomaly score", "molecules sample", "molecules interpolate", "molecules optimize",
           "compress", "decompress", "export", "encode", "decode"}
#: Commands that run no model, so take no --threads: info reads config.json and metrics.jsonl.
NO_MODEL = {"info"}

#: Config fields with no flag of their own, set with `--set KEY=VALUE` or a settings file:
#: (the config classes holding them, the fields, why they have no flag).
SET_ONLY: list[tuple[set[str], set[str], str]] = [
    ({"train"}, {"weight_decay", "eval_batch_size", "flush_denormal", "likelihood_lr_factor"},
     "rarely changed: Adam's L2 term, evaluation's batch size, denormals flushed while training, the "
     "learned likelihood's own rate"),
    ({"data"}, {"split_seed", "test_fraction"}, "the held-out split of user data stays fixed, so runs compare"),
    ({"vae", "cvae", "hvae"}, {"activation", "obs_std", "min_obs_std"}, "the decoder's fine print"),
    ({"cvae"}, {"embedding_dim"}, "the label embedding of --condition embedding"),
    ({"hvae"}, {"cell_blocks"}, "residual blocks per cell of the hierarchy"),
    ({"vqvae"}, {"obs_std", "res_blocks", "res_channels", "commitment", "ema", "decay", "kmeans_init",
                 "dead_code_steps", "prior_channels", "prior_layers", "prior_epochs", "prior_batch_size", "prior_lr"},
     "the quantizer's and the learned prior's fine print"),
    ({"seqvae"}, {"embedding_dim", "encoder_hidden", "decoder_hidden", "decoder_layers", "word_dropout",
                  "property_hidden", "property_weight"}, "the GRU networks' sizes (README: --set decoder_hidden=768)"),
    ({"codec"}, {"latent_channels", "stages", "density_filters", "dense"}, "the codec network's shape"),
]
#: Model fields the data fills in (runs.model_config_for, ModelConfig.data_options), for no user to set.
FROM_DATA = {"input_shape", "num_classes", "class_names", "vocabulary", "tokenizer", "property_names",
             "property_mean", "property_std"}


def _param(command: Any, name: str) -> Any:
    return next((p for p in command.params if p.name == name), None)


def _is_option(p: Any) -> bool:
    return p.param_type_name == "option"


def _kind(p: Any) -> str:
    """``int``, ``float``, ``bool`` or ``str``: the Python type typer converts the text to."""
    if callable(getattr(p, "bare_type", None)):  # typer with its own copy of click
        return p.bare_type()
    return {"integer": "int", "float": "float", "boolean": "bool"}.get(p.type.name, "str")


def test_the_walk_reaches_the_sub_commands() -> None:
    assert {"train", "sample", "info", "anomaly fit", "anomaly score", "molecules sample", "molecules evaluate",
            "encode", "decode", "compress", "serve", "export"} <= set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_shared_options_are_spelled_alike(name: str) -> None:
    command = COMMANDS[name]
    for p in command.params:
        if p.name in ("out", "output") or "-o" in p.opts:
            assert p.name == "out" and sorted(p.opts) == ["--out", "-o"], (name, p.opts)
        if p.name == "device":
            effective = p.default if p.default is not None else p.show_default  # train: None, so --config can set it
            assert p.opts == ["--device"] and effective == "auto", (name, p.opts, effective)
        if p.name == "threads":  # auto or a count (vaekit.threads); train: None, so --config can set it
            effective = p.default if p.default is not None else p.show_default
            assert p.opts == ["--threads"] and effective == "auto", (name, p.opts, effective)
        if p.name == "seed":
            assert p.opts == ["--seed"], name
    spelled = {opt for p in command.params for opt in (*p.opts, *getattr(p, "secondary_opts", []))}
    assert not spelled & {"--output", "--output-dir", "--num-threads", "--cuda"}, name
    assert (_param(command, "out") is not None) == (name in WRITERS), name
    assert (_param(command, "threads") is not None) == (name not in NO_MODEL), name  # every --device has it too


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_shows_the_defaults(name: str) -> None:
    result = CliRunner().invoke(app, [*name.split(), "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert all(getattr(p, "show_default", None) is not False for p in COMMANDS[name].params), name  # none hidden
    if any(_is_option(p) and p.default not in (None, False) for p in COMMANDS[name].params):
        assert "[default:" in result.output, name


def test_train_flags_map_to_one_config_field_each() -> None:
    names = [p.name for p in TRAIN.params]
    assert set(train_cli.FIELDS) | set(train_cli.CLI_ONLY) == set(names)
    assert not set(train_cli.FIELDS) & set(train_cli.CLI_ONLY)
    assert len(set(train_cli.FIELDS.values())) == len(train_cli.FIELDS)  # no field set by two flags
    model_fields = {f.name for _, c in MODELS.values() for f in fields(c)} | {"model"}  # "model": the family
    known = {"train": {f.name for f in fields(TrainConfig)}, "data": {f.name for f in fields(DataConfig)},
             "model": model_fields}
    for param, (section, field) in train_cli.FIELDS.items():
        assert field in known[section], (param, section, field)


@pytest.mark.parametrize("owner", ["train", "data", *MODELS])
def test_every_config_field_has_a_flag_or_is_set_only(owner: str) -> None:
    cls = {"train": TrainConfig, "data": DataConfig}.get(owner) or MODELS[owner][1]
    section = owner if owner in ("train", "data") else "model"
    flagged = {field for s, field in train_cli.FIELDS.values() if s == section}
    unflagged = {f.name for f in fields(cls)} - flagged - (FROM_DATA if section == "model" else set())
    set_only = set().union(*(names for owners, names, _ in SET_ONLY if owner in owners))
    assert unflagged == set_only, f"{owner}: no flag for {sorted(unflagged)}, --set only: {sorted(set_only)}"


def _sample_value(p: Any) -> tuple[list[str], Any]:
    """Arguments giving ``p`` a value, and the value its config field should then get."""
    kind = _kind(p)
    if kind == "bool":
        return [p.opts[0]], True
    text = {"int": "7", "float": "0.5"}.get(kind, {"color": "gray", "epochs": "7"}.get(p.name, "3,4"))
    value = {"int": int, "float": float}.get(kind, str)(text)
    parse = train_cli.PARSERS.get(p.name)
    return ([p.opts[0]] if _is_option(p) else []) + [text], parse(value) if parse else value


def test_train_routes_each_flag_to_its_field(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    received: dict[str, dict[str, Any]] = {}

    def fake_train(data: dict, model: dict, train: dict, out: Any, **_: Any) -> None:
        received.update(data=data, model=model, train=train)

    monkeypatch.setattr(train_cli, "pipeline", SimpleNamespace(train=fake_train))
    monkeypatch.setattr(train_cli, "_report_run", lambda run, preview: None)
    args, expected = ["--set", "decoder_hidden=768", "--out", str(tmp_path / "run")], {}
    for p in TRAIN.params:
        if p.name in train_cli.FIELDS:
            given, expected[p.name] = _sample_value(p)
            args += given
    result = CliRunner().invoke(app, ["train", *args])
    assert result.exit_code == 0, result.output
    for param, (section, field) in train_cli.FIELDS.items():
        assert received[section][field] == expected[param], (param, section, field)
    assert received["model"]["decoder_hidden"] == 768  # --set reaches a field without a flag


def test_train_epochs_takes_auto_or_a_count(monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: Any) -> None:
    """``--epochs auto`` is what the help and the default say it is; anything else but a count
    is one line, exit 2, and a resume needs a count (its new total)."""
    received: list[Any] = []
    fake = SimpleNamespace(train=lambda data, model, train, out, **_: received.append(train["epochs"]),
                           resume=lambda *args, **_: pytest.fail("resumed with --epochs auto"))
    monkeypatch.setattr(train_cli, "pipeline", fake)
    monkeypatch.setattr(train_cli, "_report_run", lambda run, preview: None)
    out = ["--out", str(tmp_path / "run")]
    for given, expected in (("auto", "auto"), ("AUTO", "auto"), ("12", 12)):
        assert CliRunner().invoke(app, ["train", "--epochs", given, *out]).exit_code == 0
        assert received.pop() == expected
    capsys.readouterr()
    assert main(["train", "--epochs", "many", *out]) == 2
    assert capsys.readouterr().err.strip() == "error: --epochs: expected auto or a count of at least 1, got 'many'"
    assert main(["train", "--resume", "--epochs", "auto", *out]) == 2
    assert "error: --epochs auto: a resumed run continues to a new total" in capsys.readouterr().err
    assert not received and not (tmp_path / "run").exists()


def test_train_help_shows_the_dataclass_defaults() -> None:
    defaults = TrainConfig()
    for param, (section, field) in train_cli.FIELDS.items():
        shown = _param(TRAIN, param).show_default
        value = getattr(defaults, field) if section == "train" else None
        if isinstance(value, bool):
            assert shown == (field if value else f"no-{field}").replace("_", "-"), param
        elif value is not None:
            assert shown.split(";")[0] == str(value), (param, shown)
    seqvae = MODELS["seqvae"][1].train_defaults["batch_size"]
    assert _param(TRAIN, "batch_size").show_default == f"{defaults.batch_size}; seqvae: {seqvae}"  # a family's own
    assert _param(TRAIN, "latent_dim").show_default.startswith(str(MODELS["vae"][1].latent_dim))


def test_version_prints_the_package_version(capsys) -> None:
    from vaekit.cli import main
    from vaekit.version import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"vaekit {__version__}"
