"""The SMILES grammar a decoder is held to: it never refuses a valid SMILES of its vocabulary, it
refuses what no continuation can mend, and decoding under it spells only well-formed strings."""

import pytest
import torch

pytest.importorskip("rdkit")

from vaekit.data.molecules.grammar import FirstAtom, SmilesGrammar, grammar_for, smiles_grammar
from vaekit.data.molecules.rdkit import canonical, to_mol
from vaekit.data.molecules.tokens import SPECIAL_TOKENS, get_tokenizer
from vaekit.models.autoregressive import decode

from moses_head import MOSES_TEST_HEAD

#: Charges, stereo, explicit hydrogens, a two-digit ring bond, a dot, every bond token.
HARDER = ["C[C@@H]1CC[N+](C)(C)C1", "[O-][n+]1ccccc1", "O=[N+]([O-])c1ccc2[nH]ccc2c1", "C%10CCCCC%10",
          "C/C=C/C(=O)[O-].[Na+]", "C#N", "C1CC2CCC1C2", "c1ccc2c(c1)-c1ccccc1-2", "CC(C)(C)[Si](C)(C)O",
          "O=S(=O)(O)c1ccccc1", "C1=CC=CC=C1", "C$C"]
SMILES = [*MOSES_TEST_HEAD, *HARDER]


def _grammar(tokenizer, max_length=100):
    seen = sorted({t for s in SMILES for t in get_tokenizer(tokenizer).tokenize(s)})
    return SmilesGrammar([*SPECIAL_TOKENS, *seen], max_length)


@pytest.fixture(scope="module")
def grammar():
    return _grammar("smiles")


def _ids(grammar, smiles, tokenizer="smiles"):
    index = {t: i for i, t in enumerate(grammar.tokens)}
    return [index[t] for t in get_tokenizer(tokenizer).tokenize(smiles)]


def _allowed_after(grammar, prefix):
    states = grammar.start(1)
    for token in _ids(grammar, prefix):
        states = grammar.advance(states, [token])
    allowed = grammar.allowed(states)[0]
    return {grammar.tokens[i] for i in allowed.nonzero().squeeze(1).tolist()}


@pytest.mark.parametrize("tokenizer", ["smiles", "kekule"])
def test_every_token_of_a_valid_smiles_is_allowed(tokenizer):
    """Also at the longest length the vocabulary's molecules need: no valid string is cut short."""
    tokens = {s: get_tokenizer(tokenizer).tokenize(s) for s in SMILES}
    grammar = _grammar(tokenizer, max_length=max(map(len, tokens.values())) + 2)
    for smiles in SMILES:
        assert to_mol(smiles) is not None
        states = grammar.start(1)
        for token in [*_ids(grammar, smiles, tokenizer), grammar.eos]:
            assert bool(grammar.allowed(states)[0, token]), (smiles, grammar.tokens[token])
            states = grammar.advance(states, [token])


def test_kekule_tokens_spell_the_same_molecule_without_aromatic_atoms():
    kekule = get_tokenizer("kekule")
    for smiles in SMILES:
        written = "".join(kekule.tokenize(smiles))
        assert canonical(written) == canonical(smiles)
        assert not any(t in ("c", "n", "o", "s") or t.startswith("[n") for t in kekule.tokenize(smiles)), written


def test_valences_are_rdkits(grammar):
    capacity = {grammar.tokens[i]: grammar.capacity[i] for i in grammar.atoms}
    assert capacity["C"] == 4 and capacity["N"] == 3 and capacity["O"] == 2 and capacity["Cl"] == 1
    assert capacity["[N+]"] == 4 and capacity["[O-]"] == 1 and capacity["[nH]"] == 2


def test_what_no_continuation_can_mend_is_refused(grammar):
    assert "<eos>" not in _allowed_after(grammar, "C1CC")  # a ring bond still open
    assert "<eos>" not in _allowed_after(grammar, "CC(C")  # a branch still open
    assert ")" not in _allowed_after(grammar, "CC")  # no branch to close
    assert "1" not in _allowed_after(grammar, "C1")  # a ring bond to the atom itself
    assert "1" not in _allowed_after(grammar, "C1C")  # a second bond between two bonded atoms
    assert "1" in _allowed_after(grammar, "C1CC")
    after_full_carbon = _allowed_after(grammar, "CC(C)(C)(C)")  # the second carbon has its four bonds
    assert not after_full_carbon & {"C", "(", "=", "1"} and "<eos>" in after_full_carbon
    assert "#" not in _allowed_after(grammar, "CO") and "=" in _allowed_after(grammar, "CC")
    assert "=" not in _allowed_after(grammar, "C=N(")  # N has one bond left, so no double bond
    assert _allowed_after(grammar, "") == {grammar.tokens[i] for i in grammar.atoms}  # an atom first


def test_a_vocabulary_with_a_token_the_rules_do_not_know_gets_no_grammar():
    assert smiles_grammar([*SPECIAL_TOKENS, "C", "*"], 100) is None
    assert smiles_grammar([*SPECIAL_TOKENS, "C", "1", "("], 100) is not None


class UniformDecoder:
    """Every token equally likely at every step: what a model that has learned nothing decodes."""

    pad_id, bos_id, eos_id = 0, 1, 2

    def __init__(self, vocab, max_length):
        self.vocab, self.max_length = vocab, max_length

    def start(self, z):
        return None

    def step(self, tokens, state):
        return torch.zeros(len(tokens), self.vocab), state

    def select(self, state, index):
        return state


@pytest.mark.parametrize("max_length", [12, 40])
def test_decoding_under_the_grammar_spells_well_formed_strings(max_length):
    """Uniform tokens almost never make a molecule. Under the grammar a string in Kekulé form (no
    aromatic atoms, whose rings must also pair their electrons) is a molecule unless it reaches a
    state the rules see too late to be a dead end (rare for a trained decoder, not for this one)."""
    grammar = _grammar("kekule", max_length)
    decoder = UniformDecoder(len(grammar.tokens), max_length)
    z = torch.zeros(500, 1)
    spelled = {}
    for name, rules in (("free", None), ("grammar", grammar)):
        ids = decode(decoder, z, method="sample", grammar=rules, generator=torch.Generator().manual_seed(0))
        spelled[name] = ["".join(grammar.tokens[i] for i in row[1:] if i > 2) for row in ids.tolist()]
    valid = {name: sum(to_mol(s) is not None for s in out) for name, out in spelled.items()}
    assert valid["grammar"] >= 0.8 * len(z) > 10 * valid["free"], valid


def test_the_selfies_rule_starts_with_a_symbol_that_is_a_molecule():
    rule = FirstAtom([3, 5], 7)
    states = rule.start(2)
    assert rule.allowed(states)[0].nonzero().squeeze(1).tolist() == [3, 5]
    assert bool(rule.allowed(rule.advance(states, [3, 5])).all())


def test_smiles_decoding_is_held_to_the_grammar_only_when_asked():
    vocabulary = [*SPECIAL_TOKENS, "C", "1", "(", ")", "="]
    assert grammar_for("smiles", vocabulary, 50) is None and grammar_for("kekule", vocabulary, 50) is None
    assert isinstance(grammar_for("kekule", vocabulary, 50, use=True), SmilesGrammar)
    assert isinstance(grammar_for("selfies", [*SPECIAL_TOKENS, "[C]", "[Branch1]"], 50), FirstAtom)
    assert grammar_for("selfies", [*SPECIAL_TOKENS, "[C]"], 50, use=False) is None
