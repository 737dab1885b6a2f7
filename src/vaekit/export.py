"""Export a run's encoder and decoder for use without vaekit: ONNX graphs or one TorchScript file.

ONNX: two graphs beside ``out`` (``model.onnx`` -> ``model.encoder.onnx``, ``model.decoder.onnx``),
because a client usually needs one or the other and onnxruntime wants every input of a graph:

- encoder: input ``x`` ``(B, *input_shape)`` (and ``label`` ``(B,)`` int64 for a conditional
  run) -> outputs ``mean`` and ``logvar`` ``(B, latent_dim)``, the posterior q(z|x);
- decoder: input ``z`` ``(B, latent_dim)`` (and ``label``) -> output ``x_mean``
  ``(B, *input_shape)``, the decoder's mean (probabilities for a Bernoulli decoder).

The batch axis is dynamic. TorchScript: one file whose module has ``encode(x[, label])`` and
``decode(z[, label])`` methods, loadable with ``torch.jit.load`` alone. Both use the legacy
TorchScript-based ONNX exporter (``dynamo=False``): it needs no extra packages and handles
every family here; a sequence model (its decoding is a loop over tokens) is refused.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from vaekit.atomic import atomic_path
from vaekit.errors import VaekitError
from vaekit.models.base import Model
from vaekit.training.runs import open_run

FORMATS = ("onnx", "torchscript")
OPSET = 17


class EncoderGraph(nn.Module):
    """x (, label) -> posterior mean and log-variance, flattened to (B, latent_dim)."""

    def __init__(self, model: Model) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, label: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        posterior = self.model.encode(x, label)
        return posterior.mean.flatten(1), posterior.logvar.flatten(1)


class DecoderGraph(nn.Module):
    """z (, label) -> the decoder's mean (B, *input_shape)."""

    def __init__(self, model: Model) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        return self.model.decode(z, label).mean


def example_inputs(model: Model, batch: int = 2) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Inputs to trace the encoder and the decoder with."""
    x = torch.rand(batch, *model.config.input_shape)
    z = torch.randn(batch, model.config.latent_dim)
    if not model.config.conditional:
        return (x,), (z,)
    label = torch.arange(batch) % model.config.num_classes
    return (x, label), (z, label)


def _check(model: Model, fmt: str) -> None:
    if fmt not in FORMATS:
        raise VaekitError(f"format: expected onnx or torchscript, got '{fmt}'")
    if model.sequences:
        raise VaekitError(f"export: model '{model.config.model}' decodes sequences token by token, which has no "
                          "single-graph export here")


def onnx_paths(out: str | Path) -> tuple[Path, Path]:
    """Where ``export_onnx(..., out)`` writes the encoder and the decoder."""
    out = Path(out)
    stem = out.name[:-len(".onnx")] if out.name.endswith(".onnx") else out.name
    return out.with_name(f"{stem}.encoder.onnx"), out.with_name(f"{stem}.decoder.onnx")


def export_onnx(model: Model, out: str | Path) -> tuple[Path, Path]:
    """Write the encoder and decoder graphs (see the module docstring); returns their paths."""
    _check(model, "onnx")
    try:
        import onnx  # noqa: F401  (the exporter needs it)
    except ImportError:
        raise VaekitError("export --format onnx needs the onnx package: pip install 'vaekit[onnx]'") from None

    model = model.eval()
    enc_inputs, dec_inputs = example_inputs(model)
    conditional = model.config.conditional
    labels = ["label"] if conditional else []
    batch = {0: "batch"}
    encoder_path, decoder_path = onnx_paths(out)
    encoder_path.parent.mkdir(parents=True, exist_ok=True)
    jobs = [(EncoderGraph(model), enc_inputs, ["x", *labels], ["mean", "logvar"], encoder_path),
            (DecoderGraph(model), dec_inputs, ["z", *labels], ["x_mean"], decoder_path)]
    for graph, inputs, names, outputs, path in jobs:
        axes = {name: batch for name in [*names, *outputs]}
        with atomic_path(path) as tmp, warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer notes
            torch.onnx.export(graph, inputs, str(tmp), input_names=names, output_names=outputs,
                              dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    return encoder_path, decoder_path


class _Scripted(nn.Module):
    def __init__(self, model: Model) -> None:
        super().__init__()
        self.encoder = EncoderGraph(model)
        self.decoder = DecoderGraph(model)

    def encode(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(*inputs)

    def decode(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.decoder(*inputs)


def export_torchscript(model: Model, out: str | Path) -> Path:
    """One TorchScript file with ``encode`` and ``decode`` methods (traced; batch size free)."""
    _check(model, "torchscript")

    model = model.eval()
    enc_inputs, dec_inputs = example_inputs(model)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace_module(_Scripted(model), {"encode": enc_inputs, "decode": dec_inputs})
        with atomic_path(out) as tmp:
            torch.jit.save(traced, str(tmp))
    return out


def export_run(run: str | Path, out: str | Path, fmt: str = "onnx") -> list[Path]:
    """Export the model of run directory ``run``; returns the files written."""
    model = open_run(run).model
    _check(model, fmt)
    if fmt == "onnx":
        return list(export_onnx(model, out))
    return [export_torchscript(model, out)]
