"""Reading settings from a YAML or TOML file and merging command-line flags over them.

A file may group settings in ``model``, ``train`` and ``data`` sections, or list them
flat; a flat key goes to the section that owns a field of that name. Flags given on
the command line override the file.
"""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import tomllib
import yaml

from vaekit.data.config import DataConfig
from vaekit.errors import VaekitError
from vaekit.models import MODELS
from vaekit.schema import check_value, describe, field_type
from vaekit.training.config import TrainConfig

SECTIONS = ("model", "train", "data")


class _SettingsLoader(yaml.SafeLoader):
    """PyYAML's safe loader reading floats as YAML 1.2 does: PyYAML follows YAML 1.1, where
    ``1e-3`` (no dot) is a string, and a user writing ``lr: 1e-3`` means the number."""


_SettingsLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def _load_yaml(text: str) -> Any:
    """``text`` as YAML through the safe loader, with YAML 1.2 floats."""
    return yaml.load(text, Loader=_SettingsLoader)  # a SafeLoader subclass: no arbitrary objects


def read_settings_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """Parse a ``.yaml``/``.yml``/``.toml``/``.json`` settings file into the three sections."""
    path = Path(path)
    if not path.is_file():
        raise VaekitError(f"{path}: no such config file")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            raw = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml", ".json"):
            raw = _load_yaml(text) or {}
        else:
            raise VaekitError(f"{path}: expected a .yaml, .yml, .toml or .json config file")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as e:
        raise VaekitError(f"{path}: cannot parse config ({str(e).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise VaekitError(f"{path}: expected a mapping of settings at the top level")
    return split_sections(raw, origin=str(path))


def split_sections(raw: dict[str, Any], origin: str = "config") -> dict[str, dict[str, Any]]:
    """Sort settings into ``model``/``train``/``data``; flat keys go where their name belongs."""
    out: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    train_names = {f.name for f in fields(TrainConfig)}
    data_names = {f.name for f in fields(DataConfig)}
    for key, value in raw.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise VaekitError(f"{origin}: section '{key}' must be a mapping")
            out[key].update(value)
        elif key in train_names:
            out["train"][key] = value
        elif key in data_names:
            out["data"][key] = value
        else:
            out["model"][key.replace("-", "_")] = value
    check_types(out, origin)
    return out


def check_types(sections: dict[str, dict[str, Any]], origin: str) -> None:
    """Refuse a value of the wrong type where it was written (the file, or ``--set``), by the
    same check the configs make (``vaekit.schema``); a model field passes when any family
    takes it. Unknown names are left to the configs, which list the known ones."""
    for section, values in sections.items():
        owners = [TrainConfig] if section == "train" else [DataConfig] if section == "data" else \
            [config_cls for _, config_cls in MODELS.values()]
        for name, value in values.items():
            types = [t for t in (field_type(c, name) for c in owners) if t is not None]
            if not types:
                continue
            for annotation in types:
                try:
                    check_value(annotation, value, name)
                    break
                except VaekitError:
                    pass
            else:
                where = f"{origin} " if origin.startswith("--") else f"{origin}: "
                raise VaekitError(f"{where}{section}.{name}: expected {describe(types[0])}, got {value!r}")


def merge(base: dict[str, dict[str, Any]], overrides: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Section-wise update of ``base`` with the non-None values of ``overrides``."""
    merged = {s: dict(base.get(s, {})) for s in SECTIONS}
    for section, values in overrides.items():
        merged[section].update({k: v for k, v in values.items() if v is not None})
    return merged


def parse_assignments(items: list[str], flag: str = "--set") -> dict[str, dict[str, Any]]:
    """``KEY=VALUE`` pairs from the command line, sorted into sections like a settings file.

    Every config field reaches the command line this way without a flag of its own (for
    example the sequence VAE's ``decoder_hidden``). ``KEY`` is ``section.field`` or a bare
    field name; ``VALUE`` is read as YAML, so ``512``, ``0.5``, ``true`` and ``[32, 64]`` keep
    their types.
    """
    raw: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise VaekitError(f"{flag} {item!r}: expected KEY=VALUE, e.g. {flag} decoder_hidden=768")
        try:
            value = _load_yaml(text) if text.strip() else None
        except yaml.YAMLError:
            raise VaekitError(f"{flag} {item!r}: cannot read the value {text!r}") from None
        section, dot, name = key.partition(".")
        if dot:
            if section not in SECTIONS or not name:
                raise VaekitError(f"{flag} {item!r}: the section must be one of {', '.join(SECTIONS)}")
            raw.setdefault(section, {})[name.replace("-", "_")] = value
        else:
            raw[key.replace("-", "_")] = value
    return split_sections(raw, origin=flag)
