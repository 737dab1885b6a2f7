"""Shared fixtures: a tiny in-memory digits dataset, so model and trainer tests need no files."""

import pytest
import torch
from sklearn.datasets import load_digits

from vaekit.data.bundle import DataInfo, Dataset


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Test models are tiny: one thread trains them as fast as two, and keeps them fast on a
    CPU shared with other jobs (two threads on a busy 2-core machine were ~10x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def digits_tensor() -> torch.Tensor:
    return torch.tensor(load_digits().data / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)


@pytest.fixture
def tiny_digits(digits_tensor) -> Dataset:
    """300 train / 100 val / 100 test digits, as the trainer sees them."""
    x = digits_tensor
    return Dataset(train=x[:300].clone(), val=x[300:400].clone(), test=x[400:500].clone(),
                   info=DataInfo(name="digits", shape=(1, 8, 8), kind="image"))


@pytest.fixture(scope="session")
def labeled_digits() -> Dataset:
    """1,500 train / 297 test 8x8 digits with their labels (what a conditional model trains on)."""
    bunch = load_digits()
    x = torch.tensor(bunch.data / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(bunch.target, dtype=torch.long)
    return Dataset(train=x[:1500], val=None, test=x[1500:], train_labels=y[:1500], test_labels=y[1500:],
                   info=DataInfo(name="digits", shape=(1, 8, 8), kind="image",
                                 class_names=[str(i) for i in range(10)]))
