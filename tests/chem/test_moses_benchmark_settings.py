"""The MOSES benchmark's settings strings: each key goes to the config that declares it."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def molecules_benchmark():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield importlib.import_module("molecules")
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_train_keys_and_model_keys_are_routed_apart(molecules_benchmark):
    train, model = molecules_benchmark.parse_settings("beta=0.5, decoder_layers=2,lr=3e-4,tokens_note=x")
    assert train == {"beta": 0.5, "lr": 0.0003}
    assert model == {"decoder_layers": 2, "tokens_note": "x"}


def test_an_item_without_a_value_is_refused(molecules_benchmark):
    with pytest.raises(SystemExit, match="expected KEY=VALUE, got 'beta'"):
        molecules_benchmark.parse_settings("beta")


def test_empty_settings_change_nothing(molecules_benchmark):
    assert molecules_benchmark.parse_settings("") == ({}, {})
