"""``compress`` / ``decompress``: images <-> ``.vkc`` bytes, from Python.

    from vaekit.compression import compress, decompress
    data = compress("runs/mnist-codec", images)       # (N, C, H, W) in [0, 1] -> bytes
    recon = decompress("runs/mnist-codec", data)      # -> (N, C, H, W) float32 in [0, 1]

Lossy files need a codec run (``vaekit train DATA --model codec``); ``decompress`` returns
exactly the model's quantised reconstruction (``Codec.reconstruct``), bit for bit.
Lossless files (``lossless=True``) need a model with a Gaussian posterior and a Bernoulli
likelihood (a VAE; a CVAE codes each image with its class label, ``labels=``, and
``decompress(..., with_labels=True)`` returns them) and binary images: bits-back coding
(``vaekit.compression.bitsback``), an exact round trip.
"""

from __future__ import annotations

from pathlib import Path

import torch

from vaekit.compression.container import Header, pack, unpack
from vaekit.compression.entropy import ChannelCoder
from vaekit.compression.identity import model_identity
from vaekit.errors import VaekitError
from vaekit.models import Model
from vaekit.models.codec import Codec
from vaekit.training.runs import Run, load

#: Images per network call: bounded memory, near-full speed.
BATCH = 1000


def as_model(source: str | Path | Model | object) -> Model:
    """A model from a run directory path, a ``Run`` or a ``Model``, in eval mode."""

    if isinstance(source, Model):
        return source.eval()
    if isinstance(source, (str, Path)):
        return load(source)
    if isinstance(source, Run):
        return source.model.eval()
    raise TypeError(f"expected a run directory, a Run or a Model, got {type(source).__name__}")


def _codec(model: Model) -> Codec:
    if not model.entropy_coded:
        raise VaekitError(f"lossy compression needs a codec run (vaekit train DATA --model codec), not a "
                          f"'{model.config.model}' model (for binary images and a VAE, use --lossless)")
    return model  # an entropy-coded model is a Codec


def _check_images(model: Model, images: torch.Tensor) -> torch.Tensor:
    shape = tuple(model.config.input_shape)
    if images.dim() == len(shape):
        images = images.unsqueeze(0)
    if tuple(images.shape[1:]) != shape:
        raise VaekitError(f"images: the model takes shape {shape}, got {tuple(images.shape[1:])}")
    if images.dtype == torch.uint8:
        images = images.float() / 255
    images = images.float()
    if images.numel() and (not torch.isfinite(images).all() or images.min() < 0 or images.max() > 1):
        raise VaekitError("images: expected values in [0, 1] (or uint8)")
    return images


class _Coding:
    """A codec's coder and identity, built once per call (tables depend on the weights only)."""

    def __init__(self, model: Codec) -> None:
        self.model = model
        self.coder = ChannelCoder(*model.coding_tables())
        self.identity = model_identity(model)
        self.shape = tuple(int(v) for v in model.config.input_shape)
        self.length = model.config.grid[0] * model.config.grid[1]

    @torch.no_grad()
    def symbols(self, images: torch.Tensor) -> torch.Tensor:
        device = next(self.model.parameters()).device
        parts = [self.model.analyse(images[i:i + BATCH].to(device)).cpu() for i in range(0, len(images), BATCH)]
        c = self.model.config.latent_channels
        return torch.cat(parts).reshape(len(images), c, self.length) if parts else torch.zeros(0, c, self.length)

    def file(self, symbols: torch.Tensor) -> bytes:
        header = Header(mode="lossy", identity=self.identity, count=len(symbols), shape=self.shape)
        return pack(header, self.coder.encode(symbols))

    @torch.no_grad()
    def images(self, symbols: torch.Tensor) -> torch.Tensor:
        device = next(self.model.parameters()).device
        h, w = self.model.config.grid
        grids = symbols.reshape(len(symbols), -1, h, w)
        parts = [self.model.synthesise(grids[i:i + BATCH].to(device)).cpu() for i in range(0, len(grids), BATCH)]
        return torch.cat(parts) if parts else torch.zeros(0, *self.shape)


def compress(source: str | Path | Model | object, images: torch.Tensor, *, lossless: bool = False,
             seed: int = 0, labels: torch.Tensor | None = None) -> bytes:
    """One ``.vkc`` file's bytes holding all ``images`` (N, C, H, W) (or one (C, H, W)).
    ``labels``: a conditional model's class label of each image (lossless: coded in the file)."""
    model = as_model(source)
    images = _check_images(model, images)
    if lossless:
        from vaekit.compression.lossless import compress_lossless

        payload = compress_lossless(model, images, seed=seed, labels=labels)
        header = Header(mode="lossless", identity=model_identity(model), count=len(images),
                        shape=tuple(int(v) for v in images.shape[1:]))
        return pack(header, payload)
    coding = _Coding(_codec(model))
    return coding.file(coding.symbols(images))


def compress_each(source: str | Path | Model | object, images: torch.Tensor) -> list[bytes]:
    """One ``.vkc`` file per image (lossy): the networks run in batches, each image is coded alone."""
    coding = _Coding(_codec(as_model(source)))
    symbols = coding.symbols(_check_images(coding.model, images))
    return [coding.file(symbols[i:i + 1]) for i in range(len(symbols))]


def decompress(source: str | Path | Model | object, data: bytes, *, name: str = "input", with_labels: bool = False
               ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
    """The images of a ``.vkc`` file's bytes, (N, C, H, W) float32 in [0, 1]. ``name`` (the
    file's path) is what an error about the bytes names. ``with_labels``: ``(images, labels)``,
    the class labels a conditional model's lossless file holds (else ``None``)."""
    model = as_model(source)
    header, payload = unpack(data, name)
    if header.identity != model_identity(model):
        raise VaekitError(f"{name}: was written by another model (identity {header.identity.hex()}, this model's "
                          f"is {model_identity(model).hex()}): decompress it with the run that compressed it")
    if header.mode == "lossless":
        from vaekit.compression.lossless import decompress_lossless

        return decompress_lossless(model, payload, header.count, header.shape, with_labels=with_labels)
    coding = _Coding(_codec(model))
    if header.shape != coding.shape:
        raise VaekitError(f"{name}: holds {header.shape} images, the model makes {coding.shape}")
    images = coding.images(coding.coder.decode(payload, header.count, coding.length, name))
    return (images, None) if with_labels else images


def decompress_many(source: str | Path | Model | object, files: list[bytes]) -> torch.Tensor:
    """The images of many single-model ``.vkc`` files at once (batched networks), (N, C, H, W)."""
    model = as_model(source)
    coding = _Coding(_codec(model))
    parts = []
    for i, data in enumerate(files):
        header, payload = unpack(data, f"file {i}")
        if header.identity != coding.identity or header.mode != "lossy" or header.shape != coding.shape:
            raise VaekitError(f"file {i}: was not written by this codec model")
        parts.append(coding.coder.decode(payload, header.count, coding.length, f"file {i}"))
    symbols = torch.cat(parts) if parts else torch.zeros(0, model.config.latent_channels, coding.length)
    return coding.images(symbols)
