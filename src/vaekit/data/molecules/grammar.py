"""What may follow a partial SMILES: the rules a decoder's tokens are held to.

A language model over SMILES characters spends much of its error on strings no chemistry
could mend: a ring bond opened and never closed, a ``)`` with no ``(``, a fifth bond on a
carbon, an end before the branches are closed. ``SmilesGrammar`` follows each sequence as
it is decoded (atoms, their remaining valence, the open branches and ring bonds, the length
left) and allows at each step only the tokens after which some valid SMILES can still
follow; the decoder's probabilities are renormalised over what is allowed, as in the
grammar and syntax-directed VAEs (Kusner et al. 2017, Dai et al. 2018). Its look-ahead is a
lower bound, so a sequence can still reach a state where nothing is allowed (a dead end:
the rules then give up on it). It is permissive where a rule would need the whole molecule:
an aromatic atom counts its aromatic bonds as single ones and is never refused for its
ring's electron count, so kekulisation can still fail; a valid SMILES of the training
vocabulary is never refused. Decoding is held to it only when asked (``HELD_BY_DEFAULT``).

An atom's valence is RDKit's own: the most single bonds the token takes and still parses
(``C`` 4, ``N`` 3, ``[N+]`` 4, ``[O-]`` 1, ``[nH]`` 2, an aromatic atom as its aliphatic
form), found once per vocabulary. A vocabulary with a token the rules do not know (``*``,
``~``, reaction arrows) gets no grammar (``smiles_grammar`` returns None).

``FirstAtom`` is the SELFIES rule: the first symbol must be a molecule on its own.
Both speak the ``vaekit.models.autoregressive.Grammar`` protocol.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from vaekit.data.molecules.tokens import EOS, SPECIAL_TOKENS, get_tokenizer

ORGANIC = re.compile(r"^(Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p)$")
BRACKET = re.compile(r"^\[(\d*)([a-z][a-z]?|[A-Z][a-z]?)(.*)]$")
RING = re.compile(r"^(\d|%\d\d)$")
BONDS = {"-": 1, "=": 2, "#": 3, "$": 4, "/": 1, "\\": 1, ":": 1}
#: Bond orders a ring closure or free valence is compared with never exceed this, so states
#: that differ only above it share a mask.
MOST = 4

# what the last token was
START, ATOM, RING_BOND, BOND, OPEN, CLOSE, END, ATOM_BOND = range(8)  # ATOM_BOND: a bond right after an atom


class State(NamedTuple):
    """One sequence so far (immutable, so a beam's copies share it): the last token's kind,
    the tokens taken, the pending bond order (0: none), the current atom, each atom's free valence, the atoms
    where open branches started, the open ring bonds (token, atom, order) and the bonded pairs."""

    last: int
    length: int
    pending: int
    current: int
    free: tuple[int, ...]
    branches: tuple[int, ...]
    rings: tuple[tuple[int, int, int], ...]
    pairs: frozenset[tuple[int, int]]


class SmilesGrammar:
    """The rules of SMILES over one vocabulary (see the module docstring)."""

    def __init__(self, tokens: Sequence[str], max_length: int) -> None:
        self.tokens = list(tokens)
        self.max_length = max_length
        self.size = len(self.tokens)
        self.eos = self.tokens.index(EOS)
        self.kind: dict[int, str] = {}
        self.capacity: dict[int, int] = {}
        self.order: dict[int, int] = {}
        for i, token in enumerate(tokens):
            if i < len(SPECIAL_TOKENS):
                continue
            if ORGANIC.match(token) or BRACKET.match(token):
                self.kind[i], self.capacity[i] = "atom", _capacity(token)
            elif token in BONDS:
                self.kind[i], self.order[i] = "bond", BONDS[token]
            elif RING.match(token):
                self.kind[i] = "ring"
            elif token in ("(", ")", "."):
                self.kind[i] = token
            else:
                raise ValueError(token)
        # the ids of each kind (atoms and bonds as arrays, beside their valences and orders, for the masks)
        self.atoms = np.array([i for i, k in self.kind.items() if k == "atom"], dtype=np.int64)
        self.bonds = np.array([i for i, k in self.kind.items() if k == "bond"], dtype=np.int64)
        self._atom_capacity = np.array([self.capacity[a] for a in self.atoms], dtype=np.int64)
        self._bond_order = np.array([self.order[b] for b in self.bonds], dtype=np.int64)
        self.ring_ids = [i for i, k in self.kind.items() if k == "ring"]
        self.opens, self.closes, self.dots = ([i for i, k in self.kind.items() if k == c] for c in "().")
        self._index: dict[tuple, int] = {}  # a key's row in the table of masks
        self._table = torch.zeros(64, self.size, dtype=torch.bool)  # grown by doubling, rows written once

    def start(self, n: int) -> list[State]:
        return [State(START, 0, 0, -1, (), (), (), frozenset())] * n

    def allowed(self, states: Sequence[State]) -> torch.Tensor:
        """``(len(states), V)`` booleans: the tokens each sequence may take next (all of them
        where the rules leave none, or after its end)."""
        rows = [self._row(self._key(s)) for s in states]
        return self._table[torch.tensor(rows, dtype=torch.long)]

    def advance(self, states: Sequence[State], tokens: Sequence[int]) -> list[State]:
        return [self._advance(s, t) for s, t in zip(states, tokens, strict=True)]

    # -- one sequence -------------------------------------------------------------------
    def _key(self, s: State) -> tuple:
        """What the mask depends on: states with the same key allow the same tokens."""
        last, length, pending, current, free, branches, rings, pairs = s
        if last == END:
            return (END,)
        ring_keys = tuple((token, order, min(free[atom], MOST), atom == current,
                           (min(atom, current), max(atom, current)) in pairs)
                          for token, atom, order in rings) if rings else ()
        # the positions left after the next token (the last slot is the end's), where they are few
        room = self.max_length - 2 - length
        tight = room if room <= len(branches) + len(rings) + 4 else None
        branch_free = min(free[branches[-1]], MOST) if branches else 0
        return (last, pending, min(free[current], MOST) if current >= 0 else 0, len(branches), ring_keys, tight,
                branch_free)

    def _row(self, key: tuple) -> int:
        row = self._index.get(key)
        if row is None:
            row = self._index[key] = len(self._index)
            if row == len(self._table):
                self._table = torch.cat([self._table, torch.zeros_like(self._table)])
            self._table[row] = self._build(key)
        return row

    def _build(self, key: tuple) -> torch.Tensor:
        """The mask of a key, built in numpy (a few list-indexed writes) and handed to the table once."""
        allowed = np.zeros(self.size, dtype=bool)
        if key[0] == END:
            return torch.ones(self.size, dtype=torch.bool)
        last, pending, free, nested, rings, room, branch_free = key
        after_atom = last in (ATOM, RING_BOND, CLOSE)
        # with a ring bond open and no branch to return to, the current atom must keep a bond
        # free for what closes it: an atom, ring bond or branch that uses its last one is a dead end
        spare = 1 if rings and not nested else 0
        bond_before = last in (BOND, ATOM_BOND)
        need = pending if bond_before else (0 if last == START else 1)
        if last == START or bond_before or free >= 1:
            allowed[self.atoms] = self._atom_capacity - need >= spare
        if after_atom or last == OPEN:
            allowed[self.bonds] = self._bond_order <= free
        if after_atom and free >= 1 + spare:
            allowed[self.opens] = True
        if after_atom and nested and not (rings and nested == 1 and branch_free == 0):
            allowed[self.closes] = True  # not back to an atom with no bond free, rings open, no branch left
        if last in (ATOM, RING_BOND, ATOM_BOND):  # a ring bond follows an atom, a bond between them
            open_rings = {token: (order, ring_free, here or bonded) for token, order, ring_free, here, bonded in rings}
            for token in self.ring_ids:
                if token not in open_rings:  # opening one: the current atom must go on to close it
                    allowed[token] = (pending or 1) + (0 if nested else 1) <= free
                else:
                    order, ring_free, blocked = open_rings[token]
                    bond = pending or order
                    left = 1 if len(rings) > 1 and not nested else 0
                    allowed[token] = not blocked and bond + left <= free and bond - order <= ring_free
        if after_atom and not nested and not rings:
            allowed[[self.eos, *self.dots]] = True
        if room is not None:
            allowed &= self._finishing(nested, rings, pending, last) <= room
        return torch.from_numpy(allowed if allowed.any() else ~allowed)  # a dead end: the rules give up

    def _finishing(self, branches: int, rings: tuple, pending: int, last: int) -> np.ndarray:
        """The fewest tokens each next token leaves to write before the end: one per open
        branch and ring bond, and the end; an atom after a bond, a branch or a new ring bond;
        and one more atom where the atom the token leaves current cannot close every open ring
        (one was opened on it or its neighbour, or it has fewer free bonds than rings open)."""
        base = branches + len(rings) + 1
        after = np.full(self.size, base)
        if rings:
            bond = 0 if last == START else (pending or 1)
            held = any(here for *_, here, _ in rings)  # the next atom is bonded to the current one only
            after[self.atoms] += held | (len(rings) > self._atom_capacity - bond)
        after[self.bonds] += 1
        after[self.opens] += 2
        after[self.closes] = base - 1
        after[self.dots] += 1
        after[self.ring_ids] = base + 2
        for i, (token, *_) in enumerate(rings):  # closing one: the others, from the current atom
            others = rings[:i] + rings[i + 1:]
            after[token] = base - 1 + any(here or bonded for *_, here, bonded in others)
        after[self.eos] = 0
        return after

    def _advance(self, s: State, token: int) -> State:
        if s.last == END:
            return s
        kind = self.kind.get(token)
        if token == self.eos or kind is None:
            return s._replace(last=END)
        try:
            return self._taken(s, token, kind)
        except IndexError:  # a token only a dead end let through: nothing is held any more
            return s._replace(last=END)

    def _taken(self, s: State, token: int, kind: str) -> State:
        """The state after ``token``; each branch builds the new state whole (``State(...)`` rather than
        ``_replace``, which decoding would call for every sequence at every step)."""
        last, n, pending, current, free, branches, rings, pairs = s
        n += 1
        if kind == "atom":
            new = len(free)
            if last == START:
                return State(ATOM, n, 0, new, (*free, self.capacity[token]), branches, rings, pairs)
            bond = pending or 1
            grown = [*free, self.capacity[token] - bond]
            grown[current] -= bond
            return State(ATOM, n, 0, new, tuple(grown), branches, rings, pairs | {(current, new)})
        if kind == "bond":
            return State(ATOM_BOND if last in (ATOM, RING_BOND) else BOND, n, self.order[token], current, free,
                         branches, rings, pairs)
        if kind == "(":
            return State(OPEN, n, pending, current, free, (*branches, current), rings, pairs)
        if kind == ")":
            return State(CLOSE, n, pending, branches[-1], free, branches[:-1], rings, pairs)
        if kind == ".":
            return State(START, n, pending, -1, free, branches, rings, pairs)
        changed = list(free)
        opened = next((r for r in rings if r[0] == token), None)
        if opened is None:
            bond = pending or 1
            changed[current] -= bond
            return State(RING_BOND, n, 0, current, tuple(changed), branches, (*rings, (token, current, bond)), pairs)
        _, atom, order = opened
        bond = pending or order
        changed[current] -= bond
        changed[atom] -= bond - order
        return State(RING_BOND, n, 0, current, tuple(changed), branches, tuple(r for r in rings if r is not opened),
                     pairs | {(min(atom, current), max(atom, current))})


def smiles_grammar(tokens: Sequence[str], max_length: int) -> SmilesGrammar | None:
    """The SMILES rules over ``tokens`` (a vocabulary), or None where it holds a token they do not know."""
    try:
        return SmilesGrammar(tokens, max_length)
    except ValueError:
        return None


#: The tokens whose decoding is held to their grammar unless a caller says otherwise: SELFIES,
#: whose first-symbol rule only keeps the empty molecule out. SMILES of either form are decoded
#: as the model draws them: the strings the grammar rescues from failing are the model's least
#: likely, and become unusual molecules, so the valid samples match the data less well (and
#: sampling takes longer); a caller who needs every decode to be a molecule asks for it
#: (docs/benchmarks/molecules.md).
HELD_BY_DEFAULT = ("selfies",)


def grammar_for(tokenizer: str, tokens: Sequence[str], max_length: int, *, use: bool | None = None
                ) -> SmilesGrammar | FirstAtom | None:
    """The rules decoding is held to for a vocabulary of ``tokenizer``'s tokens (None: none).
    ``use``: True / False; None: as ``HELD_BY_DEFAULT`` says."""
    if not (tokenizer in HELD_BY_DEFAULT if use is None else use):
        return None
    if tokenizer != "selfies":
        return smiles_grammar(tokens, max_length)
    selfies = get_tokenizer("selfies")
    first = [i for i, t in enumerate(tokens) if i >= len(SPECIAL_TOKENS) and selfies.detokenize([t])]
    return FirstAtom(first, len(tokens)) if first else None


class FirstAtom:
    """SELFIES: the first symbol is one of ``first`` (those that are a molecule on their own), so
    no decoded sequence is the empty molecule; anything may follow."""

    def __init__(self, first: Sequence[int], size: int) -> None:
        self.first = torch.zeros(size, dtype=torch.bool)
        self.first[list(first)] = True

    def start(self, n: int) -> list[bool]:
        return [True] * n

    def allowed(self, states: Sequence[bool]) -> torch.Tensor:
        """One row per sequence, in one operation (this runs at every step of every decode)."""
        return self.first | ~torch.tensor(states, dtype=torch.bool).unsqueeze(1)

    def advance(self, states: Sequence[bool], tokens: Sequence[int]) -> list[bool]:
        return [False] * len(states)


def _capacity(token: str) -> int:
    """The most single bonds ``token`` takes and still parses in RDKit (its aliphatic form for an
    aromatic atom, whose ring bonds count as single here)."""
    from rdkit import Chem, rdBase

    bracket = BRACKET.match(token)
    if bracket:
        isotope, element, rest = bracket.groups()
        atom = f"[{isotope}{element.capitalize()}{rest}]"
    else:
        atom = token.capitalize() if len(token) == 1 else token
    with rdBase.BlockLogs():
        for k in range(9):
            if Chem.MolFromSmiles(atom + "(C)" * k) is None:
                return max(k - 1, 0)
    return 8
