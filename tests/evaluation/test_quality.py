"""Quality figures that need full-size data and a minute or more: marked slow (make test-all)."""

import os

import pytest

import vaekit

pytestmark = pytest.mark.slow


@pytest.mark.skipif(not os.environ.get("VAEKIT_DATA_DIR"), reason="needs VAEKIT_DATA_DIR with MNIST")
def test_mnist_binarized_reaches_100_nats_in_10_epochs_with_default_settings(tmp_path):
    """The reported figure: `vaekit train mnist-binarized --arch mlp --latent-dim 32 --epochs 10`."""
    run = vaekit.train("mnist-binarized", {"arch": "mlp", "latent_dim": 32}, {"epochs": 10}, tmp_path / "run",
                       progress=False)
    assert run.summary["test"]["elbo"] <= 100.0
