"""Decoding under SMILES syntax: an untrained SMILES sequence VAE (near-random logits) writes
strings RDKit parses with the constraint, and broken ones without it, by sampling, greedy and
beam search; SELFIES models decode as they did, and saved SMILES models load unchanged."""

import pytest
import torch

pytest.importorskip("rdkit")

from rdkit import Chem, RDLogger

import vaekit
from vaekit.data.molecules.syntax import SmilesSyntax
from vaekit.data.molecules.tokens import SmilesTokenizer, Vocabulary
from vaekit.models import SeqVAE, SeqVAEConfig
from vaekit.models.autoregressive import decode

from moses_head import MOSES_TEST_HEAD

BONDS = {"-", "=", "#", "/", "\\"}


def _model(tokenizer: str, vocabulary: list[str], seed: int = 0) -> SeqVAE:
    torch.manual_seed(seed)
    config = SeqVAEConfig(input_shape=(40,), latent_dim=4, vocabulary=vocabulary, tokenizer=tokenizer,
                          embedding_dim=8, encoder_hidden=8, decoder_hidden=16)
    return SeqVAE(config).eval()


@pytest.fixture(scope="module")
def smiles_model() -> tuple[SeqVAE, Vocabulary]:
    tokenizer = SmilesTokenizer()
    vocabulary = Vocabulary.build([tokenizer.tokenize(s) for s in MOSES_TEST_HEAD[:20]] + [["%10", "."]], "smiles")
    return _model("smiles", vocabulary.tokens), vocabulary


def _strings(ids: torch.Tensor, vocabulary: Vocabulary) -> list[str]:
    return ["".join(vocabulary.decode(row)) for row in ids.tolist()]


def _complete(smiles: str) -> bool:
    """Balanced branches, every ring label closed, no bond before ')' or the end, and RDKit parses it."""
    tokens = SmilesTokenizer().tokenize(smiles)
    labels = [t for t in tokens if t[0].isdigit() or t[0] == "%"]
    depth = 0
    for token, following in zip(tokens, [*tokens[1:], None], strict=True):
        depth += (token == "(") - (token == ")")
        if depth < 0 or (token in BONDS and following in (")", None)):
            return False
    RDLogger.DisableLog("rdApp.*")
    return (depth == 0 and all(labels.count(label) % 2 == 0 for label in labels)
            and Chem.MolFromSmiles(smiles, sanitize=False) is not None)


def _latents(n: int) -> torch.Tensor:
    return torch.randn(n, 4, generator=torch.Generator().manual_seed(0))


def test_a_smiles_model_samples_only_complete_strings_and_breaks_them_without_the_constraint(smiles_model):
    model, vocabulary = smiles_model
    assert isinstance(model.syntax, SmilesSyntax)
    z = _latents(1500)
    constrained = _strings(model.generate(z, method="sample", generator=torch.Generator().manual_seed(1)),
                           vocabulary)
    assert all(_complete(s) for s in constrained), [s for s in constrained if not _complete(s)][:3]
    assert len(set(constrained)) > 1400  # near-random logits: the strings are varied
    free = _strings(model.generate(z, method="sample", generator=torch.Generator().manual_seed(1), syntax=False),
                    vocabulary)
    assert sum(not _complete(s) for s in free) > len(free) // 2
    # the likelihood's ancestral draw (Model.sample's path) is constrained as well
    drawn = model.decode(z[:200]).sample(generator=torch.Generator().manual_seed(2))
    assert all(_complete(s) for s in _strings(drawn.long(), vocabulary))


def test_the_constraint_draws_the_same_noise(smiles_model):
    """Sampling consumes the generator as it does without the constraint, so what is drawn
    after a constrained batch does not depend on the constraint."""
    model, _ = smiles_model
    on, off = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    model.generate(_latents(300), method="sample", generator=on)
    model.generate(_latents(300), method="sample", generator=off, syntax=False)
    assert torch.equal(on.get_state(), off.get_state())


@pytest.mark.parametrize("method,options", [("greedy", {}), ("beam", {"beam_width": 3})])
def test_greedy_and_beam_search_obey_the_constraint(smiles_model, method, options):
    model, vocabulary = smiles_model
    z = _latents(300 if method == "greedy" else 60)
    constrained = _strings(model.generate(z, method=method, **options), vocabulary)
    assert all(_complete(s) for s in constrained), [s for s in constrained if not _complete(s)][:3]
    free = _strings(model.generate(z, method=method, syntax=False, **options), vocabulary)
    assert any(not _complete(s) for s in free)


def test_selfies_models_have_no_constraint_and_decode_as_before():
    """SELFIES: the decoder takes the path it took before the constraint existed (the plain
    loop of test_seqvae.py checks that path token for token), whatever ``syntax`` says."""
    model = _model("selfies", ["<pad>", "<bos>", "<eos>", "[C]", "[N]", "[O]", "[=C]", "[Ring1]", "[Branch1]"])
    assert model.syntax is None
    z = _latents(200)
    for method in ("sample", "greedy", "beam"):
        default = model.generate(z, method=method, beam_width=3, generator=torch.Generator().manual_seed(4))
        free = model.generate(z, method=method, beam_width=3, generator=torch.Generator().manual_seed(4),
                              syntax=False)
        plain = decode(model, z, method=method, beam_width=3, generator=torch.Generator().manual_seed(4))
        assert torch.equal(default, free) and torch.equal(default, plain), method


def test_a_saved_smiles_model_loads_unchanged_and_decodes_alike(smiles_model, tmp_path):
    model, _ = smiles_model
    assert not any("syntax" in key for key in model.state_dict())  # no weights of its own
    model.save(tmp_path / "saved")
    again = vaekit.load(tmp_path / "saved")
    z = _latents(100)
    for method in ("sample", "beam"):
        assert torch.equal(again.generate(z, method=method, beam_width=2, generator=torch.Generator().manual_seed(5)),
                           model.generate(z, method=method, beam_width=2, generator=torch.Generator().manual_seed(5)))
