"""Which conditioning makes a short CVAE run draw the class it is asked for? The options compared.

Each ``--option`` trains a CVAE (6 epochs on 12,000 images by default, latent 16 unless the
option says otherwise) on MNIST or Fashion-MNIST and judges 500 prior samples per class
with a small CNN trained on the real images of the same dataset (``mnist_classifier``'s
architecture, 3 epochs, cached): one JSON line per option, seed and guidance weight, with
the share recognised as the asked class and the test -ELBO.

- ``none``: the CVAE as it was before centring (``center_codes=false``, ``label_layers=first``).
- ``center``: ``center_codes=true`` (each class's codes centred on the prior's mean by a
  running per-class mean, so the decoder has to read the label), the label in the first
  layer of each network only (``label_layers=first``): the default before ``film``.
- ``label-prior``: a learned Gaussian prior per class, N(mu_y, sigma_y^2), written as a
  per-class affine map of z so the tools keep N(0, I): samples are drawn where the class's
  codes lie, whether or not the decoder reads the label.
- ``cfg``: label dropout (20% of training examples see no label, encoder and decoder) and
  classifier-free guidance at sampling (Ho & Salimans 2022): decoder logits
  ``u + w (c - u)`` for each ``--guidance`` weight w (1 is no guidance).
- ``latent4``: ``--latent-dim 4`` (a smaller code has less room for the class).
  These four keep the label in the first layer only (``label_layers=first``).
- ``film``: the default, centred codes and ``label_layers=decoder``: the label also enters
  every later layer of the decoder as a learned scale and shift of its output (FiLM, Perez
  et al. 2018: ``h (1 + G_i c) + W_i c``, both starting at zero; ``vaekit.nn.LabelFiLM``).
- ``all-film``: the same in every layer of the encoder too (``label_layers=all``).
- ``decoder-shift``, ``all-shift``: ``film`` and ``all-film`` with the shift only (the
  scales held at zero): the label enters every layer as concatenating it to each layer's
  input would.

``label-prior``, ``cfg`` and the shift-only options are defined here, not in vaekit.

    VAEKIT_DATA_DIR=../shared/data taskset -c 1 python benchmarks/cvae_options.py --threads 1 \\
        --options none center label-prior cfg --seeds 0 1 --guidance 1 2 3 5
    python benchmarks/cvae_options.py --options center film decoder-shift all-shift all-film --seeds 0 1 2
    python benchmarks/cvae_options.py --data fashion-mnist --options none center film --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

import vaekit
from vaekit.atomic import atomic_path
from vaekit.distributions import DiagonalGaussian, Likelihood
from vaekit.models import CVAE, MODELS, CVAEConfig

from common import environment  # benchmarks/ is on sys.path when a script here runs
from mnist_classifier import CACHE, DigitClassifier, predict_proba

OPTIONS = ("none", "center", "label-prior", "cfg", "latent4", "film", "all-film", "decoder-shift", "all-shift")


@dataclass
class OptionConfig(CVAEConfig):
    """The CVAE's config with the options measured here (not vaekit fields)."""

    model: ClassVar[str] = "cvae-options"
    label_prior: bool = False
    label_dropout: float = 0.0
    label_shift_only: bool = False


class OptionCVAE(CVAE):
    """``label_prior``: z' = mu_y + sigma_y z enters the decoder (and the encoder's code is
    standardised the same way), i.e. a learned N(mu_y, sigma_y^2) prior per class;
    ``label_dropout``: that share of training examples gets the zero ("no label") condition;
    ``label_shift_only``: the scales of ``label_layers``' modulation stay zero (not trained)."""

    config: OptionConfig

    def __init__(self, config: OptionConfig) -> None:
        super().__init__(config)
        if config.label_shift_only:
            for net in (self.encoder, self.decoder):
                if net.label_film is not None:
                    net.label_film.scales.requires_grad_(False)
        if config.label_prior:
            self.prior_mean = nn.Parameter(torch.zeros(config.num_classes, config.latent_dim))
            self.prior_logstd = nn.Parameter(torch.zeros(config.num_classes, config.latent_dim))

    def _class_prior(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cond = self.check_cond(cond)
        if cond.is_floating_point():
            return cond @ self.prior_mean, cond @ self.prior_logstd
        return self.prior_mean[cond], self.prior_logstd[cond]

    def encode(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> DiagonalGaussian:
        posterior = super().encode(x, cond)
        if not self.config.label_prior:
            return posterior
        mean, logstd = self._class_prior(cond)
        return DiagonalGaussian((posterior.mean - mean) * torch.exp(-logstd), posterior.logvar - 2 * logstd)

    def decode(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> Likelihood:
        if self.config.label_prior:
            mean, logstd = self._class_prior(cond)
            z = mean + torch.exp(logstd) * z
        return super().decode(z, cond)

    def infer(self, x: torch.Tensor, cond: torch.Tensor | None = None, **kwargs: Any):
        if self.training and self.config.label_dropout > 0:
            onehot = F.one_hot(self.check_cond(cond), self.config.num_classes).float()
            keep = torch.rand(len(onehot), 1, device=onehot.device) >= self.config.label_dropout
            cond = onehot * keep
        return super().infer(x, cond, **kwargs)

    @torch.no_grad()
    def guided(self, z: torch.Tensor, labels: torch.Tensor, weight: float) -> torch.Tensor:
        """Classifier-free guidance: the decoder's outputs u + w (c - u), conditional c, unconditional u."""
        onehot = F.one_hot(labels, self.config.num_classes).float()
        if self.config.label_prior:
            mean, logstd = self._class_prior(labels)
            z = mean + torch.exp(logstd) * z
        c = self.decoder(z, self.label_encoder(onehot))
        u = self.decoder(z, self.label_encoder(torch.zeros_like(onehot)))
        return self.observation(u + weight * (c - u)).mean


MODELS[OptionConfig.model] = (OptionCVAE, OptionConfig)


def option_settings(option: str) -> dict[str, Any]:
    first = {"label_layers": "first"}
    return {"none": {"center_codes": False, **first}, "center": {"center_codes": True, **first},
            "label-prior": {"center_codes": False, "label_prior": True, **first},
            "cfg": {"center_codes": False, "label_dropout": 0.2, **first},
            "latent4": {"center_codes": False, "latent_dim": 4, **first},
            "film": {"center_codes": True, "label_layers": "decoder"},
            "all-film": {"center_codes": True, "label_layers": "all"},
            "decoder-shift": {"center_codes": True, "label_layers": "decoder", "label_shift_only": True},
            "all-shift": {"center_codes": True, "label_layers": "all", "label_shift_only": True}}[option]


def judge_classifier(source: str) -> tuple[DigitClassifier, float]:
    """A CNN of ``source``'s real images (3 epochs, seed 0), cached, and its test accuracy."""
    data = vaekit.data.load(source, val_fraction=0.0)
    model = DigitClassifier()
    path = CACHE / f"{source}_cnn_e3_s0.safetensors"
    if path.is_file():
        model.load_state_dict(load_file(str(path)))
    else:
        torch.manual_seed(0)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _ in range(3):
            model.train()
            order = torch.randperm(len(data.train))
            for i in range(math.ceil(len(order) / 128)):
                idx = order[i * 128:(i + 1) * 128]
                loss = F.cross_entropy(model(data.train[idx]), data.train_labels[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    accuracy = (predict_proba(model, data.test).argmax(1) == data.test_labels).double().mean().item()
    return model, accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="mnist", choices=["mnist", "fashion-mnist"])
    parser.add_argument("--options", nargs="+", default=list(OPTIONS), choices=OPTIONS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--limit", type=int, default=12000, help="training images")
    parser.add_argument("--guidance", type=float, nargs="+", default=[1.0, 2.0, 3.0, 5.0],
                        help="guidance weights judged for the cfg option")
    parser.add_argument("--per-class", type=int, default=500)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    classifier, accuracy = judge_classifier(args.data)
    for option in args.options:
        for seed in args.seeds:
            settings = {"model": "cvae-options", **option_settings(option)}
            out = Path(tempfile.mkdtemp(prefix="vaekit-cvae-options-")) / "run"
            t0 = time.perf_counter()
            run = vaekit.train({"source": args.data, "limit": args.limit}, settings,
                               {"epochs": args.epochs, "seed": seed}, out=out, progress=False)
            train_s = time.perf_counter() - t0
            model = run.model
            asked = torch.arange(model.config.num_classes).repeat_interleave(args.per_class)
            for weight in args.guidance if option == "cfg" else [1.0]:
                z = model.prior_sample(len(asked), generator=torch.Generator().manual_seed(0))
                with torch.no_grad():
                    images = model.decode(z, asked).mean if weight == 1 else model.guided(z, asked, weight)
                hit = predict_proba(classifier, images.reshape(-1, *model.config.input_shape)).argmax(1) == asked
                print(json.dumps({
                    "benchmark": "cvae_options", "data": args.data, "option": option, "seed": seed,
                    "guidance": weight, "epochs": args.epochs, "limit": args.limit,
                    "latent_dim": model.config.latent_dim, "label_layers": model.config.label_layers,
                    "samples": len(asked),
                    "recognized_as_asked": round(hit.double().mean().item(), 4),
                    "test_elbo": round(run.summary["test"]["elbo"], 2), "classifier_test_accuracy": round(accuracy, 4),
                    "train_seconds": round(train_s, 1), **environment()}), flush=True)


if __name__ == "__main__":
    main()
