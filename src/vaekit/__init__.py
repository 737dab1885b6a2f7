"""vaekit: variational autoencoders you can train, inspect and sample in minutes on a CPU.

Start here::

    import vaekit
    run = vaekit.train("digits", {"latent_dim": 8}, {"epochs": 30}, out="runs/digits")
    model = vaekit.load("runs/digits")            # rebuilt from config.json + safetensors
    posterior = model.encode(x)                   # .mean, .rsample(), .kl()
    likelihood = model.decode(posterior.mean)     # .mean, .log_prob(x)
    loss = model.loss(x, beta=4.0)                # .total, .recon, .kl, .kl_per_dim
    images = model.sample(64)

Contents, top layer first (a package imports only from the layers below it):

- ``vaekit.cli``, ``vaekit.serve``: the ``vaekit`` command and the HTTP API with its page.
- ``vaekit.pipeline``: ``train`` / ``resume``, a run end to end.
- ``vaekit.report``: ``report.html`` and the run's pictures.
- Tools over a trained model: ``vaekit.anomaly`` (``VAEAnomalyDetector``),
  ``vaekit.compression`` (``.vkc`` files, bits-back), ``vaekit.chem`` (molecule metrics,
  generation, optimisation), ``vaekit.export`` (TorchScript, ONNX),
  ``vaekit.evaluation`` (``evaluate``, disentanglement metrics), ``vaekit.latent``
  (samplers, interpolation, attribute vectors, traversals, maps), ``vaekit.hub``
  (``save_pretrained``, ``push_to_hub``, ``from_pretrained``, ``pretrained("mnist-vae")``).
- ``vaekit.training``: ``Trainer``, ``TrainConfig``, run directories (``open_run``, ``load``).
- ``vaekit.models`` (the protocol and one module per family), ``vaekit.objectives``
  (bounds, KL schedules, regularizers, image terms), ``vaekit.data`` (``load``, datasets,
  readers, molecules).
- ``vaekit.distributions``, ``vaekit.nn``, ``vaekit.plotting``, ``vaekit.serialization``,
  ``vaekit.errors``: the base every layer shares.
"""

from vaekit import data, latent
from vaekit.data import DataConfig
from vaekit.distributions import Bernoulli, Categorical, DiagonalGaussian, Gaussian
from vaekit.errors import VaekitError
from vaekit.evaluation import evaluate
from vaekit.hub import from_pretrained, list_pretrained, pretrained, push_to_hub, save_pretrained
from vaekit.models import CVAE as CVAE  # the model classes: importable, outside __all__ (see below)
from vaekit.models import HVAE as HVAE
from vaekit.models import VAE as VAE
from vaekit.models import CVAEConfig, HVAEConfig, Loss, ModelConfig, VAEConfig, build
from vaekit.models import Model as Model
from vaekit.objectives import KLSchedule
from vaekit.pipeline import resume, train
from vaekit.training import TrainConfig, Trainer
from vaekit.training.runs import Run, load, open_run, save
from vaekit.version import __version__


def __getattr__(name: str) -> object:
    """``vaekit.anomaly`` and ``vaekit.VAEAnomalyDetector`` load on first use: they import
    scikit-learn, which ``import vaekit`` (and every CLI command) should not pay for."""
    if name in ("anomaly", "VAEAnomalyDetector"):
        import importlib

        module = importlib.import_module("vaekit.anomaly")
        return module if name == "anomaly" else module.VAEAnomalyDetector
    raise AttributeError(f"module 'vaekit' has no attribute {name!r}")


# The model classes (``vaekit.VAE``, ``CVAE``, ``HVAE``, ``Model``) are importable from here but
# left out of ``__all__``: ``help(vaekit)`` would print torch.nn.Module's hundred inherited
# methods for each; ``help(vaekit.models)`` documents them.
__all__ = [
    "Bernoulli",
    "CVAEConfig",
    "Categorical",
    "DataConfig",
    "DiagonalGaussian",
    "Gaussian",
    "HVAEConfig",
    "KLSchedule",
    "Loss",
    "ModelConfig",
    "Run",
    "TrainConfig",
    "Trainer",
    "VAEAnomalyDetector",
    "VAEConfig",
    "VaekitError",
    "__version__",
    "anomaly",
    "build",
    "data",
    "evaluate",
    "from_pretrained",
    "latent",
    "list_pretrained",
    "load",
    "open_run",
    "pretrained",
    "push_to_hub",
    "resume",
    "save",
    "save_pretrained",
    "train",
]
