"""What a SMILES parser requires of a token sequence, as a mask over the next token.

A decoder that emits SMILES tokens one at a time can write strings no parser reads: a
``)`` with no branch open, a ring-bond label never closed, a bond symbol with nothing after
it. ``SmilesSyntax`` follows every sequence of a batch as it is decoded and says, before
each step, which tokens still leave the string completable into one that RDKit parses
(``Chem.MolFromSmiles(s, sanitize=False)``); the decoder gives the others probability
zero. It knows syntax only: valence, aromaticity and charges (what sanitization checks)
are the model's business.

The rules, as RDKit's parser applies them:

- a string starts with an atom; ``(`` and ``.`` follow an atom (or a ring bond or ``)``,
  which leave the same atom current); after ``(`` come a bond symbol or an atom, after a
  bond symbol an atom or a ring-bond label (not after ``(=``), after ``.`` an atom;
- ``)`` closes an open branch; the string ends with no branch and no ring bond open;
- a ring-bond label closes on an atom that is neither the one that opened it (``C11``)
  nor bonded to it already (``C1C1``, ``C12CC12``, ``C1C(C)1``): RDKit refuses a second
  bond between two atoms, so the constraint keeps each sequence's bonds so far;
- a sequence must end by the model's last position, so once what is still open needs
  every position left to close, only the tokens of such a shortest completion remain.

``%01`` .. ``%09`` are not ring labels RDKit accepts, and ``+``, ``@``, ``?`` and ``>`` have
no meaning outside a bracket atom; such tokens are never allowed. Each rule is checked on
tensors for the whole batch at once (the token classes are tables built once per
vocabulary), so it costs a few small tensor operations per decoding step.

SELFIES needs no such object: every SELFIES sequence is a valid molecule
(``syntax_constraint`` returns None for it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch

from vaekit.data.molecules.tokens import BOS, EOS, PAD

# -- token classes ------------------------------------------------------------------------
KINDS = ATOM, RING, OPEN, CLOSE, BOND, DOT, END, NEVER = range(8)
#: Bond symbols RDKit's SMILES parser reads between two atoms (``~``: any bond).
BOND_SYMBOLS = frozenset({"-", "=", "#", "$", ":", "/", "\\", "~"})
#: Atoms outside brackets: the organic subset, its aromatic forms and the wildcard.
BARE_ATOMS = frozenset({"B", "Br", "C", "Cl", "N", "O", "S", "P", "F", "I", "b", "c", "n", "o", "s", "p", "*"})
BRACKET_ATOM = re.compile(r"\[[^\]]+]")
RING_LABEL = re.compile(r"\d|%[1-9]\d")

# -- what the last token leaves (``SmilesState.last``) -----------------------------------------
#: Nothing written yet / an atom is current (after an atom, a ring bond or ``)``) / after ``(``
#: / after a bond symbol that follows an atom / after ``(`` and a bond symbol / after ``.`` /
#: ended.
STATES = AT_START, AT_ATOM, AT_BRANCH, AT_BOND, AT_BRANCH_BOND, AT_DOT, AT_END = range(7)


def state_after(last: int, kind: int) -> int:
    """What a token of class ``kind`` leaves after ``last`` (an ended sequence stays ended)."""
    if last == AT_END or kind in (END, NEVER):
        return AT_END
    if kind == BOND:
        return AT_BRANCH_BOND if last == AT_BRANCH else AT_BOND
    return {OPEN: AT_BRANCH, DOT: AT_DOT}.get(kind, AT_ATOM)


def token_class(token: str) -> int:
    """The syntactic class of one SMILES token (ATOM, RING, OPEN, CLOSE, BOND, DOT, END or NEVER)."""
    if token in BARE_ATOMS or BRACKET_ATOM.fullmatch(token):
        return ATOM
    if RING_LABEL.fullmatch(token):
        return RING
    if token in BOND_SYMBOLS:
        return BOND
    return {"(": OPEN, ")": CLOSE, ".": DOT, EOS: END}.get(token, NEVER)


@dataclass
class _Tables:
    """Per vocabulary token: its column in ``allowed``'s class mask, its class and its ring
    label's number; and the state each (state, class) pair leaves, flattened."""

    columns: torch.Tensor
    classes: torch.Tensor
    label: torch.Tensor
    after: torch.Tensor


@dataclass
class SmilesState:
    """Where each sequence of a batch stands; every tensor has the batch in front.

    Atoms are numbered in the order written. ``current`` is the atom the next bond, branch
    or ring bond attaches to; ``stack`` holds it for each open branch (restored by ``)``);
    ``opener`` the atom that opened each ring label while ``open``; ``bonded`` the bonds so
    far, an L x L matrix over atom numbers per row, which is how a ring closure that would
    duplicate a bond is seen."""

    last: torch.Tensor      # (B,) int64, an AT_* value
    depth: torch.Tensor     # (B,) int64, open branches
    stack: torch.Tensor     # (B, L) int64
    open: torch.Tensor      # (B, R) bool
    opener: torch.Tensor    # (B, R) int64
    atoms: torch.Tensor     # (B,) int64, atoms written (the next atom's number)
    current: torch.Tensor   # (B,) int64
    bonded: torch.Tensor    # (B, L * L) uint8, nonzero where atoms i and j are bonded (at i * L + j)
    written: int            # tokens written after bos
    length: int             # positions per sequence, bos and eos included


class SmilesSyntax:
    """The syntax constraint of SMILES tokens for one vocabulary (see the module docstring).

    ``start(batch, length, device)`` -> a state; ``allowed(state)`` -> ``(B, V)`` bool, the
    tokens that keep each sequence completable within ``length`` positions;
    ``advance(state, tokens)`` -> the state after ``tokens`` ``(B,)``; ``select(state,
    index)`` -> the state of rows ``index`` (a beam's survivors, the rows still decoding)."""

    def __init__(self, tokens: Sequence[str]) -> None:
        classes = [NEVER if t in (PAD, BOS) else token_class(t) for t in tokens]
        labels = sorted({t for t, c in zip(tokens, classes, strict=True) if c == RING})
        self.labels = max(len(labels), 1)  # one unused column when the vocabulary has no ring label
        # each token's column among the classes [ATOM, OPEN, CLOSE, BOND, DOT, END, NEVER, label 0, ...]
        column = {ATOM: 0, OPEN: 1, CLOSE: 2, BOND: 3, DOT: 4, END: 5, NEVER: 6}
        self._tables = {torch.device("cpu"): _Tables(
            columns=torch.tensor([7 + labels.index(t) if c == RING else column[c]
                                  for t, c in zip(tokens, classes, strict=True)]),
            classes=torch.tensor(classes),
            label=torch.tensor([labels.index(t) if c == RING else 0 for t, c in zip(tokens, classes, strict=True)]),
            after=torch.tensor([state_after(last, kind) for last in STATES for kind in KINDS]))}

    def __len__(self) -> int:
        return len(self._tables[torch.device("cpu")].classes)

    def _on(self, device: torch.device) -> _Tables:
        if device not in self._tables:
            cpu = self._tables[torch.device("cpu")]
            self._tables[device] = _Tables(*(getattr(cpu, f.name).to(device) for f in fields(_Tables)))
        return self._tables[device]

    def start(self, batch: int, length: int, device: torch.device | str = "cpu") -> SmilesState:
        device = torch.device(device)
        self._on(device)
        zeros = torch.zeros(batch, dtype=torch.long, device=device)
        return SmilesState(
            last=torch.full((batch,), AT_START, dtype=torch.long, device=device), depth=zeros,
            stack=torch.zeros(batch, length, dtype=torch.long, device=device),
            open=torch.zeros(batch, self.labels, dtype=torch.bool, device=device),
            opener=torch.zeros(batch, self.labels, dtype=torch.long, device=device),
            atoms=zeros.clone(), current=zeros.clone(),
            bonded=torch.zeros(batch, length * length, dtype=torch.uint8, device=device), written=0, length=length)

    def select(self, state: SmilesState, index: torch.Tensor) -> SmilesState:
        return SmilesState(state.last[index], state.depth[index], state.stack[index], state.open[index],
                           state.opener[index], state.atoms[index], state.current[index], state.bonded[index],
                           state.written, state.length)

    # -- the mask ------------------------------------------------------------------------------
    def allowed(self, state: SmilesState) -> torch.Tensor:
        """``(B, V)`` bool: the tokens after which each sequence can still be completed into a
        string RDKit parses, with eos at the last position at the latest. A sequence that
        has ended allows every token (the decoder writes padding there)."""
        s = state
        columns = self._on(s.last.device).columns
        at_atom = s.last == AT_ATOM
        on_current = s.open & (s.opener == s.current.unsqueeze(1))
        next_to_current = s.open & self._bonded(s, s.current)
        # columns: ATOM, OPEN, CLOSE, BOND, DOT, END, NEVER, then one per ring label
        ring_ok = (at_atom | (s.last == AT_BOND)).unsqueeze(1) & ~(on_current | next_to_current)
        complete = at_atom & (s.depth == 0) & ~s.open.any(-1)
        ok = torch.cat([torch.stack([s.last != AT_END, at_atom, at_atom & (s.depth > 0),
                                     at_atom | (s.last == AT_BRANCH), at_atom, complete,
                                     torch.zeros_like(at_atom)], 1), ring_ok], 1)
        left = s.length - 2 - s.written  # positions after this one
        if left < self._longest_completion(s):
            ok &= self._completion_lengths(s, on_current, next_to_current) <= left
        ok |= (s.last == AT_END).unsqueeze(1)
        return ok.index_select(1, columns)

    @staticmethod
    def _bonded(s: SmilesState, atom: torch.Tensor) -> torch.Tensor:
        """``(B, R)`` bool: whether each ring label's opener is bonded to ``atom`` ``(B,)``."""
        return s.bonded.gather(1, atom.unsqueeze(1) * s.length + s.opener).bool()

    def _longest_completion(self, s: SmilesState) -> int:
        """A bound on every entry of ``_completion_lengths``: while more positions are left,
        the length budget rules nothing out and is not computed."""
        return 2 * self.labels + 3 + int(s.depth.max())

    def _completion_lengths(self, s: SmilesState, on_current: torch.Tensor, next_to_current: torch.Tensor
                            ) -> torch.Tensor:
        """``(B, 7 + R)``: per column of ``allowed``, the tokens (eos included) of a shortest
        completion after that token.

        Ring labels that share an opener close on different atoms (a second closure to the
        same atom duplicates a bond), and a label cannot close on its opener or the opener's
        neighbours: so with k more atoms written in a chain from the current atom c, an opener
        a can take k + 1 closures, one fewer if a is bonded to c and two fewer if a is c.
        ``extra(required)`` is the k that every open label's opener needs; a completion is
        those k atoms, a ring digit per open label, a ')' per open branch and eos. Following
        it, each token shortens the completion by one, so a sequence never runs out of
        positions."""
        n_open = s.open.sum(-1)
        same = (s.opener.unsqueeze(2) == s.opener.unsqueeze(1)) & s.open.unsqueeze(1)
        count = same.sum(-1)  # (B, R) open labels with this label's opener
        to_close = n_open + s.depth + 1

        def extra(required: torch.Tensor, least: int = 0) -> torch.Tensor:
            return required.masked_fill(~s.open, least).amax(-1).clamp(min=least)

        here = extra(count - 1 + next_to_current.long() + 2 * on_current.long())
        has_parent = ((s.last != AT_START) & (s.last != AT_DOT)).unsqueeze(1)
        atom = extra(count - 1 + (on_current & has_parent).long()) + to_close
        after_bond = extra(count + on_current.long(), 1) + to_close  # a bond or '(' then an atom
        parent = s.stack.gather(1, (s.depth - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
        on_parent = s.open & (s.opener == parent.unsqueeze(1))
        next_to_parent = s.open & self._bonded(s, parent)
        pop = extra(count - 1 + next_to_parent.long() + 2 * on_parent.long()) + to_close - 1
        dot = extra(count, 1) + to_close
        close_ring = here + to_close - 1
        open_ring = torch.maximum(here, on_current.sum(-1) + 2) + to_close + 1
        rings = torch.where(s.open, close_ring.unsqueeze(1), open_ring.unsqueeze(1))
        fixed = torch.stack([atom, after_bond + 1, pop, after_bond, dot, torch.zeros_like(atom), atom], 1)
        return torch.cat([fixed, rings], 1)

    # -- one step ------------------------------------------------------------------------------
    def advance(self, state: SmilesState, tokens: torch.Tensor) -> SmilesState:
        """The state after each sequence's next token ``tokens`` ``(B,)`` (updated in place)."""
        s = state
        tables = self._on(s.last.device)
        kind = torch.where(s.last != AT_END, tables.classes[tokens], NEVER)
        is_atom, is_ring, is_open, is_close = kind == ATOM, kind == RING, kind == OPEN, kind == CLOSE

        # the one bond a token can add: an atom to the current one (unless the atom starts the
        # string or follows '.'), or a ring label closed to the atom that opened it
        label = tables.label[tokens].unsqueeze(1)
        was_open = s.open.gather(1, label).squeeze(1)
        partner = s.opener.gather(1, label).squeeze(1)
        closing = is_ring & was_open
        attached = is_atom & (s.last != AT_START) & (s.last != AT_DOT)
        other = torch.where(is_atom, s.atoms.clamp(max=s.length - 1), partner)
        both_ways = torch.stack([s.current * s.length + other, other * s.length + s.current], 1)
        s.bonded.scatter_add_(1, both_ways, (attached | closing).to(s.bonded.dtype).unsqueeze(1).expand(-1, 2))

        s.open.scatter_(1, label, (was_open ^ is_ring).unsqueeze(1))
        s.opener.scatter_(1, label, torch.where(is_ring & ~was_open, s.current, partner).unsqueeze(1))
        s.current = torch.where(is_atom, s.atoms, s.current)
        s.atoms = s.atoms + is_atom.long()

        # branches: '(' remembers the current atom, ')' returns to it
        slot = s.depth.clamp(0, s.length - 1).unsqueeze(1)
        s.stack.scatter_(1, slot, torch.where(is_open, s.current, s.stack.gather(1, slot).squeeze(1)).unsqueeze(1))
        s.depth = s.depth + is_open.long() - is_close.long()
        s.current = torch.where(is_close, s.stack.gather(1, s.depth.clamp(min=0).unsqueeze(1)).squeeze(1), s.current)

        s.last = tables.after[s.last * len(KINDS) + kind]
        s.written += 1
        return s

#: The constraint of each tokenizer kind: SELFIES needs none (every sequence is a molecule).
CONSTRAINTS: dict[str, type[SmilesSyntax] | None] = {"selfies": None, "smiles": SmilesSyntax}


def syntax_constraint(tokenizer: str, tokens: Sequence[str]) -> SmilesSyntax | None:
    """The syntax constraint for a vocabulary of ``tokenizer`` tokens, or None where every
    sequence is already well formed."""
    kind = CONSTRAINTS.get(tokenizer)
    return None if kind is None else kind(tokens)
