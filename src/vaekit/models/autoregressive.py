"""Decoding an autoregressive token model: greedy, sampled with a temperature, or beam search.

The algorithms see the model only through ``StepDecoder`` (start from z, one step from
the previous tokens, reorder the states for a beam), so they are written once for any
sequence family and stay pure torch (molecule strings are made in ``vaekit.chem``).

Every result is a ``(B, max_length)`` int64 tensor laid out like the training rows:
``bos`` first, then the tokens, ``eos``, and ``pad`` after it. Generation never emits
``pad`` or ``bos``, never ends before ``min_tokens`` tokens (an empty sequence is no
molecule), starts with one of ``first_tokens`` when given (SELFIES: a symbol that is a
molecule on its own, so no draw decodes to the empty molecule), and writes ``eos`` at the
last position if the model has not ended by then.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch

from vaekit.errors import VaekitError

METHODS = ("greedy", "sample", "beam")


class StepDecoder(Protocol):
    """What decoding needs of a model. ``state`` is whatever the model carries between steps."""

    pad_id: int
    bos_id: int
    eos_id: int
    max_length: int

    def start(self, z: torch.Tensor) -> Any: ...

    def step(self, tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """Logits ``(B, V)`` of the next token after ``tokens`` ``(B,)``, and the new state."""
        ...

    def select(self, state: Any, index: torch.Tensor) -> Any:
        """The state of rows ``index`` (a beam's survivors)."""
        ...


def _allowed(logits: torch.Tensor, decoder: StepDecoder, position: int, min_tokens: int,
             first_tokens: torch.Tensor | None = None) -> torch.Tensor:
    """Log-probabilities with the tokens that may not come at ``position`` (1-based) removed."""
    logits = logits.float().clone()
    logits[:, [decoder.pad_id, decoder.bos_id]] = -torch.inf
    if position == 1 and first_tokens is not None:
        keep = torch.zeros(logits.shape[1], dtype=torch.bool, device=logits.device)
        keep[first_tokens.to(logits.device)] = True
        logits[:, ~keep] = -torch.inf
    if position <= min_tokens:
        logits[:, decoder.eos_id] = -torch.inf
    logp = torch.log_softmax(logits, dim=-1)
    if position == decoder.max_length - 1:  # the last slot: the sequence must end here, at its true cost
        end = logp[:, decoder.eos_id].nan_to_num(neginf=0.0)
        logp = torch.full_like(logp, -torch.inf)
        logp[:, decoder.eos_id] = end
    return logp


@torch.no_grad()
def decode(decoder: StepDecoder, z: torch.Tensor, *, method: str = "greedy", temperature: float = 1.0,
           beam_width: int = 5, generator: torch.Generator | None = None, min_tokens: int = 1,
           first_tokens: torch.Tensor | None = None) -> torch.Tensor:
    """Token ids ``(B, max_length)`` for latents ``z`` ``(B, D)`` (see the module docstring)."""
    if method == "beam":
        return beam_search(decoder, z, width=beam_width, min_tokens=min_tokens, first_tokens=first_tokens)
    if method not in METHODS:

        raise VaekitError(f"method: '{method}' is not one of {', '.join(METHODS)}")
    if method == "sample" and temperature <= 0:

        raise VaekitError(f"temperature: must be positive, got {temperature}")
    b = len(z)
    out = torch.full((b, decoder.max_length), decoder.pad_id, dtype=torch.long, device=z.device)
    out[:, 0] = decoder.bos_id
    done = torch.zeros(b, dtype=torch.bool, device=z.device)
    state = decoder.start(z)
    for t in range(1, decoder.max_length):
        logits, state = decoder.step(out[:, t - 1], state)
        logp = _allowed(logits, decoder, t, min_tokens, first_tokens)
        if method == "greedy":
            token = logp.argmax(dim=-1)
        else:
            probs = torch.softmax(logp / temperature, dim=-1)
            token = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        out[:, t] = torch.where(done, decoder.pad_id, token)
        done |= token == decoder.eos_id
        if bool(done.all()):
            break
    return out


@torch.no_grad()
def beam_search(decoder: StepDecoder, z: torch.Tensor, *, width: int = 5, min_tokens: int = 1,
                first_tokens: torch.Tensor | None = None) -> torch.Tensor:
    """The highest-scoring sequence (sum of token log-probabilities, no length bonus) that a
    beam of ``width`` finds for each latent; ``width = 1`` is greedy decoding."""
    if width < 1:

        raise VaekitError(f"beam_width: must be at least 1, got {width}")
    b, length = len(z), decoder.max_length
    rows = torch.arange(b, device=z.device).repeat_interleave(width)
    state = decoder.select(decoder.start(z), rows)
    seqs = torch.full((b * width, length), decoder.pad_id, dtype=torch.long, device=z.device)
    seqs[:, 0] = decoder.bos_id
    scores = torch.full((b, width), -torch.inf, device=z.device)
    scores[:, 0] = 0.0  # one live beam at first, so the start is not counted `width` times
    done = torch.zeros(b * width, dtype=torch.bool, device=z.device)
    for t in range(1, length):
        logits, state = decoder.step(seqs[:, t - 1], state)
        logp = _allowed(logits, decoder, t, min_tokens, first_tokens)
        ended = torch.full_like(logp, -torch.inf)
        ended[:, decoder.pad_id] = 0.0  # a finished beam only pads, at no cost
        logp = torch.where(done.unsqueeze(1), ended, logp)
        vocab = logp.shape[1]
        total = (scores.reshape(-1, 1) + logp).reshape(b, width * vocab)
        scores, best = total.topk(width, dim=1)
        parent = (best // vocab + torch.arange(b, device=z.device).unsqueeze(1) * width).reshape(-1)
        token = (best % vocab).reshape(-1)
        seqs, done = seqs[parent], done[parent]
        state = decoder.select(state, parent)
        seqs[:, t] = token
        done = done | (token == decoder.eos_id)
        if bool(done.all()):
            break
    return seqs.reshape(b, width, length)[:, 0]
