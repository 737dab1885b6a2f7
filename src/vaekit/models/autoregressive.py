"""Decoding an autoregressive token model: greedy, sampled with a temperature, or beam search.

The algorithms see the model only through ``StepDecoder`` (start from z, one step from
the previous tokens, reorder the states for a beam), so they are written once for any
sequence family and stay pure torch (molecule strings are made in ``vaekit.chem``).

Every result is a ``(B, max_length)`` int64 tensor laid out like the training rows:
``bos`` first, then the tokens, ``eos``, and ``pad`` after it. Generation never emits
``pad`` or ``bos``, never ends before ``min_tokens`` tokens (an empty sequence is no
molecule), takes only the tokens a ``grammar`` allows when one is given (SMILES: no ring
bond left open, no atom over its valence; SELFIES: a first symbol that is a molecule on its
own: ``vaekit.data.molecules.grammar``), and writes ``eos`` at the last position if the
model has not ended by then.
"""

from __future__ import annotations

from collections.abc import Sequence
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
        """The state of rows ``index`` (a beam's survivors, or the sequences still running)."""
        ...


class Grammar(Protocol):
    """Which tokens may come next, given each sequence's tokens so far. A state is immutable
    (a beam's copies share it); the decoder's probabilities are renormalised over the
    allowed tokens."""

    def start(self, n: int) -> list[Any]:
        """The states of ``n`` sequences before their first token."""
        ...

    def allowed(self, states: Sequence[Any]) -> torch.Tensor:
        """``(len(states), V)`` booleans: the tokens each may take next (at least one each)."""
        ...

    def advance(self, states: Sequence[Any], tokens: Sequence[int]) -> list[Any]:
        """The states after each took its token (``eos`` or ``pad``: ended)."""
        ...


class _Rules:
    """What may come at each position, as additive masks (0 or -inf) built once per decoding
    rather than once per step: adding 0 leaves a logit exactly as it was, so the result is
    the same as clearing the forbidden entries one by one; then the grammar's, per row."""

    def __init__(self, decoder: StepDecoder, vocab: int, min_tokens: int, grammar: Grammar | None,
                 device: torch.device) -> None:
        self.decoder, self.min_tokens, self.grammar = decoder, min_tokens, grammar
        base = torch.zeros(vocab, device=device)
        base[[decoder.pad_id, decoder.bos_id]] = -torch.inf
        no_end = base.clone()
        no_end[decoder.eos_id] = -torch.inf
        self.base, self.no_end = base, no_end

    def mask(self, position: int) -> torch.Tensor:
        return self.no_end if position <= self.min_tokens else self.base


def _log_probs(logits: torch.Tensor, rules: _Rules, position: int, states: Sequence[Any] | None) -> torch.Tensor:
    logits = logits.float() + rules.mask(position)
    if states is not None:
        ruled = logits.masked_fill(~rules.grammar.allowed(states).to(logits.device), -torch.inf)
        # where the grammar leaves nothing the position allows, the position's rules alone decide
        logits = torch.where(ruled.isinf().all(dim=1, keepdim=True), logits, ruled)
    logp = torch.log_softmax(logits, dim=-1)
    decoder = rules.decoder
    if position == decoder.max_length - 1:  # the last slot: the sequence must end here, at its true cost
        end = logp[:, decoder.eos_id].nan_to_num(neginf=0.0)
        logp = torch.full_like(logp, -torch.inf)
        logp[:, decoder.eos_id] = end
    return logp


#: Rows a step keeps computing even when fewer are still running: matrix products over a
#: handful of rows take other kernels, which round differently, and a sequence's tokens
#: should not depend on how many others in its batch have ended.
MIN_ROWS = 32


@torch.no_grad()
def decode(decoder: StepDecoder, z: torch.Tensor, *, method: str = "greedy", temperature: float = 1.0,
           beam_width: int = 5, generator: torch.Generator | None = None, min_tokens: int = 1,
           grammar: Grammar | None = None) -> torch.Tensor:
    """Token ids ``(B, max_length)`` for latents ``z`` ``(B, D)`` (see the module docstring).

    Sequences that have ended drop out of the batch (``decoder.select``), so a step costs
    what the sequences still running need. ``sample`` draws its noise for the whole batch at
    every step, as ``torch.multinomial`` over every row would (the Gumbel-max form it uses
    for one draw: argmax of p / q, q ~ Exp(1)), so a seed gives the same tokens however
    early the others end."""
    if method == "beam":
        return beam_search(decoder, z, width=beam_width, min_tokens=min_tokens, grammar=grammar)
    if method not in METHODS:

        raise VaekitError(f"method: '{method}' is not one of {', '.join(METHODS)}")
    if method == "sample" and temperature <= 0:

        raise VaekitError(f"temperature: must be positive, got {temperature}")
    b = len(z)
    out = torch.full((b, decoder.max_length), decoder.pad_id, dtype=torch.long, device=z.device)
    out[:, 0] = decoder.bos_id
    rows = torch.arange(b, device=z.device)  # the batch rows still computed, in batch order
    running = torch.ones(b, dtype=torch.bool, device=z.device)  # of those rows: not yet ended
    tokens = out[:, 0]
    rules = None
    state = decoder.start(z)
    states = None if grammar is None else grammar.start(b)
    for t in range(1, decoder.max_length):
        logits, state = decoder.step(tokens, state)
        if rules is None:
            rules = _Rules(decoder, logits.shape[1], min_tokens, grammar, logits.device)
        logp = _log_probs(logits, rules, t, states)
        if method == "greedy":
            tokens = logp.argmax(dim=-1)
        else:
            probs = torch.softmax(logp / temperature, dim=-1)
            noise = torch.empty((b, probs.shape[1]), dtype=probs.dtype, device=probs.device)
            noise.exponential_(1, generator=generator)
            if len(rows) < b:
                noise = noise[rows]
            tokens = (probs / noise).argmax(dim=-1)
        out[rows, t] = torch.where(running, tokens, decoder.pad_id)
        running &= tokens != decoder.eos_id
        if states is not None:
            states = grammar.advance(states, torch.where(running, tokens, decoder.eos_id).tolist())
        left = int(running.sum())
        if left == 0:
            break
        if left < len(rows) and len(rows) > MIN_ROWS and left <= len(rows) * 7 // 8:
            keep = running.nonzero().squeeze(1)
            if left < MIN_ROWS:  # pad with ended rows (their tokens are never written)
                ended = (~running).nonzero().squeeze(1)[:MIN_ROWS - left]
                keep = torch.cat([keep, ended]).sort().values
            rows, running, tokens = rows[keep], running[keep], tokens[keep]
            state = decoder.select(state, keep)
            if states is not None:
                states = [states[i] for i in keep.tolist()]
    return out


@torch.no_grad()
def beam_search(decoder: StepDecoder, z: torch.Tensor, *, width: int = 5, min_tokens: int = 1,
                grammar: Grammar | None = None) -> torch.Tensor:
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
    rules = None
    states = None if grammar is None else grammar.start(b * width)
    for t in range(1, length):
        logits, state = decoder.step(seqs[:, t - 1], state)
        if rules is None:
            rules = _Rules(decoder, logits.shape[1], min_tokens, grammar, logits.device)
        logp = _log_probs(logits, rules, t, states)
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
        if states is not None:
            states = grammar.advance([states[p] for p in parent.tolist()], token.tolist())
        done = done | (token == decoder.eos_id)
        if bool(done.all()):
            break
    return seqs.reshape(b, width, length)[:, 0]
