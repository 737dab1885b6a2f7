"""Shared fixtures: a tiny in-memory digits dataset, so model and trainer tests need no files."""

import pytest
import torch
from sklearn.datasets import load_digits

from vaekit.data.bundle import DataInfo, Dataset


@pytest.fixture(scope="session")
def digits_tensor() -> torch.Tensor:
    return torch.tensor(load_digits().data / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)


@pytest.fixture
def tiny_digits(digits_tensor) -> Dataset:
    """300 train / 100 val / 100 test digits, as the trainer sees them."""
    x = digits_tensor
    return Dataset(train=x[:300].clone(), val=x[300:400].clone(), test=x[400:500].clone(),
                   info=DataInfo(name="digits", shape=(1, 8, 8), kind="image"))
