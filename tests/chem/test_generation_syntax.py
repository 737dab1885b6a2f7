"""The molecule tools decode SMILES under SMILES syntax unless told not to: ``MoleculeModel``,
``sample_file`` and ``vaekit molecules sample --no-syntax``, on an untrained SMILES model."""

import pytest
import torch

pytest.importorskip("rdkit")

from rdkit import Chem, RDLogger

from vaekit.chem.generation import MoleculeModel, sample_file
from vaekit.cli import main
from vaekit.data.molecules.tokens import SmilesTokenizer, Vocabulary
from vaekit.models import SeqVAE, SeqVAEConfig

from moses_head import MOSES_TEST_HEAD


@pytest.fixture(scope="module")
def smiles_dir(tmp_path_factory):
    """An untrained SMILES sequence VAE saved as a model folder (what ``MoleculeModel.load`` reads)."""
    tokenizer = SmilesTokenizer()
    vocabulary = Vocabulary.build([tokenizer.tokenize(s) for s in MOSES_TEST_HEAD[:20]], "smiles")
    torch.manual_seed(0)
    model = SeqVAE(SeqVAEConfig(input_shape=(40,), latent_dim=4, vocabulary=vocabulary.tokens, tokenizer="smiles",
                                embedding_dim=8, encoder_hidden=8, decoder_hidden=16))
    folder = tmp_path_factory.mktemp("smiles") / "model"
    model.save(folder)
    return folder


def _parse_failures(lines: list[str]) -> int:
    RDLogger.DisableLog("rdApp.*")
    return sum(Chem.MolFromSmiles(s, sanitize=False) is None for s in lines)


def test_molecule_model_decodes_under_syntax_unless_turned_off(smiles_dir):
    z = torch.randn(300, 4, generator=torch.Generator().manual_seed(0))
    constrained = MoleculeModel.load(smiles_dir)
    assert constrained.syntax and _parse_failures(constrained.decode_strings(z, method="greedy")) == 0
    free = MoleculeModel.load(smiles_dir, syntax=False)
    assert _parse_failures(free.decode_strings(z, method="greedy")) > 0


def test_sample_file_and_the_cli_flag(smiles_dir, tmp_path, capsys):
    done = sample_file(smiles_dir, tmp_path / "on.smi", n=300, seed=1, progress=False)
    assert done.n == 300 and _parse_failures((tmp_path / "on.smi").read_text().splitlines()) == 0
    assert main(["molecules", "sample", str(smiles_dir), "-n", "300", "--seed", "1", "-o", str(tmp_path / "cli.smi"),
                 "--quiet"]) == 0
    assert (tmp_path / "cli.smi").read_text() == (tmp_path / "on.smi").read_text()
    assert main(["molecules", "sample", str(smiles_dir), "-n", "300", "--seed", "1", "-o", str(tmp_path / "off.smi"),
                 "--no-syntax", "--quiet"]) == 0
    off = (tmp_path / "off.smi").read_text().splitlines()
    assert _parse_failures(off) > 150
    sample_file(smiles_dir, tmp_path / "api_off.smi", n=300, seed=1, progress=False, syntax=False)
    assert (tmp_path / "api_off.smi").read_text().splitlines() == off
