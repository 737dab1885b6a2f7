"""SMILES syntax as a mask over the next token: the token classes, what each rule allows after a
given prefix, and random walks through the mask that must all end in strings RDKit parses."""

import itertools

import pytest
import torch

pytest.importorskip("rdkit")

from rdkit import Chem, RDLogger

from vaekit.data.molecules.syntax import (
    ATOM,
    BOND,
    CLOSE,
    DOT,
    NEVER,
    OPEN,
    RING,
    SmilesSyntax,
    syntax_constraint,
    token_class,
)
from vaekit.data.molecules.tokens import SmilesTokenizer

TOKENS = ["<pad>", "<bos>", "<eos>", "#", "%10", "(", ")", "-", ".", "/", "1", "2", "3", "=", "Br", "C", "Cl", "N",
          "O", "[C@@H]", "[nH]", "c", "n", "o", "%01", "+"]
INDEX = {t: i for i, t in enumerate(TOKENS)}
EOS = "<eos>"
BONDS = {"#", "-", "/", "="}
ATOMS = {"Br", "C", "Cl", "N", "O", "[C@@H]", "[nH]", "c", "n", "o"}
LABELS = {"%10", "1", "2", "3"}


def parses(smiles: str) -> bool:
    RDLogger.DisableLog("rdApp.*")
    return Chem.MolFromSmiles(smiles, sanitize=False) is not None


def allowed_after(prefix: str, length: int = 40, tokens: list[str] = TOKENS) -> set[str]:
    """The tokens the constraint allows after the SMILES ``prefix`` (tokenized as a model's data is)."""
    syntax = SmilesSyntax(tokens)
    state = syntax.start(1, length)
    for token in SmilesTokenizer().tokenize(prefix) if prefix else []:
        assert bool(syntax.allowed(state)[0, tokens.index(token)]), (prefix, token)
        state = syntax.advance(state, torch.tensor([tokens.index(token)]))
    return {t for t, ok in zip(tokens, syntax.allowed(state)[0].tolist(), strict=True) if ok}


def test_token_classes_follow_the_tokenizer():
    assert {t: token_class(t) for t in ("[nH]", "[C@@H]", "Cl", "Br", "c", "*")} == dict.fromkeys(
        ("[nH]", "[C@@H]", "Cl", "Br", "c", "*"), ATOM)
    assert [token_class(t) for t in ("1", "9", "%10", "%99")] == [RING] * 4
    assert [token_class(t) for t in ("=", "#", "-", "/", "\\", ":", "$")] == [BOND] * 7
    assert [token_class(t) for t in ("(", ")", ".")] == [OPEN, CLOSE, DOT]
    assert [token_class(t) for t in ("%01", "+", "@", ">", "?")] == [NEVER] * 5  # RDKit refuses them bare
    assert not parses("C%01CC%01") and not parses("C+C")


def test_selfies_has_no_constraint_and_smiles_has_one():
    assert syntax_constraint("selfies", ["<pad>", "<bos>", "<eos>", "[C]"]) is None
    assert isinstance(syntax_constraint("smiles", TOKENS), SmilesSyntax)


def test_a_string_starts_with_an_atom_and_ends_after_one():
    assert allowed_after("") == ATOMS
    assert allowed_after("C") == ATOMS | BONDS | LABELS | {"(", ".", EOS}
    assert allowed_after("C=") == ATOMS | LABELS  # a bond: an atom or a ring bond, never ')' or the end
    assert allowed_after("C.") == ATOMS


def test_branches_open_after_an_atom_and_close_when_open():
    assert allowed_after("C(") == ATOMS | BONDS  # no '(' or ')' right after '(', no end inside
    assert allowed_after("C(=") == ATOMS  # RDKit refuses C(=1)...
    assert not parses("C(=1)CC1") and not parses("C()C") and not parses("C((C))")
    assert EOS not in allowed_after("C(C") and ")" in allowed_after("C(C")
    assert {")", EOS} & allowed_after("C(C)") == {EOS}
    assert ")" in allowed_after("C(C(C)") and EOS not in allowed_after("C(C(C)")


def test_ring_labels_close_on_another_atom_not_bonded_to_the_opener():
    assert "1" not in allowed_after("C1")  # C11
    assert "1" not in allowed_after("C1C")  # C1C1: a second bond between the same two atoms
    assert "1" in allowed_after("C1CC") and EOS not in allowed_after("C1CC")
    assert "2" not in allowed_after("C12CCC1")  # C12CCC12: the two closures bond the same pair
    assert "1" not in allowed_after("C1C(C)")  # C1C(C)1
    assert "1" not in allowed_after("C(C1)")  # C(C1)1: the opener is the branch's first atom
    assert "1" in allowed_after("C1CC(C)")  # ...but a ring may close after a branch: C1CC(C)1
    assert EOS in allowed_after("C1CC=1") and EOS in allowed_after("C%10CC%10")
    for smiles in ("C1C1", "C12CCC12", "C1C(C)1", "C(C1)1", "C11"):
        assert not parses(smiles), smiles
    assert parses("C1CC(C)1") and parses("C1.C1")


def test_a_short_budget_forces_what_is_open_to_close():
    # the shortest ring takes 7 positions: bos C 1 C C 1 eos
    assert allowed_after("C", length=6) & LABELS == set()
    assert allowed_after("C", length=7) & LABELS == LABELS
    assert allowed_after("C1CC", length=7) == {"1"}
    assert allowed_after("C(", length=6) == ATOMS
    assert allowed_after("C(C", length=6) == {")"}


@pytest.mark.parametrize("length", [3, 4, 6, 9, 14, 24, 40])
def test_random_walks_through_the_mask_end_in_strings_rdkit_parses(length):
    """Uniform random scores, ring labels and branches favoured: every sequence ends by the last
    position, balanced, its rings closed, and RDKit reads it."""
    syntax = SmilesSyntax(TOKENS)
    batch = 400
    state = syntax.start(batch, length)
    generator = torch.Generator().manual_seed(length)
    favoured = torch.ones(len(TOKENS))
    favoured[[INDEX[t] for t in ("(", "%10", "1", "2", "3", ".")]] = 3.0
    written = torch.zeros(batch, length - 1, dtype=torch.long)
    for t in range(length - 1):
        allowed = syntax.allowed(state)
        running = state.last != 6
        assert bool(allowed[running].any(1).all())
        written[:, t] = (torch.rand(batch, len(TOKENS), generator=generator) * favoured * allowed).argmax(1)
        state = syntax.advance(state, written[:, t])
    strings = []
    for row in written.tolist():
        assert INDEX[EOS] in row
        strings.append("".join(TOKENS[i] for i in row[:row.index(INDEX[EOS])]))
    for smiles in strings:
        tokens = SmilesTokenizer().tokenize(smiles)
        assert smiles.count("(") == smiles.count(")")
        assert all(tokens.count(label) % 2 == 0 for label in LABELS), smiles
        assert tokens[-1] not in BONDS and all(b not in BONDS for b, c in itertools.pairwise(tokens) if c == ")")
        assert parses(smiles), smiles
    assert len(set(strings)) == len(ATOMS) if length == 3 else len(set(strings)) > min(batch // 2, 5 * length)


def test_select_keeps_the_rows_it_is_given():
    syntax = SmilesSyntax(TOKENS)
    state = syntax.start(2, 20)
    state = syntax.advance(state, torch.tensor([INDEX["C"], INDEX["N"]]))
    state = syntax.advance(state, torch.tensor([INDEX["("], INDEX["1"]]))
    picked = syntax.select(state, torch.tensor([1, 1, 0]))
    allowed = syntax.allowed(picked)
    assert not allowed[0, INDEX[EOS]] and not allowed[2, INDEX[")"]]
    assert torch.equal(allowed[0], allowed[1]) and bool(allowed[2, INDEX["="]])
