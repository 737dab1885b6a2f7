"""Reconstruction of held-out molecules: the figures on a stand-in with known decodings, then end to end
through `vaekit evaluate` on a tiny sequence VAE; and `molecules sample`'s default output."""

import json

import pytest
import torch

pytest.importorskip("rdkit")

from rdkit import DataStructs
from rdkit.Chem import rdFingerprintGenerator

import vaekit
from vaekit.chem.generation import MoleculeModel
from vaekit.chem.reconstruction import reconstruction_figures
from vaekit.cli import main
from vaekit.data.molecules.rdkit import canonical, to_mol
from vaekit.errors import VaekitError

from moses_head import MOSES_TEST_HEAD

SMALL = {"model": "seqvae", "latent_dim": 8, "embedding_dim": 16, "encoder_hidden": 32, "decoder_hidden": 64}


class StandIn:
    """Encodes each molecule to its index; decodes greedy / beam from fixed lists."""

    def __init__(self, greedy, beam):
        self.decodings = {"greedy": greedy, "beam": beam}
        self.calls = []

    def encode(self, smiles):
        return torch.arange(len(smiles), dtype=torch.float32)[:, None]

    def decode(self, z, *, method="greedy", beam_width=5, **_):
        self.calls.append((method, beam_width if method == "beam" else None))
        return [self.decodings[method][int(i)] for i in z[:, 0]]


def _tanimoto(a, b):
    fp = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    return DataStructs.TanimotoSimilarity(fp.GetFingerprint(to_mol(a)), fp.GetFingerprint(to_mol(b)))


def test_exact_match_tanimoto_and_validity_from_known_decodings():
    inputs = ["OCC", "c1ccccc1", "CCN", "not a molecule"]  # OCC is ethanol written otherwise; the last is skipped
    stand_in = StandIn(greedy=["CCO", None, "CCO"], beam=["CCO", "c1ccccc1", "CCCN"])
    figures = reconstruction_figures(stand_in, inputs, beam_width=3)
    assert figures["reconstruction_n"] == 3 and figures["reconstruction_skipped"] == 1
    assert figures["exact_greedy"] == pytest.approx(1 / 3) and figures["valid_greedy"] == pytest.approx(2 / 3)
    assert figures["tanimoto_greedy"] == pytest.approx((1 + 0 + _tanimoto("CCN", "CCO")) / 3)
    assert figures["exact_beam"] == pytest.approx(2 / 3) and figures["valid_beam"] == 1.0
    assert figures["tanimoto_beam"] == pytest.approx((2 + _tanimoto("CCN", "CCCN")) / 3)
    assert stand_in.calls == [("greedy", None), ("beam", 3)] and figures["beam_width"] == 3
    assert "exact_beam" not in reconstruction_figures(stand_in, inputs[:3], beam_width=None)
    with pytest.raises(VaekitError, match="none of the 1 molecules to reconstruct is valid"):
        reconstruction_figures(stand_in, ["C1CC"])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("recon")
    smi = root / "mols.smi"
    smi.write_text("\n".join(MOSES_TEST_HEAD[:80]) + "\n")
    return vaekit.train({"source": str(smi), "test_fraction": 0.2}, SMALL, {"epochs": 1, "batch_size": 32},
                        root / "run", progress=False)


def test_vaekit_evaluate_reports_the_reconstruction_of_a_molecule_run(tiny_run, capsys):
    assert main(["evaluate", str(tiny_run.path), "--k", "2", "--reconstruct", "6", "--beam-width", "2",
                 "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    held_out = tiny_run.load_data().extras["test_smiles"][:6]
    molecules = MoleculeModel.load(tiny_run.path)
    greedy = molecules.decode(molecules.encode(held_out), method="greedy")
    assert figures["reconstruction_n"] == 6 and figures["beam_width"] == 2
    matches = sum(g == canonical(s) for g, s in zip(greedy, held_out, strict=True))
    assert figures["exact_greedy"] == pytest.approx(matches / 6)
    for key in ("exact_greedy", "exact_beam", "tanimoto_greedy", "tanimoto_beam", "valid_greedy", "valid_beam"):
        assert 0.0 <= figures[key] <= 1.0
    assert main(["evaluate", str(tiny_run.path), "--k", "2", "--reconstruct", "0", "--json"]) == 0
    assert "exact_greedy" not in json.loads(capsys.readouterr().out)
    assert main(["evaluate", str(tiny_run.path), "--beam-width", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --beam-width: expected at least 1, got 0"


def test_molecules_sample_without_out_writes_into_the_run_and_replaces_nothing(tiny_run, tmp_path, monkeypatch,
                                                                              capsys):
    monkeypatch.chdir(tmp_path)
    for name in ("samples.smi", "samples-2.smi"):
        assert main(["molecules", "sample", str(tiny_run.path), "-n", "5", "--quiet"]) == 0
        assert f"wrote {tiny_run.path / name}" in capsys.readouterr().out.replace("\n", "")
    first = (tiny_run.path / "samples.smi").read_text()
    assert first == (tiny_run.path / "samples-2.smi").read_text() and len(first.splitlines()) == 5
    assert list(tmp_path.iterdir()) == []  # nothing in the current directory
    given = tmp_path / "mine.smi"
    given.write_text("keep\n")
    assert main(["molecules", "sample", str(tiny_run.path), "-n", "5", "-o", str(given), "--quiet"]) == 2
    assert given.read_text() == "keep\n"
