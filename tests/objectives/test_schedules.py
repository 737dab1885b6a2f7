"""KL annealing schedules and the free-bits floor."""

import pytest
import torch

from vaekit.errors import VaekitError
from vaekit.objectives.schedules import KLSchedule, free_bits_kl


@pytest.mark.parametrize(
    ("epoch", "weight"),
    [(0, 0.0), (5, 0.05), (10, 0.1), (30, 0.1 + 0.9 * 0.5), (50, 1.0), (80, 1.0)],
)
def test_brief_schedule_values(epoch, weight):
    assert KLSchedule.parse("brief", 100).weight(epoch) == pytest.approx(weight)


def test_linear_warmup_values():
    s = KLSchedule.parse("linear:4", 10)
    assert [s.weight(e) for e in (0, 1, 2, 4, 9)] == pytest.approx([0, 0.25, 0.5, 1, 1])


def test_cyclical_restarts_each_cycle():
    s = KLSchedule.parse("cyclical:2:0.5", 20)  # cycles of 10 epochs, ramp over the first 5
    assert [s.weight(e) for e in (0, 2.5, 5, 9.9, 10, 12.5)] == pytest.approx([0, 0.5, 1, 1, 0, 0.5])


def test_none_is_always_one():
    assert KLSchedule.parse("none", 5).weight(0) == 1.0


@pytest.mark.parametrize("spec", ["linear", "linear:-1", "cyclical:0", "sigmoid:3", "brief:2", "cyclical:2:1.5"])
def test_bad_schedule_specs_are_rejected_with_the_expected_form(spec):
    with pytest.raises(VaekitError, match=r"--kl-anneal: cannot read .* \(expected none \| brief"):
        KLSchedule.parse(spec, 10)


def test_free_bits_floors_each_dimension_and_stops_its_gradient():
    kl = torch.tensor([[0.1, 2.0, 0.4], [0.3, 1.0, 0.6]], requires_grad=True)  # batch means 0.2, 1.5, 0.5
    term = free_bits_kl(kl, free_bits=0.5)
    assert term.item() == pytest.approx(0.5 + 1.5 + 0.5)
    term.backward()
    # a dimension below the floor gets no gradient; one above it does
    assert kl.grad[:, 0].abs().sum() == 0
    assert (kl.grad[:, 1] > 0).all()


def test_free_bits_zero_is_the_plain_kl_sum():
    kl = torch.rand(4, 3)
    assert free_bits_kl(kl, 0.0).item() == pytest.approx(kl.mean(0).sum().item())
