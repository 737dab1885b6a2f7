"""One typed check for every config dataclass: each field's value against its annotation.

``check_fields(config)`` is called where a config is built (``TrainConfig``, ``DataConfig``
and every ``ModelConfig`` in ``__post_init__``), so CLI flags, settings files, ``--set``,
config.json and the Python API share one check and one message style::

    latent_dim: expected an integer, got 'sixteen'
    lr: expected a finite number, got nan

Types come from the annotations (``int``, ``float``, ``bool``, ``str``, ``X | None``,
``list[T]``, ``tuple[T, ...]``); ranges from the field's metadata: ``min`` / ``max``
(inclusive) and ``above`` (exclusive), e.g. ``field(default=16, metadata=at_least(1))``.
A value of a close type is converted where nothing is lost (an int for a float field, a
list for a tuple field). Checks between fields stay in each config's ``__post_init__``.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import fields, is_dataclass
from functools import cache
from typing import Any

from vaekit.errors import VaekitError

_NAMES = {int: "an integer", float: "a finite number", bool: "true or false", str: "a string"}


def at_least(low: float) -> dict[str, Any]:
    """Field metadata: the value (each item of a list) is at least ``low``."""
    return {"min": low}


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def field_type(cls: type, name: str) -> Any:
    """The annotation of field ``name`` of dataclass ``cls`` (``None`` if it has no such field)."""
    return _hints(cls).get(name) if name in {f.name for f in fields(cls)} else None


def check_fields(config: Any) -> None:
    """Check (and losslessly convert) every field of the dataclass instance ``config``."""
    assert is_dataclass(config)
    for f in fields(config):
        value = check_value(_hints(type(config))[f.name], getattr(config, f.name), f.name, f.metadata)
        object.__setattr__(config, f.name, value)


def check_value(annotation: Any, value: Any, name: str, limits: Any = None) -> Any:
    """``value`` as a field of type ``annotation`` holds it, or a ``VaekitError`` naming ``name``."""
    converted = _convert(annotation, value)
    if converted is _BAD:
        raise VaekitError(f"{name}: expected {describe(annotation)}, got {value!r}")
    if limits:
        for item in converted if isinstance(converted, (list, tuple)) else [converted]:
            _check_range(item, name, limits)
    return converted


def describe(annotation: Any) -> str:
    """How a message names what a field of type ``annotation`` takes."""
    args = typing.get_args(annotation)
    if _is_union(annotation):
        parts = [describe(a) for a in args if a is not type(None)]
        return " or ".join(parts) + (" or null" if type(None) in args else "")
    origin = typing.get_origin(annotation)
    if origin in (list, tuple):
        return f"a list of {describe(args[0]).removeprefix('an ').removeprefix('a ')}s"
    return _NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


class _Bad:
    pass


_BAD = _Bad()


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _convert(annotation: Any, value: Any) -> Any:
    if annotation is Any:
        return value
    if _is_union(annotation):
        for option in typing.get_args(annotation):
            converted = _convert(option, value)
            if converted is not _BAD:
                return converted
        return _BAD
    if annotation is type(None):
        return None if value is None else _BAD
    origin = typing.get_origin(annotation)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return _BAD
        item_type = typing.get_args(annotation)[0]
        items = [_convert(item_type, v) for v in value]
        if any(i is _BAD for i in items):
            return _BAD
        return origin(items)
    if annotation is bool:
        return value if isinstance(value, bool) else _BAD
    if annotation is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _BAD
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return _BAD
        return float(value)
    if annotation is str:
        return value if isinstance(value, str) else _BAD
    return value  # a type this check does not know: the config's own __post_init__ decides


def _check_range(value: Any, name: str, limits: Any) -> None:
    if not isinstance(value, (int, float)):
        return
    if "min" in limits and value < limits["min"]:
        raise VaekitError(f"{name}: expected at least {limits['min']:g}, got {value!r}")
    if "max" in limits and value > limits["max"]:
        raise VaekitError(f"{name}: expected at most {limits['max']:g}, got {value!r}")
    if "above" in limits and value <= limits["above"]:
        raise VaekitError(f"{name}: expected more than {limits['above']:g}, got {value!r}")
