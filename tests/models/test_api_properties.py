"""Random values thrown at the config schema and the public model methods: each call
gives a valid result or one clear ``VaekitError``, never another exception."""

from __future__ import annotations

import math
from dataclasses import fields

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vaekit.data.config import DataConfig
from vaekit.errors import VaekitError
from vaekit.models import MODELS, build
from vaekit.models.base import ModelConfig
from vaekit.training import TrainConfig

#: Anything a settings file, --set or config.json can hold, and a few Python values besides.
ANY = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=6,
)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _config_classes() -> list[type]:
    return [TrainConfig, DataConfig, *(c for _, c in MODELS.values())]


@FAST
@given(data=st.data())
def test_a_config_field_of_any_value_is_valid_or_one_vaekit_error(data):
    cls = data.draw(st.sampled_from(_config_classes()))
    name = data.draw(st.sampled_from([f.name for f in fields(cls)]))
    value = data.draw(ANY)
    base = {"num_classes": 3} if getattr(cls, "conditional", False) else {}
    if getattr(cls, "sequences", False):
        base = {"vocabulary": ["<pad>", "<bos>", "<eos>", "C", "O"], "input_shape": [12]}
    try:
        config = cls.from_dict({**base, name: value})
    except VaekitError as e:
        assert "\n" not in str(e) and str(e)
        return
    assert type(config) is cls
    if isinstance(config, ModelConfig):  # a valid config round-trips through config.json
        assert cls.from_dict(config.to_dict()).to_dict() == config.to_dict()


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build({"model": "vae", "input_shape": [1, 4, 4], "latent_dim": 2, "hidden": [8]}).eval()


TENSORS = st.tuples(
    st.lists(st.integers(0, 5), min_size=1, max_size=4),
    st.sampled_from([0.0, 1.0, math.nan, math.inf, -1e30, 0.5]),
)


@FAST
@given(shape_fill=TENSORS, method=st.sampled_from(["encode", "loss", "reconstruct", "log_likelihood"]),
       k=st.integers(-2, 3))
def test_model_methods_take_any_tensor_or_refuse_it_in_one_line(model, shape_fill, method, k):
    shape, fill = shape_fill
    x = torch.full(shape, fill)
    try:
        call = (lambda t: model.log_likelihood(t, k=k, chunk=2)) if method == "log_likelihood" else \
            getattr(model, method)
        result = call(x)
    except VaekitError as e:
        assert "\n" not in str(e)
        return
    assert result is not None
    assert tuple(x.shape[1:]) == (1, 4, 4) or x.shape[1:].numel() == 16


@FAST
@given(n=st.one_of(st.integers(-3, 40), st.integers(10**11, 10**13), st.floats(allow_nan=True), st.text(max_size=3)),
       temperature=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3), st.none()))
def test_sample_with_any_arguments_is_valid_or_one_vaekit_error(model, n, temperature):
    try:
        out = model.sample(n, temperature=temperature, generator=torch.Generator().manual_seed(0))
    except VaekitError as e:
        assert "\n" not in str(e)
        return
    assert out.shape == (n, 1, 4, 4) and torch.isfinite(out).all()
