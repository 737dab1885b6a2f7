"""MOSES metrics against hand-computed values on tiny sets, the reference cache, and the evaluate command."""

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rdkit")
pytest.importorskip("fcd")

from rdkit import DataStructs
from rdkit.Chem import rdFingerprintGenerator
from typer.testing import CliRunner

from vaekit.chem import metrics as M
from vaekit.chem import metrics_reference
from vaekit.chem.metrics_filters import passes_filters
from vaekit.chem.metrics_reference import fragments_of, reference_stats, scaffold_of
from vaekit.chem.metrics_similarity import aggregated_tanimoto, cosine_similarity, morgan_bits
from vaekit.cli import app
from vaekit.data.molecules.rdkit import to_mol
from vaekit.errors import VaekitError

from moses_head import MOSES_TEST_HEAD

SHARED = Path(os.environ.get("VAEKIT_DATA_DIR") or "/work/shared/data")
needs_moses = pytest.mark.skipif(not (SHARED / "moses" / "mcf.csv").is_file(), reason="needs the MOSES filter files")

# The first twenty molecules of MOSES's test set (they all pass MOSES's filters: the set was built with them).
DRUGS = MOSES_TEST_HEAD[:20]


@pytest.fixture(autouse=True)
def isolated_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("VAEKIT_CACHE_DIR", str(tmp_path / "cache"))
    if (SHARED / "moses").is_dir():
        monkeypatch.setenv("VAEKIT_DATA_DIR", str(SHARED))


def test_validity_counts_invalid_lines_of_a_file(tmp_path):
    from vaekit.data.molecules.smiles_files import read_smiles

    path = tmp_path / "gen.smi"
    path.write_text("CCO\nC1CC\nc1ccccc1\nQ\nCCN\n")
    assert M.fraction_valid(read_smiles(path).smiles) == pytest.approx(3 / 5)
    assert M.fraction_valid(["CCO", None, ""]) == pytest.approx(1 / 3)


def test_unique_at_k_counts_canonical_duplicates_among_the_first_k_valid():
    gen = ["CCO", "C1CC", "OCC", "CCN", "NCC", "c1ccccc1"]  # OCC is CCO, NCC is CCN; C1CC invalid
    assert M.fraction_unique(gen, k=2) == pytest.approx(1 / 2)  # first two valid: CCO, CCO
    assert M.fraction_unique(gen, k=4) == pytest.approx(2 / 4)
    assert M.fraction_unique(gen) == pytest.approx(3 / 5)
    with pytest.warns(UserWarning, match="unique@10 computed on only 5"):
        assert M.fraction_unique(gen, k=10) == pytest.approx(3 / 5)


def test_novelty():
    assert M.novelty(DRUGS, DRUGS) == 0.0
    assert M.novelty(["CCO", "OCC", "CCN", "CCC"], ["OCC"]) == pytest.approx(2 / 3)  # distinct: CCO, CCN, CCC


def test_internal_diversity_hand_computed():
    assert M.internal_diversity(["CCO"] * 4) == pytest.approx(0.0)
    assert M.internal_diversity(["CCO"] * 4, p=2) == pytest.approx(0.0)
    # ethanol and benzene share no Morgan bit: each molecule's mean similarity is (1 + 0) / 2
    assert M.internal_diversity(["CCO", "c1ccccc1"]) == pytest.approx(0.5)
    assert M.internal_diversity(["CCO", "c1ccccc1"], p=2) == pytest.approx(1 - math.sqrt(0.5))


def test_vectorised_tanimoto_matches_rdkit():
    gen = [to_mol(s) for s in DRUGS[:7]]
    ref = [to_mol(s) for s in DRUGS[5:]]
    mfp = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    g_fps, r_fps = [mfp.GetFingerprint(m) for m in gen], [mfp.GetFingerprint(m) for m in ref]
    expected_max = [max(DataStructs.BulkTanimotoSimilarity(g, r_fps)) for g in g_fps]
    expected_mean2 = [np.mean(np.square(DataStructs.BulkTanimotoSimilarity(g, r_fps))) ** 0.5 for g in g_fps]
    g_bits, r_bits = np.stack([morgan_bits(m) for m in gen]), np.stack([morgan_bits(m) for m in ref])
    np.testing.assert_allclose(aggregated_tanimoto(r_bits, g_bits, agg="max", device="cpu"), expected_max, rtol=1e-6)
    np.testing.assert_allclose(aggregated_tanimoto(r_bits, g_bits, agg="mean", p=2, device="cpu"), expected_mean2,
                               rtol=1e-6)


@needs_moses
def test_filters_on_molecules_known_to_fail_or_pass():
    fails = {
        "C=CC#N": "MCF1 (Michael acceptor nitrile)",
        "c1ccc(N=Nc2ccccc2)cc1": "azo alert",
        "C[N+](C)(C)C": "charged atom",
        "CCI": "iodine is not an allowed atom",
        "C1CCCCCCC1": "8-membered ring",
    }
    for smiles, why in fails.items():
        assert not passes_filters(to_mol(smiles)), why
    assert passes_filters(to_mol("C1CCCCCC1"))  # a 7-membered ring is fine
    assert all(passes_filters(to_mol(s)) for s in DRUGS)
    assert M.fraction_passes_filters(["C=CC#N", "CCI", "CCO", "c1ccccc1"]) == pytest.approx(0.5)


@needs_moses
def test_the_fingerprint_screen_never_changes_a_filter_answer():
    from rdkit import Chem

    from vaekit.chem.metrics_filters import matches_alert

    alerts = ["C=CC#N", "c1ccc(N=Nc2ccccc2)cc1", "O=C1C=CC(=O)C=C1", "S=C(N)N", "CC(=O)OO", "O=Cc1ccccc1",
              "C=CC(=O)c1ccccc1", "Nc1ccc(N)cc1", "CN(C)c1ccc(C=Cc2ccccc2)cc1", "ClCCCl", "CS(=O)(=O)Cl"]
    mols = [Chem.AddHs(to_mol(s)) for s in alerts + DRUGS]
    screened = [matches_alert(m) for m in mols]
    assert screened == [matches_alert(m, screen=False) for m in mols]
    assert sum(screened) >= 5  # the check is not vacuous: several of these hit an alert


def test_fragments_and_scaffolds_follow_moses_rules():
    assert sorted(fragments_of(to_mol("CC(=O)Nc1ccc(O)cc1"))) == ["[1*]C(C)=O", "[16*]c1ccc(O)cc1", "[5*]N[5*]"]
    assert scaffold_of(to_mol("CCc1ccccc1")) is None  # one ring: MOSES ignores it
    assert scaffold_of(to_mol("CCc1ccc2ccccc2c1")) == "c1ccc2ccccc2c1"
    assert cosine_similarity({"a": 1, "b": 1}, {"a": 2}) == pytest.approx(1 / math.sqrt(2))
    assert math.isnan(cosine_similarity({}, {"a": 1}))


def test_a_set_against_itself():
    assert M.snn(DRUGS, DRUGS) == pytest.approx(1.0)
    assert M.fragment_similarity(DRUGS, DRUGS) == pytest.approx(1.0)
    assert M.scaffold_similarity(DRUGS, DRUGS) == pytest.approx(1.0)
    assert abs(M.fcd(DRUGS, DRUGS)) < 1e-3
    assert M.fcd(DRUGS[:10], DRUGS[10:]) > 1.0  # different molecules are measurably apart


def test_worker_processes_give_the_same_canonical_smiles():
    from vaekit.chem.metrics_reference import CHUNK, canonicalize_all

    smiles = ["OCC", "c1ccccc1C", "C1CC"] * (CHUNK * 2 // 3 + 1)
    assert canonicalize_all(smiles, n_jobs=2) == canonicalize_all(smiles[:3]) * (CHUNK * 2 // 3 + 1)
    assert canonicalize_all(smiles[:3]) == ["CCO", "Cc1ccccc1", None]


def test_reference_statistics_are_cached_as_npz_and_json(monkeypatch, tmp_path):
    first = reference_stats(DRUGS)
    files = sorted(p.suffix for p in (tmp_path / "cache" / "chem").iterdir())
    assert files == [".json", ".npz"]
    monkeypatch.setattr(metrics_reference, "describe_all", lambda *a, **k: pytest.fail("must come from the cache"))
    again = reference_stats(DRUGS)
    np.testing.assert_array_equal(again.fingerprints, first.fingerprints)
    np.testing.assert_allclose(again.fcd_sigma, first.fcd_sigma)
    assert again.fragments == first.fragments and again.scaffolds == first.scaffolds and again.size == len(DRUGS)


@needs_moses
def test_moses_metrics_all_keys_and_values():
    gen = [*DRUGS[:10], "C1CC", None, DRUGS[0]]
    result = M.moses_metrics(gen, test=DRUGS, test_scaffolds=DRUGS[10:], train=DRUGS[:5])
    assert list(result) == [
        "valid", "unique@1k", "unique@10k", "FCD/Test", "SNN/Test", "Frag/Test", "Scaf/Test",
        "FCD/TestSF", "SNN/TestSF", "Frag/TestSF", "Scaf/TestSF", "IntDiv", "IntDiv2", "Filters", "Novelty",
    ]
    assert result["valid"] == pytest.approx(11 / 13)
    assert result["unique@1k"] == pytest.approx(10 / 11)
    assert result["SNN/Test"] == pytest.approx(1.0)  # every generated molecule is in the reference
    assert result["Filters"] == 1.0
    assert result["Novelty"] == pytest.approx(5 / 10)
    with pytest.raises(VaekitError, match="none of the 2 generated SMILES is a valid molecule"):
        M.moses_metrics(["C1CC", None], test=DRUGS)


@needs_moses
def test_evaluate_command_prints_json_and_fails_in_one_line(tmp_path, capsys):
    (tmp_path / "gen.smi").write_text("\n".join([*DRUGS[:6], "C1CC"]) + "\n")
    (tmp_path / "ref.smi").write_text("\n".join(DRUGS) + "\n")
    runner = CliRunner()
    out = runner.invoke(app, ["molecules", "evaluate", str(tmp_path / "gen.smi"), "--ref", str(tmp_path / "ref.smi"),
                              "--train", str(tmp_path / "ref.smi"), "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["metrics"]["valid"] == pytest.approx(6 / 7) and report["metrics"]["Novelty"] == 0.0
    assert report["metrics"]["SNN/Test"] == pytest.approx(1.0)
    assert any("1 of 7 SMILES are invalid (line 7)" in n for n in report["notes"])
    from vaekit.cli import main

    assert main(["molecules", "evaluate", str(tmp_path / "missing.smi")]) == 2
    capsys.readouterr()
    # a bad reference: one line naming it, no traceback (its cache key needs the file first)
    for ref, message in ((tmp_path / "missing-ref.smi", "no such file"), (tmp_path, "is a folder"),
                         ("moses:tset", "unknown molecule set 'moses:tset' (known: ")):
        assert main(["molecules", "evaluate", str(tmp_path / "gen.smi"), "--ref", str(ref)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


@needs_moses
def test_ref_moses_means_test_scaffold_test_and_train(monkeypatch, tmp_path):
    """The named sets are swapped for tiny files (with their real checksums) to keep this fast."""
    import gzip
    import hashlib
    import shutil

    from vaekit.chem.metrics_report import evaluate_file
    from vaekit.data.download import RemoteFile
    from vaekit.data.molecules import smiles_sets

    folder = tmp_path / "data" / "moses"
    folder.mkdir(parents=True)
    for name in ("mcf.csv", "wehi_pains.csv"):
        shutil.copy(SHARED / "moses" / name, folder / name)
    parts = {"train": DRUGS[:8], "test": DRUGS[4:14], "test_scaffolds": DRUGS[12:]}
    for part, smiles in parts.items():
        payload = gzip.compress(("SMILES\n" + "\n".join(smiles) + "\n").encode())
        (folder / f"{part}.csv.gz").write_bytes(payload)
        spec = RemoteFile(f"{part}.csv.gz", sha256=hashlib.sha256(payload).hexdigest())
        source = smiles_sets.SmilesSource("moses", spec, "SMILES")
        monkeypatch.setitem(smiles_sets.NAMED_SETS, f"moses:{part}", (source,))
    monkeypatch.setenv("VAEKIT_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "gen.smi").write_text("\n".join(DRUGS[:10]) + "\n")
    result = evaluate_file(str(tmp_path / "gen.smi"), ref="moses")
    assert result.references == {"Test": "moses:test", "TestSF": "moses:test_scaffolds", "train": "moses:train"}
    assert result.metrics["Novelty"] == pytest.approx(2 / 10)  # DRUGS[8:10] are not in train
    assert result.metrics["SNN/Test"] < 1.0 and "SNN/TestSF" in result.metrics
    assert "Novelty" not in evaluate_file(str(tmp_path / "gen.smi"), ref="moses", train="none").metrics


def test_long_passes_over_molecules_report_their_progress(monkeypatch):
    """The CLI's progress bar hears each chunk of a pass (what, done, total); the results are
    the same as without a listener, serially and in worker processes."""
    monkeypatch.setattr(metrics_reference, "CHUNK", 2)
    smiles = ["CCO", "c1ccccc1", "CC(=O)O", "CCN", "not a molecule"]
    heard: list[tuple[str, int, int]] = []
    with metrics_reference.reporting_progress(lambda *args: heard.append(args)):
        described = metrics_reference.describe_all(smiles)
        canonical = metrics_reference.canonicalize_all(smiles)
    assert [h[1:] for h in heard] == [(2, 5), (4, 5), (5, 5)] * 2
    assert {h[0] for h in heard} == {"describing molecules", "canonicalising molecules"}
    canonical_of = [f and f.canonical for f in metrics_reference.describe_all(smiles)]
    assert [f and f.canonical for f in described] == canonical_of and canonical_of[-1] is None
    assert canonical == metrics_reference.canonicalize_all(smiles) == [*canonical[:4], None]


def test_chemnet_activations_in_chunks_equal_fcds_own(monkeypatch):
    import fcd

    monkeypatch.setattr(metrics_reference, "CHEMNET_CHUNK", 7)  # several chunks, one pad length for all
    heard = []
    with metrics_reference.reporting_progress(lambda *args: heard.append(args)):
        ours = metrics_reference.chemnet_activations(DRUGS, device="cpu")
    theirs = fcd.get_predictions(fcd.load_ref_model(), DRUGS, device="cpu")
    np.testing.assert_array_equal(ours, theirs)
    assert heard == [("ChemNet activations", 7, 20), ("ChemNet activations", 14, 20), ("ChemNet activations", 20, 20)]


@needs_moses
def test_reference_files_are_cached_by_checksum_and_give_the_same_figures(monkeypatch, tmp_path):
    """First use computes and stores the statistics of the reference and the canonical training set;
    the second run reads neither file's molecules and gives the same figures; a changed file (same
    name) or a new metrics version is a new entry, never a stale one."""
    from vaekit.chem import metrics_report
    from vaekit.chem.metrics_report import evaluate_file

    ref, train, gen = tmp_path / "ref.smi", tmp_path / "train.smi", tmp_path / "gen.smi"
    ref.write_text("\n".join(DRUGS[:15]) + "\n")
    train.write_text("\n".join(MOSES_TEST_HEAD[30:60]) + "\n")
    gen.write_text("\n".join([*DRUGS[5:20], *MOSES_TEST_HEAD[40:45], "C1CC"]) + "\n")
    first = evaluate_file(str(gen), ref=str(ref), train=str(train))
    cache = tmp_path / "cache" / "chem"
    assert sorted(p.name.split("-")[0] + p.suffix for p in cache.iterdir() if not p.name.startswith(".")) == [
        "canonical.gz", "reference.json", "reference.npz"]

    def refuse(*args, **kwargs):
        pytest.fail("a cached reference must not be read, described or canonicalised again")

    read = metrics_report.read_smiles
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(metrics_report, "_reference_smiles", refuse)
        patch.setattr(metrics_report, "read_smiles", lambda source, **k: refuse() if str(source) == str(train)
                      else read(source, **k))
        patch.setattr(metrics_reference, "describe_all", refuse)
        patch.setattr(M, "canonicalize_all", refuse)
        again = evaluate_file(str(gen), ref=str(ref), train=str(train))
    assert {k: round(v, 4) for k, v in again.metrics.items()} == {k: round(v, 4) for k, v in first.metrics.items()}
    assert first.metrics["Novelty"] == pytest.approx(15 / 20)  # MOSES_TEST_HEAD[40:45] are in train

    ref.write_text("\n".join(DRUGS[:10]) + "\n")  # same name, new content: a new entry
    changed = evaluate_file(str(gen), ref=str(ref), train=str(train))
    assert changed.metrics["SNN/Test"] < first.metrics["SNN/Test"]
    assert len(list(cache.glob("reference-*.json"))) == 2
    monkeypatch.setattr(metrics_reference, "METRICS_VERSION", metrics_reference.METRICS_VERSION + 1)
    evaluate_file(str(gen), ref=str(ref), train=str(train))
    assert len(list(cache.glob("reference-*.json"))) == 3 and len(list(cache.glob("canonical-*.smi.gz"))) == 2
