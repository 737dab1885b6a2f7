"""Entropy coding of integer latent grids with ``constriction``'s ANS coder.

Each latent channel has its own fixed probability table over one shared alphabet
(``Codec.coding_tables``), turned into a leaky ``Categorical`` (every symbol of the
alphabet keeps a nonzero probability, so any clamped latent is encodable). Symbols are
coded channel by channel over all images of a file: one vectorized call per channel.

ANS output is a sequence of 32-bit words whose last word holds the top of the coder's
state; its high bytes are often zero. ``_trim``/``_untrim`` drop up to three trailing zero
bytes (the byte length mod 4 says how many to restore), which per-image files feel.
"""

from __future__ import annotations

import numpy as np
import torch

from vaekit.errors import VaekitError


def _constriction():  # type: ignore[no-untyped-def]
    try:
        import constriction
    except ImportError:
        raise VaekitError("compression needs the 'constriction' package: pip install 'vaekit[compress]'") from None
    return constriction


class ChannelCoder:
    """Encode/decode symbol grids (N, C, L) with one probability table per channel."""

    def __init__(self, lo: int, pmf: torch.Tensor) -> None:
        c = _constriction()
        self.lo = lo
        self.alphabet_size = pmf.shape[1]
        probs = pmf.double().clamp_min(0).cpu().numpy()
        probs = probs / probs.sum(1, keepdims=True)
        self.models = [c.stream.model.Categorical(p, perfect=False) for p in probs]
        self._ans = c.stream.stack.AnsCoder

    def encode(self, symbols: torch.Tensor) -> bytes:
        """Integer latents (N, C, L), within ``[lo, lo + alphabet_size)`` -> bytes."""
        s = (symbols.to(torch.int64) - self.lo).to(torch.int32).transpose(0, 1).reshape(len(self.models), -1)
        s = np.ascontiguousarray(s.numpy())
        coder = self._ans()
        for ch in reversed(range(len(self.models))):  # a stack: the last channel in is the first out
            coder.encode_reverse(s[ch], self.models[ch])
        return _trim(coder.get_compressed())

    def decode(self, payload: bytes, n: int, length: int, name: str = "input") -> torch.Tensor:
        """Bytes -> integer latents (n, C, L) as float32 (what the synthesis transform takes)."""
        words = _untrim(payload, name)
        coder = self._ans(words)
        out = np.empty((len(self.models), n * length), dtype=np.int32)
        try:
            for ch, model in enumerate(self.models):
                out[ch] = coder.decode(model, n * length)
        except (ValueError, RuntimeError) as e:
            raise VaekitError(f"{name}: corrupted payload ({e})") from None
        if not coder.is_empty():
            raise VaekitError(f"{name}: corrupted payload (data left over after the last symbol)")
        grid = torch.from_numpy(out).reshape(len(self.models), n, length).transpose(0, 1)
        return (grid.to(torch.float32) + self.lo).contiguous()


def _trim(words: np.ndarray) -> bytes:
    data = words.astype("<u4").tobytes()
    if len(words) and words[-1] != 0:
        data = data.rstrip(b"\0")  # at most 3 bytes: the last word is nonzero
    return data


def _untrim(payload: bytes, name: str) -> np.ndarray:
    pad = -len(payload) % 4
    return np.frombuffer(payload + b"\0" * pad, dtype="<u4").astype(np.uint32)
