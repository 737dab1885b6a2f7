"""Molecule tokenizers and the vocabulary: SMILES regex, SELFIES round trips, unknown tokens."""

import json
import random

import pytest

pytest.importorskip("rdkit")
pytest.importorskip("selfies")

from vaekit.data.molecules.rdkit import canonical, to_mol
from vaekit.data.molecules.tokens import SelfiesTokenizer, SmilesTokenizer, Vocabulary, get_tokenizer
from vaekit.errors import VaekitError

MOLECULES = ["C[C@@H](Cl)c1cc[nH]c1Br", "O=[N+]([O-])c1ccc(Cl)cc1", "C1CCCCCCCCC%10CCCCCCCCC%101",
             "CC(=O)Oc1ccccc1C(=O)O", "C/C=C/c1ccc(S(N)(=O)=O)cc1", "Cn1cnc2c1c(=O)n(C)c(=O)n2C"]


def test_the_smiles_tokenizer_keeps_multi_character_atoms_whole():
    assert SmilesTokenizer().tokenize("C[C@@H](Cl)c1cc[nH]c1Br") == [
        "C", "[C@@H]", "(", "Cl", ")", "c", "1", "c", "c", "[nH]", "c", "1", "Br"]
    assert SmilesTokenizer().tokenize("O=[N+]([O-])C%10CC%10") == [
        "O", "=", "[N+]", "(", "[O-]", ")", "C", "%10", "C", "C", "%10"]


@pytest.mark.parametrize("smiles", MOLECULES)
def test_the_smiles_tokenizer_round_trips(smiles):
    tokenizer = SmilesTokenizer()
    assert tokenizer.detokenize(tokenizer.tokenize(smiles)) == smiles


def test_a_character_the_smiles_tokenizer_cannot_read_is_named():
    with pytest.raises(VaekitError, match=r"SMILES 'CC&C': cannot tokenize the character '&' at position 3"):
        SmilesTokenizer().tokenize("CC&C")


@pytest.mark.parametrize("smiles", MOLECULES)
def test_selfies_round_trip_to_the_same_canonical_molecule(smiles):
    tokenizer = SelfiesTokenizer()
    tokens = tokenizer.tokenize(smiles)
    assert all(t.startswith("[") and t.endswith("]") for t in tokens)
    assert canonical(tokenizer.detokenize(tokens)) == canonical(smiles)


def test_any_sequence_of_selfies_tokens_decodes_to_a_valid_molecule():
    tokenizer = SelfiesTokenizer()
    vocabulary = Vocabulary.build((tokenizer.tokenize(s) for s in MOLECULES), "selfies")
    symbols = vocabulary.tokens[3:]
    atoms = [t for t in symbols if tokenizer.detokenize([t])]
    assert len(atoms) >= 5 and len(atoms) < len(symbols)  # branch and ring symbols are not molecules alone
    rng = random.Random(0)
    for _ in range(300):
        tokens = [rng.choice(atoms)] + [rng.choice(symbols) for _ in range(rng.randint(0, 30))]
        smiles = tokenizer.detokenize(tokens)
        assert to_mol(smiles) is not None, tokens


def test_the_vocabulary_puts_the_special_tokens_first_and_round_trips_through_json():
    vocabulary = Vocabulary.build([["C", "O"], ["C", "N"]], "smiles")
    assert vocabulary.tokens == ["<pad>", "<bos>", "<eos>", "C", "N", "O"]
    assert vocabulary.encode(["C", "O"]) == [1, 3, 5, 2]
    assert vocabulary.decode([1, 3, 5, 2, 0, 0]) == ["C", "O"]
    assert vocabulary.decode([1, 4, 2, 3, 3]) == ["N"]  # stops at eos
    again = Vocabulary.from_dict(json.loads(json.dumps(vocabulary.to_dict())))
    assert again.tokens == vocabulary.tokens and again.tokenizer == "smiles"


def test_an_unknown_token_is_one_line_naming_the_token_and_the_molecule():
    vocabulary = Vocabulary.build([["C", "O"]], "smiles")
    with pytest.raises(VaekitError, match=r"unknown token 'Br' in molecule 'CBr': not in the smiles vocabulary of 2 "
                                          r"tokens") as caught:
        vocabulary.encode(["C", "Br"], molecule="CBr")
    assert "\n" not in str(caught.value)
    with pytest.raises(VaekitError, match="unknown token '<eos>'"):  # special tokens are not data
        vocabulary.encode(["<eos>"])


def test_tokenizers_are_chosen_by_name():
    assert get_tokenizer("smiles").name == "smiles"
    assert get_tokenizer("selfies").name == "selfies"
    with pytest.raises(VaekitError, match="tokens: 'bpe' is not one of selfies, smiles"):
        get_tokenizer("bpe")
