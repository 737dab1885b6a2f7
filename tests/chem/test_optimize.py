"""Latent-space optimisation, interpolation and their CLI, on a stand-in model with a known latent space.

``LibraryModel`` places a small library of real molecules at fixed random codes in 4-D:
decoding a code gives the nearest library molecule (nothing valid far from all of them),
and its property head is a kernel regression of the library's true logP / QED, so it is
smooth, differentiable and points the right way without being exact. A search that only
guessed, or that reported the head's predictions, would fail these tests.
"""

import importlib
import json
import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("rdkit")

from PIL import Image

from vaekit.chem.optimize import Candidate, optimize, write_csv
from vaekit.chem.properties import logp, penalized_logp, property_by_name, qed, sas, tanimoto
from vaekit.cli import main
from vaekit.data.molecules.rdkit import canonical, to_mol
from vaekit.errors import VaekitError

LIBRARY = [
    "O", "N", "CO", "CCO", "NCC(=O)O", "NC(N)=O", "OCC(O)CO", "CC(=O)O", "CCCC", "CCCCCC", "CCCCCCCC",
    "CCCCCCCCCC", "CCCCCCCCCCCC", "c1ccccc1", "Cc1ccccc1", "c1ccc2ccccc2c1", "c1ccc(-c2ccccc2)cc1",
    "Clc1ccc(Cl)cc1", "CC(=O)Oc1ccccc1C(=O)O", "Cn1cnc2c1c(=O)n(C)c(=O)n2C", "CC(C)Cc1ccc(C(C)C(=O)O)cc1",
    "CC(=O)Nc1ccc(O)cc1", "CC(C)(C)c1ccc2occ(CC(=O)Nc3ccccc3F)c2c1", "COc1ccc2[nH]cc(CCN)c2c1",
    "CN1CCCC1c1cccnc1", "O=C(O)c1ccccc1O", "CC(C)NCC(O)COc1cccc2ccccc12", "CN1C(=O)CN=C(c2ccccc2)c2cc(Cl)ccc21",
]
LOW_LOGP_SEEDS = ["O", "NC(N)=O", "OCC(O)CO"]


class LibraryModel:
    """A stand-in for ``MoleculeModel``: nearest-neighbour decoder over a fixed library."""

    def __init__(self, heads=("logP", "qed"), dim: int = 4, radius: float = 2.5) -> None:
        self.library = [canonical(s) for s in LIBRARY]
        self.codes = torch.randn(len(LIBRARY), dim, generator=torch.Generator().manual_seed(0)) * 1.5
        self.latent_dim, self.radius = dim, radius
        self.property_names = list(heads)
        compute = {"logP": logp, "qed": qed, "pIC50": lambda m: 0.1 * m.GetNumAtoms()}
        self.targets = torch.tensor([[compute[h](to_mol(s)) for h in heads] for s in self.library])
        self.decoded = 0

    def encode(self, smiles):
        rows = []
        for s in smiles:
            canon = canonical(s)
            if canon not in self.library:
                raise VaekitError(f"unknown molecule '{s}'")
            rows.append(self.codes[self.library.index(canon)])
        return torch.stack(rows)

    def decode(self, z, *, method="greedy", temperature=1.0, beam_width=5, generator=None):
        self.decoded += len(z)
        dist = torch.cdist(z.float(), self.codes)
        best = dist.argmin(1)
        return [self.library[i] if dist[k, i] < self.radius else None for k, i in enumerate(best.tolist())]

    def predict_properties(self, z):
        if not self.property_names:
            return None
        weights = torch.softmax(-torch.cdist(z.float(), self.codes) ** 2 / 2.0, dim=1)
        return weights @ self.targets


@pytest.mark.parametrize("method", ["gradient", "cmaes", "bo"])
def test_search_beats_the_seeds_on_rdkit_logp_within_its_budget(method):
    model = LibraryModel()
    result = optimize(model, "logp", budget=40, seeds=LOW_LOGP_SEEDS, method=method, top=5, seed=1)
    best = result.candidates[0]
    seed_best = max(logp(to_mol(s)) for s in LOW_LOGP_SEEDS)
    assert result.best_seed_value == pytest.approx(seed_best)
    assert best.value > seed_best + 1.0
    assert best.value == pytest.approx(logp(to_mol(best.smiles)))       # RDKit's value, not the head's
    assert not best.predicted
    assert result.evaluations == model.decoded == 40
    values = [c.value for c in result.candidates]
    assert values == sorted(values, reverse=True)
    assert len({c.smiles for c in result.candidates}) == len(result.candidates)
    assert 0 <= best.similarity < 1 and best.nearest_seed in [canonical(s) for s in LOW_LOGP_SEEDS]


@pytest.mark.parametrize("objective,score", [("qed", qed), ("plogp", penalized_logp)])
def test_cmaes_improves_qed_and_penalized_logp(objective, score):
    seeds = ["NC(N)=O", "CO"]
    result = optimize(LibraryModel(), objective, budget=60, seeds=seeds, method="cmaes", seed=0)
    best = result.candidates[0]
    assert best.value == pytest.approx(score(to_mol(best.smiles)))
    assert best.value > max(score(to_mol(s)) for s in seeds)


def test_sas_is_minimised():
    result = optimize(LibraryModel(), "SAS", budget=40, seeds=["CN1CCCC1c1cccnc1"], method="cmaes", seed=0)
    values = [c.value for c in result.candidates]
    assert values == sorted(values)
    assert values[0] < sas(to_mol("CN1CCCC1c1cccnc1"))
    assert result.to_dict()["maximize"] is False


@pytest.mark.parametrize("method", ["gradient", "cmaes", "bo"])
def test_same_seed_same_molecules(method):
    run = [optimize(LibraryModel(), "logp", budget=25, seeds=LOW_LOGP_SEEDS, method=method, seed=7).to_dict()
           for _ in range(2)]
    assert run[0] == run[1]
    json.dumps(run[0], allow_nan=False)


def test_without_seeds_the_search_starts_from_the_prior():
    result = optimize(LibraryModel(), "logp", budget=30, method="bo", seed=3)
    assert result.evaluations == 30 and result.seeds == [] and result.best_seed_value is None
    assert result.candidates and result.candidates[0].similarity is None


def test_a_head_only_column_is_scored_by_the_heads_prediction_for_the_decoded_molecule():
    model = LibraryModel(heads=("logP", "pIC50"))
    result = optimize(model, "pIC50", budget=20, seeds=["CCO"], method="gradient", seed=0)
    best = result.candidates[0]
    assert best.predicted and result.objective == "pIC50"
    expected = float(model.predict_properties(model.encode([best.smiles]))[0, 1])
    assert best.value == pytest.approx(expected)
    assert best.value > result.best_seed_value


def test_gradient_needs_a_head_that_predicts_the_objective():
    with pytest.raises(VaekitError, match=r"objective 'plogp': --method gradient .* this run's property head "
                                          r"predicts logP, qed; use --method cmaes or bo"):
        optimize(LibraryModel(), "plogp", budget=10, seeds=["CCO"], method="gradient")
    with pytest.raises(VaekitError, match="this run has no property head"):
        optimize(LibraryModel(heads=()), "qed", budget=10, method="gradient")


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(VaekitError, match=r"seeds: SMILES 2 \('C1CC'\) is not a valid molecule"):
        optimize(LibraryModel(), "qed", budget=10, seeds=["CCO", "C1CC"])
    with pytest.raises(VaekitError, match="method: expected gradient, cmaes, bo, got 'sgd'"):
        optimize(LibraryModel(), "qed", budget=10, method="sgd")
    with pytest.raises(VaekitError, match="budget: expected at least 1"):
        optimize(LibraryModel(), "qed", budget=0)


def test_csv_has_rdkit_values_per_molecule(tmp_path):
    result = optimize(LibraryModel(), "logp", budget=20, seeds=LOW_LOGP_SEEDS, method="cmaes", top=3)
    path = write_csv(result, tmp_path / "top.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "rank,smiles,value,predicted,qed,logp,sas,plogp,similarity,nearest_seed,evaluation,is_seed"
    first = lines[1].split(",")
    assert first[1] == result.candidates[0].smiles
    assert float(first[5]) == pytest.approx(logp(to_mol(first[1])), abs=1e-4)
    assert len(lines) == 1 + len(result.candidates)


# ---- similarity-constrained optimisation -----------------------------------------------------

@pytest.mark.parametrize("method", ["gradient", "cmaes", "bo"])
def test_min_similarity_keeps_only_close_analogues_and_never_counts_the_seed(method):
    seed = canonical("CCCCCC")    # its longer homologues (similarity 0.88) have a higher logP; the rest < 0.6
    free = optimize(LibraryModel(), "logp", budget=40, seeds=[seed], method=method, top=40, seed=4)
    assert any(c.similarity < 0.6 for c in free.candidates)      # the constraint has something to remove
    result = optimize(LibraryModel(), "logp", budget=40, seeds=[seed], method=method, top=40, seed=4,
                      min_similarity=0.6)
    assert result.min_similarity == 0.6 and result.evaluations == 40
    assert result.candidates and all(c.similarity >= 0.6 for c in result.candidates)
    assert result.feasible <= result.valid
    for cand in result.candidates:
        assert cand.is_seed == (cand.smiles == seed)
        if cand.is_seed:                                          # found again: the start, not a gain
            assert cand.value == pytest.approx(result.best_seed_value) and cand.similarity == 1.0
    best = result.candidates[0]
    assert not best.is_seed and best.value > result.best_seed_value
    assert best.similarity == pytest.approx(tanimoto(to_mol(best.smiles), to_mol(seed)))


@pytest.mark.parametrize("method", ["gradient", "cmaes", "bo"])
def test_with_no_analogue_in_reach_only_the_seed_is_returned(method):
    seed = canonical("Cc1ccccc1")   # nothing else in the library is within similarity 0.6 of toluene
    free = optimize(LibraryModel(), "logp", budget=40, seeds=[seed], method=method, seed=2)
    assert free.candidates[0].value > free.best_seed_value        # unconstrained, a dissimilar better molecule
    result = optimize(LibraryModel(), "logp", budget=40, seeds=[seed], method=method, seed=2, min_similarity=0.6)
    assert all(c.is_seed and c.smiles == seed for c in result.candidates)
    assert result.feasible < result.valid


def test_a_molecule_below_the_threshold_scores_as_an_invalid_decode():
    """What the searches rank by: -inf for both, so CMA-ES ranks them last and BO gives them
    the worst valid score, steering back toward the seeds."""
    from vaekit.chem.optimize import _Scorer

    model = LibraryModel()
    seed = canonical("CCCCCC")
    objective = property_by_name("logp")
    scorer = _Scorer(model, objective, 10, "greedy", torch.Generator(), [seed], min_similarity=0.6)
    names = [canonical(s) for s in ("CCCCCCCCCC", "c1ccc(-c2ccccc2)cc1", "CCCCCC")]
    codes = torch.cat([model.encode([s]) for s in names] + [torch.full((1, 4), 50.0)])    # the last: invalid
    scores = scorer(codes)
    assert scores[0] == pytest.approx(logp(to_mol(names[0]))) and scores[2] == pytest.approx(logp(to_mol(seed)))
    assert scores[1] == scores[3] == -math.inf
    assert (scorer.evaluations, scorer.valid, scorer.feasible) == (4, 3, 2)
    assert scorer.found[names[1]].similarity < 0.6 and scorer.found[seed].is_seed


class _FailingNear:
    """A stand-in scorer: offspring farther than ``radius`` from the origin fail (-inf, as an
    invalid decode or one outside ``min_similarity`` scores), the rest score -distance."""

    def __init__(self, radius: float, budget: int) -> None:
        self.radius, self.budget, self.spreads = radius, budget, []

    @property
    def remaining(self) -> int:
        return self.budget

    def __call__(self, z):
        z = z[: self.budget]
        self.budget -= len(z)
        distance = z.norm(dim=1).double().numpy()
        self.spreads.append(float(distance.mean()))
        return np.where(distance <= self.radius, -distance, -np.inf)


def test_cmaes_shrinks_its_step_while_most_offspring_fail():
    from vaekit.chem.optimize import _cmaes

    scorer = _FailingNear(radius=0.5, budget=16 * 8)
    _cmaes(scorer, np.zeros(64), np.random.default_rng(0), sigma=0.5, population=None)
    # the first generations land far outside (sigma 0.5 in 64-D: about 4 from the mean); each
    # failed one halves the step until the offspring land inside the feasible radius
    assert scorer.spreads[0] > 3 and all(b < a for a, b in zip(scorer.spreads[:3], scorer.spreads[1:4], strict=True))
    assert scorer.spreads[-1] < 0.5


@pytest.mark.parametrize("bad", [-0.1, 1.01, math.nan, math.inf, True, "0.5"])
def test_min_similarity_outside_0_1_is_refused(bad):
    with pytest.raises(VaekitError, match=r"^min_similarity: expected a number in \[0, 1\], got "):
        optimize(LibraryModel(), "logp", budget=10, seeds=["CCO"], min_similarity=bad)


def test_min_similarity_needs_seeds():
    with pytest.raises(VaekitError, match=r"min_similarity 0.4: a similarity constraint needs seeds"):
        optimize(LibraryModel(), "logp", budget=10, min_similarity=0.4)
    assert optimize(LibraryModel(), "logp", budget=10, min_similarity=0.0).evaluations == 10   # 0: no constraint


# ---- interpolation ---------------------------------------------------------------------------

def test_interpolation_walks_from_a_to_b_and_draws_a_grid(tmp_path):
    from vaekit.chem.interpolation import interpolate, save_grid

    a, b = "CCCCCCCCCCCC", "OCC(O)CO"
    result = interpolate(LibraryModel(radius=10.0), a, b, steps=6, method="lerp")
    assert [s.t for s in result.steps] == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    first, last = result.steps[0], result.steps[-1]
    assert (first.smiles, first.similarity_a) == (canonical(a), 1.0)     # endpoints decode to themselves here
    assert (last.smiles, last.similarity_b) == (canonical(b), 1.0)
    assert first.similarity_b < 1 and last.similarity_a < 1
    path = save_grid(result, tmp_path / "path.png", per_row=4)
    with Image.open(path) as image:
        assert image.size == (4 * 250, 2 * 250)                            # A + 6 steps + B = 8 cells


def test_interpolation_marks_invalid_steps_and_refuses_bad_smiles(tmp_path):
    from vaekit.chem.interpolation import interpolate, save_grid

    result = interpolate(LibraryModel(radius=0.3), "CCCCCCCCCCCC", "OCC(O)CO", steps=9)
    assert result.valid < 9 and result.steps[0].smiles is not None
    middle = [s for s in result.steps if s.smiles is None]
    assert all(s.similarity_a is None for s in middle)
    save_grid(result, tmp_path / "path.png")
    with pytest.raises(VaekitError, match="SMILES_B: 'C1CC' is not a valid SMILES"):
        interpolate(LibraryModel(), "CCO", "C1CC")
    with pytest.raises(VaekitError, match=r"output: expected a \.png file"):
        save_grid(result, tmp_path / "path.jpg")


# ---- CLI -------------------------------------------------------------------------------------

@pytest.fixture
def fake_run(monkeypatch, tmp_path):
    """``MoleculeModel.load`` returning the stand-in, whatever the real generation module holds."""
    module = types.ModuleType("vaekit.chem.generation")

    class MoleculeModel:
        @classmethod
        def load(cls, run_dir):
            return LibraryModel(radius=10.0)

    module.MoleculeModel = MoleculeModel
    monkeypatch.setitem(sys.modules, "vaekit.chem.generation", module)
    run = tmp_path / "run"
    run.mkdir()
    return run


def test_cli_optimize_prints_json_and_writes_csv(fake_run, tmp_path, capsys):
    seeds = tmp_path / "seeds.smi"
    seeds.write_text("SMILES\nO\nNC(N)=O\nnot_a_molecule\n")
    out = tmp_path / "top.csv"
    code = main(["molecules", "optimize", str(fake_run), "--objective", "logp", "--budget", "30", "--seeds",
                 str(seeds), "--top", "4", "-o", str(out), "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["evaluations"] == 30 and 1 <= len(result["candidates"]) <= 4
    assert [s["smiles"] for s in result["seeds"]] == ["O", "NC(N)=O"]       # the invalid line is left out
    assert result["candidates"][0]["value"] > result["best_seed_value"]
    assert out.read_text().splitlines()[1].split(",")[1] == result["candidates"][0]["smiles"]


def test_cli_optimize_table(fake_run, capsys):
    assert main(["molecules", "optimize", str(fake_run), "--objective", "qed", "--budget", "20"]) == 0
    printed = capsys.readouterr().out
    assert "top molecules by qed (cmaes; RDKit values)" in printed and "20 molecules decoded" in printed


def test_cli_unknown_objective_is_one_line(fake_run, capsys):
    assert main(["molecules", "optimize", str(fake_run), "--objective", "potency"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("error: objective: expected qed, logp, sas, plogp or a property-head column (logP, qed), "
                   "got 'potency'")
    assert main(["molecules", "optimize", str(fake_run), "--objective", "qed", "--method", "sgd"]) == 2
    assert capsys.readouterr().err.strip() == "error: --method: expected gradient, cmaes, bo, got 'sgd'"


def test_cli_interpolate_bad_smiles_and_success(fake_run, tmp_path, capsys):
    assert main(["molecules", "interpolate", str(fake_run), "CCO", "c1cc[nH]", "-o", str(tmp_path / "p.png")]) == 2
    assert capsys.readouterr().err.strip() == ("error: SMILES_B: 'c1cc[nH]' is not a valid SMILES "   # '[nH]' kept
                                               "(RDKit cannot parse it)")
    assert not (tmp_path / "p.png").exists()
    assert main(["molecules", "interpolate", str(fake_run), "CCCCCC", "OCC(O)CO", "--steps", "5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["steps"]) == 5 and result["image"] == str(fake_run / "interpolation.png")
    assert (fake_run / "interpolation.png").stat().st_size > 0
    first = (fake_run / "interpolation.png").read_bytes()
    assert main(["molecules", "interpolate", str(fake_run), "CCCCCC", "OCC(O)CO", "--steps", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["image"] == str(fake_run / "interpolation-2.png")  # a new name
    assert (fake_run / "interpolation.png").read_bytes() == first
    assert all(math.isfinite(s["similarity_a"]) for s in result["steps"] if s["smiles"])


@pytest.mark.parametrize(("value", "expected"), [
    ("1.5", "less than or equal to 1"), ("-0.2", "greater than or equal to 0"),
    ("abc", "Input should be a valid number"), ("nan", "less than or equal to 1")])
def test_cli_min_similarity_outside_0_1_is_one_line(fake_run, tmp_path, capsys, value, expected):
    seeds = tmp_path / "seeds.smi"
    seeds.write_text("CCCCCC\n")
    assert main(["molecules", "optimize", str(fake_run), "--objective", "logp", "--seeds", str(seeds),
                 f"--min-similarity={value}"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and "min-similarity" in captured.err.replace("_", "-")
    assert expected in captured.err
    assert captured.err.count("\n") == 1 and not captured.out


def test_cli_min_similarity_needs_seeds(fake_run, capsys):
    assert main(["molecules", "optimize", str(fake_run), "--objective", "logp", "--min-similarity", "0.4"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --min-similarity 0.4: needs --seeds")


def test_cli_min_similarity_constrains_the_result(fake_run, tmp_path, capsys):
    seeds = tmp_path / "seeds.smi"
    seeds.write_text("CCCCCC\n")
    args = ["molecules", "optimize", str(fake_run), "--objective", "logp", "--budget", "30", "--seeds", str(seeds),
            "--top", "30", "--min-similarity", "0.6"]
    assert main([*args, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["min_similarity"] == 0.6 and result["candidates"]
    assert all(c["similarity"] >= 0.6 for c in result["candidates"])
    assert main(args) == 0
    assert f"{result['feasible']} with similarity >= 0.6" in capsys.readouterr().out


# ---- end to end, with a real sequence VAE trained for seconds ---------------------------------

@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A seqvae (SELFIES, logP head) trained for a few epochs on the library above."""
    from vaekit import pipeline

    folder = tmp_path_factory.mktemp("seqvae")
    table = folder / "library.csv"
    table.write_text("smiles,logP\n" + "".join(f"{s},{logp(to_mol(s)):.4f}\n" for s in LIBRARY))
    pipeline.train({"source": str(table), "properties": ["logP"], "tokens": "selfies"},
               {"model": "seqvae", "latent_dim": 8, "embedding_dim": 16, "encoder_hidden": 32, "decoder_hidden": 32},
               {"epochs": 3, "batch_size": 16, "seed": 0}, folder / "run", progress=False)
    return folder / "run"


TINY_SPLIT_WARNING = "ignore:.*not in the training vocabulary:UserWarning"   # 28 molecules: a val one has a rare token


@pytest.mark.filterwarnings(TINY_SPLIT_WARNING)
@pytest.mark.parametrize("method", ["gradient", "cmaes", "bo"])
def test_real_model_search_scores_decoded_molecules_with_rdkit(trained_run, method):
    from vaekit.chem.generation import MoleculeModel

    model = MoleculeModel.load(trained_run)
    assert model.property_names == ["logP"]
    first = optimize(model, "logP", budget=12, seeds=["O", "NC(N)=O"], method=method, top=5, seed=0)
    again = optimize(model, "logP", budget=12, seeds=["O", "NC(N)=O"], method=method, top=5, seed=0)
    assert first.to_dict() == again.to_dict()
    assert first.evaluations == 12 and first.candidates
    for cand in first.candidates:
        assert cand.value == pytest.approx(logp(to_mol(cand.smiles)))
        assert cand.properties["plogp"] == pytest.approx(penalized_logp(to_mol(cand.smiles)))


@pytest.mark.filterwarnings(TINY_SPLIT_WARNING)
def test_real_model_cli_interpolate_and_optimize(trained_run, tmp_path, capsys):
    image = tmp_path / "path.png"
    assert main(["molecules", "interpolate", str(trained_run), "CCO", "c1ccccc1O", "--steps", "4", "-o", str(image),
                 "--json"]) == 0
    path = json.loads(capsys.readouterr().out)
    assert len(path["steps"]) == 4 and image.stat().st_size > 0
    out = tmp_path / "top.csv"
    assert main(["molecules", "optimize", str(trained_run), "--objective", "plogp", "--budget", "10", "-o",
                 str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["evaluations"] == 10 and out.is_file()
    assert main(["molecules", "optimize", str(trained_run), "--objective", "plogp", "--method", "gradient"]) == 2
    assert "property head predicts logP" in capsys.readouterr().err


# ---- the constrained benchmark's selection (benchmarks/molecules_optimize.py) ----------------

@pytest.fixture(scope="module")
def optimize_benchmark():
    folder = str(Path(__file__).resolve().parents[2] / "benchmarks")
    sys.path.insert(0, folder)
    try:
        yield importlib.import_module("molecules_optimize")
    finally:
        sys.path.remove(folder)


def _found(value, similarity, is_seed=False):
    return Candidate(smiles="C", value=value, predicted=False, properties={}, similarity=similarity, is_seed=is_seed)


def test_constrained_benchmark_selects_per_delta(optimize_benchmark):
    outcomes = [
        (-2.0, [_found(-2.0, 1.0, is_seed=True), _found(1.0, 0.3), _found(-1.0, 0.7)]),
        (0.0, [_found(0.0, 1.0, is_seed=True), _found(0.5, 0.4), _found(-0.5, 0.9)]),   # 0.4: at the threshold
        (1.0, [_found(2.0, 1.0, is_seed=True)]),      # the start itself never counts, whatever its value
        (-1.0, []),                                    # nothing valid found
    ]
    rows = {row["delta"]: row for row in optimize_benchmark.constrained_figures(outcomes)}
    assert list(rows) == [0.0, 0.2, 0.4, 0.6]
    for delta in (0.0, 0.2):      # the best at any similarity: +3.0 at 0.3 and +0.5 at 0.4
        assert rows[delta]["success"] == 0.5 and rows[delta]["successes"] == 2
        assert rows[delta]["improvement_mean"] == pytest.approx(1.75)
        assert rows[delta]["improvement_std"] == pytest.approx(1.25)
        assert rows[delta]["similarity_mean"] == pytest.approx(0.35)
        assert rows[delta]["similarity_std"] == pytest.approx(0.05)
    assert rows[0.4]["success"] == 0.5           # +1.0 at 0.7 and +0.5 at 0.4
    assert rows[0.4]["improvement_mean"] == pytest.approx(0.75)
    assert rows[0.4]["similarity_mean"] == pytest.approx(0.55)
    assert rows[0.6]["success"] == 0.25          # the second molecule's only analogue (0.9) is worse: no success
    assert rows[0.6]["improvement_mean"] == pytest.approx(1.0) and rows[0.6]["improvement_std"] == 0.0
    assert rows[0.6]["similarity_mean"] == pytest.approx(0.7)


def test_constrained_benchmark_without_a_success_reports_none(optimize_benchmark):
    rows = optimize_benchmark.constrained_figures([(0.0, [_found(-1.0, 0.8)])], deltas=(0.0,))
    assert rows == [{"delta": 0.0, "success": 0.0, "successes": 0, "improvement_mean": None,
                     "improvement_std": None, "similarity_mean": None, "similarity_std": None}]
    assert optimize_benchmark.best_within([_found(-1.0, 0.8), _found(3.0, 0.2)], 0.5).value == -1.0
