"""SMILES reading: formats, line numbers of invalid molecules, one-line errors, named sets."""

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rdkit")

from vaekit.data import download
from vaekit.data.molecules import smiles_sets
from vaekit.data.molecules.rdkit import canonical, randomized, to_mol
from vaekit.data.molecules.smiles_files import read_smiles, validate
from vaekit.errors import VaekitError

SHARED = Path(os.environ.get("VAEKIT_DATA_DIR") or "/work/shared/data")
MOLS = ["CCO", "c1ccccc1", "CC(=O)O"]


def test_canonical_and_randomized_agree_on_the_molecule():
    assert canonical("OCC") == "CCO"
    assert canonical("C1CC") is None and canonical("") is None and to_mol("xyz") is None
    rng = np.random.default_rng(0)
    variants = {randomized("CC(=O)Nc1ccc(O)cc1", rng) for _ in range(20)}
    assert len(variants) > 1  # really randomised ...
    assert {canonical(v) for v in variants} == {"CC(=O)Nc1ccc(O)cc1"}  # ... and the same molecule
    again = np.random.default_rng(0)
    assert randomized("CC(=O)Nc1ccc(O)cc1", again) == randomized("CC(=O)Nc1ccc(O)cc1", np.random.default_rng(0))


def test_smi_csv_and_gzip_read_the_same_strings(tmp_path):
    (tmp_path / "a.smi").write_text("SMILES\n" + "\n".join(f"{m} id{i}" for i, m in enumerate(MOLS)) + "\n\n")
    (tmp_path / "b.csv").write_text("name,Smiles,logP\n" + "".join(f"m{i},{m},{i}.5\n" for i, m in enumerate(MOLS)))
    with gzip.open(tmp_path / "c.csv.gz", "wt") as f:
        f.write("SMILES\n" + "\n".join(MOLS) + "\n")
    a, b, c = (read_smiles(tmp_path / n) for n in ("a.smi", "b.csv", "c.csv.gz"))
    assert a.smiles == b.smiles == c.smiles == MOLS
    assert a.line_numbers == b.line_numbers == c.line_numbers == [2, 3, 4]
    props = read_smiles(str(tmp_path / "b.csv"), properties=["logP"]).properties["logP"]
    np.testing.assert_array_equal(props, [0.5, 1.5, 2.5])


def test_a_quoted_one_column_csv_is_unquoted(tmp_path):
    (tmp_path / "q.csv").write_text('smiles\n"CCO"\n\n"C(=O)O"\n')
    file = read_smiles(tmp_path / "q.csv")
    assert file.smiles == ["CCO", "C(=O)O"] and file.line_numbers == [2, 4]


def test_invalid_lines_are_counted_with_their_line_numbers(tmp_path):
    path = tmp_path / "gen.smi"
    path.write_text("CCO\nC1CC\nc1ccccc1\n\nnot_a_smiles\nCC\n")
    file = read_smiles(path)
    kept, indices, report = validate(file)
    assert kept == ["CCO", "c1ccccc1", "CC"] and indices == [0, 2, 4]
    assert report == f"2 of 5 SMILES in {path} are invalid (lines 2, 5)"
    assert validate(read_smiles(tmp_path / "gen.smi"), canonicalize=False)[0] == ["CCO", "c1ccccc1", "CC"]


def test_many_invalid_lines_show_the_first_five(tmp_path):
    path = tmp_path / "gen.smi"
    path.write_text("CCO\n" + "X\n" * 7)
    assert validate(read_smiles(path))[2] == f"7 of 8 SMILES in {path} are invalid (lines 2, 3, 4, 5, 6, ...)"


def test_all_invalid_is_a_one_line_error(tmp_path):
    path = tmp_path / "bad.smi"
    path.write_text("C1CC\nQQ\n")
    expected = r"none of the 2 SMILES in .*bad.smi is valid \(lines 1, 2; line 1 reads 'C1CC'\)"
    with pytest.raises(VaekitError, match=expected):
        validate(read_smiles(path))


def test_user_errors_name_the_file_and_what_was_expected(tmp_path):
    (tmp_path / "t.csv").write_text("id,structure\n1,CCO\n")
    with pytest.raises(VaekitError, match=r"no column named SMILES \(columns: id, structure\)"):
        read_smiles(tmp_path / "t.csv")
    assert read_smiles(tmp_path / "t.csv", column="structure").smiles == ["CCO"]
    with pytest.raises(VaekitError, match=r"no column 'logp' \(columns: id, structure\)"):
        read_smiles(tmp_path / "t.csv", column="structure", properties=["logp"])
    (tmp_path / "p.csv").write_text("smiles,qed\nCCO,0.4\nCC,high\n")
    with pytest.raises(VaekitError, match=r"column 'qed', line 3: 'high' is not a number"):
        read_smiles(tmp_path / "p.csv", properties=["qed"])
    (tmp_path / "empty.smi").write_text("\n\n")
    with pytest.raises(VaekitError, match="holds no SMILES"):
        read_smiles(tmp_path / "empty.smi")
    with pytest.raises(VaekitError, match="no such file"):
        read_smiles(tmp_path / "missing.smi")
    with pytest.raises(VaekitError, match=r"unknown molecule set 'moses:valid' \(known: moses, moses:train"):
        read_smiles("moses:valid")
    (tmp_path / "x.sdf").write_text("CCO\n")
    with pytest.raises(VaekitError, match=r"unsupported file type 'x\.sdf'"):
        read_smiles(tmp_path / "x.sdf")


@pytest.mark.skipif(not (SHARED / "moses" / "test.csv.gz").is_file(), reason="needs the shared MOSES files")
def test_named_moses_test_reads_the_data_dir_copy(monkeypatch, tmp_path):
    monkeypatch.setenv("VAEKIT_DATA_DIR", str(SHARED))
    monkeypatch.setenv("VAEKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(download, "fetch_url", lambda *a, **k: pytest.fail("must not download"))
    file = read_smiles("moses:test")
    assert len(file) == 176074 and file.origin == "moses:test"
    assert file.smiles[0] == "CC1C2CCC(C2)C1CN(CCO)C(=O)c1ccc(Cl)cc1" and file.line_numbers[0] == 2


def test_a_damaged_data_dir_copy_is_an_error_not_a_download(monkeypatch, tmp_path):
    (tmp_path / "moses").mkdir()
    with gzip.open(tmp_path / "moses" / "test.csv.gz", "wt") as f:
        f.write("SMILES\nCCO\n")
    monkeypatch.setenv("VAEKIT_DATA_DIR", str(tmp_path))
    with pytest.raises(VaekitError, match="sha256 mismatch"):
        read_smiles("moses:test")


def test_a_missing_set_is_downloaded_into_the_cache_and_checked(monkeypatch, tmp_path):
    payload = gzip.compress(b"SMILES\nCCO\nCCN\n")
    spec = download.RemoteFile("tiny.csv.gz", ("https://example.org/tiny.csv.gz",),
                               sha256=hashlib.sha256(payload).hexdigest())
    monkeypatch.setitem(smiles_sets.NAMED_SETS, "moses:test", (smiles_sets.SmilesSource("moses", spec, "SMILES"),))
    monkeypatch.delenv("VAEKIT_DATA_DIR", raising=False)
    monkeypatch.setenv("VAEKIT_CACHE_DIR", str(tmp_path))
    calls = []
    monkeypatch.setattr(download, "fetch_url", lambda url, out, **k: (calls.append(url), out.write(payload)))
    assert read_smiles("moses:test").smiles == ["CCO", "CCN"]
    assert (tmp_path / "moses" / "tiny.csv.gz").read_bytes() == payload
    assert read_smiles("moses:test").smiles == ["CCO", "CCN"] and len(calls) == 1  # second read: the cache


def test_zinc250k_properties_need_the_csv_form(monkeypatch, tmp_path):
    with pytest.raises(VaekitError, match=r"'zinc250k' has no property 'MW' \(its properties: SAS, logP, qed\)"):
        read_smiles("zinc250k", properties=["MW"])
