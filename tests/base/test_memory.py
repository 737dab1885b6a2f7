"""One memory check (vaekit.memory) for every place that refuses work too large: the sampler,
a model's training and a synthetic dataset's split."""

import pytest

from vaekit import data, memory
from vaekit.errors import VaekitError


@pytest.fixture
def one_megabyte_free(monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda device="cpu": 1_000_000)


def test_work_beyond_its_share_of_the_free_memory_is_refused_with_the_advice(one_megabyte_free):
    memory.check_memory(1_000_000, "these", "do less")
    memory.check_memory(250_000, "these", "do less", share=4)
    with pytest.raises(VaekitError, match=r"^these need about 1\.0 MB of memory, more than the 1\.0 MB available on "
                                          r"cpu; do less$"):
        memory.check_memory(1_000_001, "these", "do less")
    with pytest.raises(VaekitError, match=r"more than 1/4 of the 1\.0 MB available on cpu; do less$"):
        memory.check_memory(250_001, "these", "do less", share=4)


def test_a_synthetic_split_is_checked_by_the_same_rule_and_told_the_limit_that_fits(one_megabyte_free):
    from vaekit.data import shapes

    fits = 1_000_000 // shapes.MEMORY_SHARE // (shapes.IMAGE_SIZE ** 2 * 4)  # float32 images in a quarter of 1 MB
    with pytest.raises(VaekitError, match=r"training images as float32 need about .* more than 1/4 of the 1\.0 MB "
                                          rf"available on cpu; set limit \(--limit {fits}, a random subset\)"):
        data.load("shapes-small")
