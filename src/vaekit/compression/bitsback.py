"""Lossless compression of binarized images with a VAE: bits-back coding with ANS (BB-ANS).

Townsend, Bird & Barber 2019, "Practical lossless compression with latent variables using
bits back coding". The entropy coder is ``constriction``'s ANS stack coder; this module
only decides *what* is pushed and popped. Encoding one image x (a stack: last in, first out):

1. pop a latent z from the posterior q(z|x) ("getting the bits back": the bits already on
   the stack choose z, so they are not lost, they are recovered by the decoder in step 3),
2. push x with the likelihood p(x|z) (Bernoulli pixels),
3. push z with the prior p(z).

Decoding undoes the three steps in reverse order (pop z with the prior, pop x with p(x|z),
push z back with q(z|x)), image by image from the last to the first. The net cost of an
image is -log2 p(x|z) - log2 p(z) + log2 q(z|x) bits: on average the negative ELBO.

Any model with a Gaussian posterior against the N(0, I) prior (``Model.gaussian_posterior``)
and a Bernoulli likelihood codes. A conditional one (a CVAE) codes each image with its class
label as the condition of q(z|x, y) and p(x|z, y): the label travels in the stack itself,
pushed last with a uniform model over the ``num_classes`` classes (log2 K bits an image) and
popped first when decoding, which returns it with the image (``with_labels``).

Discretised latent: every latent dimension is cut into ``BUCKETS`` intervals of equal mass
under the N(0, 1) prior (edges Phi^-1(i / K)), so the prior over buckets is uniform (exactly
``LATENT_BITS`` bits per dimension) and the posterior over buckets is the Gaussian's mass
on each interval; the decoder sees each bucket's centre Phi^-1((i + 1/2) / K).

Lanes: ``LANES`` (16) images are coded side by side. Encoding pops the posterior draws of
all 16, computes their 16 likelihoods in one network batch, then pushes the 16 images and
the 16 latents; decoding undoes that step as a whole (16 prior pops, one likelihood batch,
16 image pops, one posterior batch, 16 pushes). Every network call is a batch of 16, not 1.

Clean bits: the first step pops before anything was pushed, so the stack starts with
``clean_words(latent_dim, n)`` words drawn from ``seed``: enough for the worst case of one
step's posterior draws (16 x ``latent_dim`` symbols of at most 24 bits each, the precision of
constriction's models). They are part of the payload and are the one-off overhead:
``clean_bits(latent_dim, n)`` = 12,352 bits for 32 latent dimensions, 0.0016 bits per pixel
over the 10,000 MNIST test images (fewer lanes, fewer clean bits, for sets under 16 images).

Buckets: 2^8 per dimension by default. On an 8-epoch MNIST model (2,000 test images) 2^8,
2^10 and 2^12 buckets coded at 0.18249, 0.18241 and 0.18239 bits per pixel while encoding
1,492, 740 and 227 images/s (the posterior tables grow with the bucket count), so the
default is 2^8; ``latent_bits`` selects another (encoder and decoder must agree).

Exactness: the decoder must rebuild every probability table bit for bit. A network's float
results depend on the batch shape (one row alone goes through a matrix-vector kernel that
sums in another order than a batched product: measured, the posterior means of a lane of
16 and of single images differ by up to 1.4e-6), so encoding and decoding call the networks
on the same lanes of the same images in the same order, compute every table through one
function, and run on one thread (a thread count could change a kernel's split). A payload
therefore decodes with the same weights on the same kind of machine and torch build; across
CPU architectures float kernels may differ.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from vaekit.distributions import Bernoulli
from vaekit.errors import VaekitError
from vaekit.models.base import Model
from vaekit.threads import used as threads_used

#: Latent buckets per dimension, 2^8, equal mass under the prior (see "Buckets" above).
LATENT_BITS = 8
BUCKETS = 1 << LATENT_BITS
#: Bits of one probability in constriction's default models: the most one symbol can cost.
MODEL_PRECISION = 24
WORD_BITS = 32
#: Images coded side by side: their network calls and tables are one batch, in encoding and
#: decoding alike (the same images in the same batch, so the same floats).
LANES = 16
#: The posterior tables' float type: float32 halves their cost, and constriction quantises
#: every probability to 24 bits anyway.
TABLE_DTYPE = torch.float32

__all__ = ["BUCKETS", "LANES", "clean_bits", "clean_words", "compress_lossless", "decompress_lossless", "lanes"]


def lanes(n: int) -> int:
    """Images coded side by side in one step (``LANES``, fewer for a short set)."""
    return max(1, min(LANES, n))


def clean_words(latent_dim: int, n: int) -> int:
    """32-bit words the stack starts with: the worst case of the first step's posterior draws
    (``lanes(n) * latent_dim`` symbols of at most 24 bits each) plus the coder's 64-bit head."""
    return math.ceil(lanes(n) * latent_dim * MODEL_PRECISION / WORD_BITS) + 2


def clean_bits(latent_dim: int, n: int) -> int:
    """The one-off overhead of a payload of ``n`` images, in bits (the initial "clean" bits)."""
    return WORD_BITS * clean_words(latent_dim, n)


def compress_lossless(model: Model, images: torch.Tensor, seed: int = 0, *, labels: torch.Tensor | None = None,
                      latent_bits: int = LATENT_BITS) -> bytes:
    """Bits-back code binarized ``images`` ``(n, *shape)`` (every value 0 or 1) with a trained
    model with a Gaussian posterior and a Bernoulli likelihood (``vae``, ``cvae``); a
    conditional model needs the images' class ``labels`` ``(n,)``, which are coded with them.
    ``seed`` draws the initial clean bits; ``latent_bits``: 2^latent_bits buckets per latent
    dimension (decode with the same). Returns the payload: little-endian 32-bit words of the
    ANS stack."""
    coder = _Coding(model, latent_bits)
    x = coder.check_images(images)
    y = coder.check_labels(labels, len(x))
    n, step = len(x), lanes(len(x))
    ans = _ans_coder(_initial_words(clean_words(coder.latent_dim, n), seed))
    categorical, bernoulli, _ = _entropy_models()
    pixels = x.reshape(n, math.prod(coder.shape)).to(torch.int32).numpy()
    with _one_thread(), torch.no_grad():
        for start in range(0, n, step):
            block = slice(start, min(start + step, n))
            cond = None if y is None else y[block]
            z = ans.decode(categorical, coder.posterior(x[block], cond))
            ans.encode_reverse(pixels[block].reshape(-1), bernoulli, coder.likelihood(z, cond))
            ans.encode_reverse(z, coder.prior)
            if cond is not None:
                ans.encode_reverse(cond.numpy().astype(np.int32), coder.labels)
    return ans.get_compressed().astype("<u4").tobytes()


def decompress_lossless(model: Model, payload: bytes, n: int, shape: tuple[int, ...], *,
                        latent_bits: int = LATENT_BITS, with_labels: bool = False
                        ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
    """The ``n`` images ``(n, *shape)`` (float32, 0/1) that ``compress_lossless`` coded into
    ``payload`` with the same model, or a ``VaekitError`` if the payload does not decode to
    exactly ``n`` images (truncated, corrupted, or coded with other weights). With
    ``with_labels``: ``(images, labels)``, the class labels (int64 ``(n,)``) a conditional
    model coded them with (``None`` for an unconditional one)."""
    coder = _Coding(model, latent_bits)
    shape = tuple(int(s) for s in shape)
    if shape != coder.shape:
        raise VaekitError(f"lossless payload: image shape {shape} does not match the model's {coder.shape}")
    if n < 0:
        raise VaekitError(f"lossless payload: image count must be >= 0, got {n}")
    initial = clean_words(coder.latent_dim, n)
    if len(payload) % 4 or len(payload) < 4 * initial:
        raise VaekitError(f"lossless payload: {len(payload)} bytes is not a bits-back stack of {n} images for this "
                          f"model (expected a multiple of 4, at least {4 * initial})")
    ans = _ans_coder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))
    categorical, bernoulli, _ = _entropy_models()
    out = np.empty((n, int(np.prod(shape))), dtype=np.float32)
    labels = torch.empty(n, dtype=torch.long) if coder.conditional else None
    step = lanes(n)
    with _one_thread(), torch.no_grad():
        for start in reversed(range(0, n, step)):
            block = slice(start, min(start + step, n))
            count = block.stop - block.start
            cond = None
            if labels is not None:
                cond = torch.from_numpy(ans.decode(coder.labels, count).astype(np.int64))
                labels[block] = cond
            z = ans.decode(coder.prior, count * coder.latent_dim)
            pixels = ans.decode(bernoulli, coder.likelihood(z, cond)).reshape(count, -1)
            x = torch.from_numpy(pixels.astype(np.float32)).reshape(count, *shape)
            ans.encode_reverse(z, categorical, coder.posterior(x, cond))
            out[block] = pixels
    if ans.num_words() != initial:
        raise VaekitError(f"lossless payload: {n} images decoded but {ans.num_words()} words remain instead of the "
                          f"{initial} initial ones: the payload is corrupted, truncated or was coded with another "
                          "model or image count")
    images = torch.from_numpy(out).reshape(n, *shape)
    return (images, labels) if with_labels else images


# -- the coding model ---------------------------------------------------------------------

@functools.cache
def _entropy_models() -> tuple[Any, Any, Any]:
    """constriction's model families: posterior tables, Bernoulli pixels, the uniform prior over buckets."""
    try:
        import constriction
    except ImportError:
        raise VaekitError("lossless compression needs the constriction package: pip install 'vaekit[compress]'"
                          ) from None
    family = constriction.stream.model
    return family.Categorical(perfect=False), family.Bernoulli(perfect=False), family.Uniform


class _Coding:
    """A model seen as the three distributions bits-back coding needs, as numpy tables (and,
    for a conditional model, the uniform model its labels are coded with)."""

    def __init__(self, model: Model, latent_bits: int = LATENT_BITS) -> None:
        uniform = _entropy_models()[2]  # a missing constriction is one line, before any work
        config = model.config
        parameter = next(model.parameters())
        self.device, self.dtype = parameter.device, parameter.dtype
        self.latent_dim = int(config.latent_dim)
        self.model = model.eval()
        if not model.gaussian_posterior:
            raise VaekitError(f"lossless (bits-back) coding needs a model with a Gaussian posterior and a Bernoulli "
                              f"likelihood (vae or cvae, vaekit train mnist-binarized); a '{config.model}' model's "
                              "posterior is not one Gaussian")
        with torch.no_grad():  # the likelihood family: p(x|z) of one latent
            probe = model.decode(torch.zeros(1, self.latent_dim, device=self.device, dtype=self.dtype),
                                 model.sample_cond(1))
        if not isinstance(probe, Bernoulli):
            raise VaekitError(f"lossless (bits-back) coding needs a model with a Gaussian posterior and a Bernoulli "
                              f"likelihood (vaekit train mnist-binarized); this '{config.model}' model's likelihood "
                              f"is {type(probe).__name__}")
        self.shape = tuple(int(s) for s in config.input_shape)
        self.conditional = model.conditional
        buckets = 1 << latent_bits
        self.prior = uniform(buckets)
        self.labels = uniform(config.num_classes) if self.conditional else None
        levels = torch.arange(buckets + 1, dtype=torch.float64) / buckets
        self.edges = torch.special.ndtri(levels).to(TABLE_DTYPE)  # -inf .. +inf, equal prior mass between them
        self.centres = torch.special.ndtri((torch.arange(buckets, dtype=torch.float64) + 0.5) / buckets).to(
            self.dtype)

    def check_images(self, images: torch.Tensor) -> torch.Tensor:
        if not isinstance(images, torch.Tensor):
            images = torch.as_tensor(np.asarray(images))
        x = images.detach().cpu()
        if tuple(x.shape[1:]) != self.shape:
            raise VaekitError(f"lossless coding: images have shape {tuple(x.shape)}, expected (n, "
                              f"{', '.join(map(str, self.shape))}) for this model")
        binary = (x == 0) | (x == 1)
        if not bool(binary.all()):
            bad = int((~binary).reshape(len(x), -1).any(1).nonzero()[0, 0])
            value = float(x[bad][~binary[bad]][0])
            raise VaekitError(f"lossless coding needs binarized images (every value 0 or 1); image {bad} holds "
                              f"{value:g}")
        return x.to(torch.float32)

    def check_labels(self, labels: torch.Tensor | None, n: int) -> torch.Tensor | None:
        """A conditional model's labels as int64 ``(n,)`` in ``0..num_classes-1``; ``None`` for another."""
        if not self.conditional:
            if labels is not None:
                raise VaekitError(f"lossless coding: labels given, but model '{self.model.config.model}' is not "
                                  "conditional (leave them out)")
            return None
        k = self.model.config.num_classes
        if labels is None:
            raise VaekitError(f"lossless coding: model '{self.model.config.model}' is conditional: pass each "
                              f"image's class label (labels, int64 (n,), 0..{k - 1})")
        y = torch.as_tensor(labels).detach().cpu()
        if y.shape != (n,) or y.is_floating_point() or (n and (int(y.min()) < 0 or int(y.max()) >= k)):
            raise VaekitError(f"lossless coding: labels must be {n} class indices in 0..{k - 1}, got "
                              f"{y.dtype} of shape {tuple(y.shape)}")
        return y.long()

    def posterior(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> np.ndarray:
        """q(bucket | x) for each latent dimension of images ``(b, *shape)``: ``(b * D, K)``.

        Each bucket's mass is a difference of Gaussian tail probabilities taken on the side of
        the mean the bucket lies on, so far-out buckets keep their relative precision."""
        q = self.model.encode(x.to(device=self.device, dtype=self.dtype), cond)
        mean = q.mean.reshape(-1, 1).to(TABLE_DTYPE).cpu()
        std = q.std.reshape(-1, 1).to(TABLE_DTYPE).cpu()
        t = (self.edges - mean) / std  # standardized bucket edges, -inf .. +inf
        tail = torch.special.ndtr(-t.abs())  # mass beyond each edge, away from the mean
        lo, hi, tail_lo, tail_hi = t[:, :-1], t[:, 1:], tail[:, :-1], tail[:, 1:]
        mass = torch.where(lo >= 0, tail_lo - tail_hi, torch.where(hi <= 0, tail_hi - tail_lo, 1 - tail_lo - tail_hi))
        return mass.clamp_(min=0).numpy()

    def likelihood(self, buckets: np.ndarray, cond: torch.Tensor | None = None) -> np.ndarray:
        """p(pixel = 1 | z) for latents at the centres of ``buckets`` ``(b * D,)``: ``(b * P,)`` float64."""
        z = self.centres[torch.from_numpy(buckets.astype(np.int64))].reshape(-1, self.latent_dim).to(self.device)
        logits = self.model.decode(z, cond).logits
        return torch.sigmoid(logits.reshape(-1).double()).cpu().numpy()


def _initial_words(count: int, seed: int) -> np.ndarray:
    words = np.random.default_rng(seed).integers(0, 2**32, size=count, dtype=np.uint32)
    words[-1] |= np.uint32(1 << 31)  # a stack must not end in a zero word
    return words


def _ans_coder(words: np.ndarray) -> Any:
    import constriction

    try:
        return constriction.stream.stack.AnsCoder(np.ascontiguousarray(words, dtype=np.uint32))
    except Exception as exc:  # constriction refuses e.g. a stack ending in a zero word
        raise VaekitError(f"lossless payload: not a valid ANS stack ({exc})") from None


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run the coding on one thread whatever ``--threads`` says, so a kernel's work split never
    changes a table."""
    with threads_used(1):
        yield
