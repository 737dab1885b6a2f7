"""Each training speed option learns what the plain path learns (within tolerance)."""

import pytest
import torch

from vaekit.distributions import Bernoulli, DiagonalGaussian
from vaekit.errors import VaekitError
from vaekit.models import VAE, VAEConfig
from vaekit.training.trainer import TrainConfig, Trainer


def _fit(data, epochs: int = 3, **options) -> tuple[Trainer, dict]:
    torch.manual_seed(0)
    model = VAE(VAEConfig(input_shape=(1, 8, 8), latent_dim=4, hidden=[64]))
    trainer = Trainer(model, TrainConfig(epochs=epochs, batch_size=32, device="cpu", **options), progress=False)
    trainer.fit(data)
    return trainer, trainer.evaluate(data.test)


def test_fused_adam_takes_the_same_steps_as_the_plain_adam(tiny_digits):
    fused, _ = _fit(tiny_digits, fused_optimizer=True)
    plain, _ = _fit(tiny_digits, fused_optimizer=False)
    for (name, a), b in zip(fused.model.state_dict().items(), plain.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)


def test_bfloat16_training_reaches_the_float32_elbo(tiny_digits):
    _, full = _fit(tiny_digits, epochs=5)
    _, half = _fit(tiny_digits, epochs=5, precision="bfloat16")
    assert full["elbo"] < 40  # it learned something (an untrained model is ~44 nats here)
    assert abs(half["elbo"] - full["elbo"]) < 0.2


def test_bfloat16_keeps_weights_and_optimizer_state_in_float32(tiny_digits):
    trainer, _ = _fit(tiny_digits, epochs=1, precision="bfloat16")
    assert {p.dtype for p in trainer.model.parameters()} == {torch.float32}
    for state in trainer._optimizer.state.values():
        assert state["exp_avg"].dtype == state["exp_avg_sq"].dtype == torch.float32


def test_densities_of_half_precision_outputs_are_computed_in_float32():
    logits = torch.randn(4, 10).bfloat16()
    x = torch.rand(4, 10).round()
    assert Bernoulli(logits, 1).log_prob(x).dtype == torch.float32
    torch.testing.assert_close(Bernoulli(logits, 1).log_prob(x), Bernoulli(logits.float(), 1).log_prob(x))
    posterior = DiagonalGaussian(torch.zeros(3, 2).bfloat16(), torch.zeros(3, 2).bfloat16())
    assert posterior.kl().dtype == torch.float32


def test_compiled_training_reaches_the_eager_elbo(tiny_digits):
    _, eager = _fit(tiny_digits, epochs=2)
    _, compiled = _fit(tiny_digits, epochs=2, compile=True)
    # Compiled kernels draw their own reparameterization noise, so the runs differ a little.
    assert abs(compiled["elbo"] - eager["elbo"]) < 0.5


def test_unknown_precision_is_refused():
    with pytest.raises(VaekitError, match="precision: expected float32 or bfloat16 or auto, got 'fp8'"):
        TrainConfig(precision="fp8")


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bfloat16_only_on_a_cpu_that_has_it_natively(monkeypatch, native):
    from vaekit.training import config as config_module

    monkeypatch.setattr(config_module, "native_bfloat16", lambda device: native and device.type == "cpu")
    auto = TrainConfig(precision="auto")
    assert auto.for_device(torch.device("cpu")).precision == ("bfloat16" if native else "float32")
    assert auto.for_device(torch.device("meta")).precision == "float32"
    assert TrainConfig(precision="float32").for_device(torch.device("cpu")).precision == "float32"


def test_flushing_denormals_learns_the_same_model(tiny_digits):
    flushed, _ = _fit(tiny_digits, flush_denormal=True)
    kept, _ = _fit(tiny_digits, flush_denormal=False)
    for (name, a), b in zip(flushed.model.state_dict().items(), kept.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7, msg=name)
    assert (torch.tensor([1e-40]) * 1.0).item() != 0  # flushing ends with training: the process is as it was
