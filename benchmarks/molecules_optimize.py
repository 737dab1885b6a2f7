"""Penalized-logP optimisation in the latent space of a trained molecule VAE, on the JT-VAE
protocols; prints one JSON line.

    python benchmarks/molecules_optimize.py runs/zinc                     # bo, 10 runs x 250 decodes
    python benchmarks/molecules_optimize.py runs/zinc --method cmaes --runs 3 --budget 100
    python benchmarks/molecules_optimize.py runs/zinc --constrained       # 800 molecules x 80 decodes

Protocol (Jin et al. 2018, Sec. 4.2, after Kusner et al. 2017): penalized logP (logP - SAS -
long-cycle penalty, each standardised with ZINC250k's statistics: ``vaekit.chem.properties``)
of molecules decoded from the latent space, computed by RDKit on the decoded molecule;
the search is repeated with ``--runs`` random seeds and the three best distinct molecules
over all runs are reported. JT-VAE ran 5 rounds of batched expected improvement (50 new
codes each, so ~250 decodes) per seed, 10 seeds, with a sparse GP fitted to the codes of
all 250k training molecules. Here each run starts from ``--n-seeds`` ZINC250k molecules
drawn at random with the run's seed (an exact GP cannot take 250k points), and its
``--budget`` counts every decode, valid or not. State both when quoting the figures.

Penalized logP grows without bound with chain length (a 60-carbon alkane scores ~17), so a
barely trained decoder that emits long chains "wins"; JT-VAE's decoders stayed within
ZINC's size. ``top3`` is therefore reported twice: over every molecule found, and
(``top3_zinc_size``) over those with at most ``--max-atoms`` heavy atoms (38, ZINC250k's
largest molecule), the comparable figure.

Literature (JT-VAE, Table 2, top-3 penalized logP by latent-space BO): JT-VAE 5.30 / 4.93 /
4.49 (``tests/chem/test_properties.py`` recomputes these three from the molecules' SMILES);
the character-level (CVAE) and grammar (GVAE) VAEs of that table stay below 3.

``--constrained``: similarity-constrained optimisation (Jin et al. 2018, Sec. 4.3). The
``--molecules`` (800) molecules of lowest penalized logP in the run's ZINC250k test split
(ZINC250k has no official one: it is the seeded ``test_fraction``, 10% by default, that
vaekit holds out of the set, ``data.splits``; JT-VAE used its own split) that the model can
encode are each the only seed of one search (``--method``: gradient when the run's property
head predicts penalized logP, as JT-VAE's 80 gradient steps did, else cmaes; ``--budget`` 80
decodes per molecule, the start's own decode included; molecule i's search has seed i). Every
decoded molecule is kept with its Tanimoto similarity to the start (Morgan r=2, 2048 bits,
as JT-VAE). Then, for each δ in 0, 0.2, 0.4, 0.6, the best molecule other than the start
with similarity >= δ is taken; a success is one that improves penalized logP. Reported per
δ: the success rate, and the mean ± std (population) of the improvement and of the
similarity over the successes. As in JT-VAE, one search serves every δ (the search itself
is unconstrained, the δ selects afterwards); ``--min-similarity X`` instead constrains the
search itself (``optimize(min_similarity=X)``: CMA-ES and BO treat less similar molecules
as failures and move back toward the start; gradient ascent is unaffected but for which
decodes it keeps), to be compared on the δ = X row. Literature (JT-VAE, Table 3): δ = 0:
improvement 1.91 ± 2.04, similarity 0.28 ± 0.15, success 97.5%; δ = 0.2: 1.68 ± 1.85, 0.33 ±
0.13, 97.1%; δ = 0.4: 0.84 ± 1.45, 0.51 ± 0.10, 83.6%; δ = 0.6: 0.21 ± 0.71, 0.69 ± 0.06, 46.4%.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common import environment  # benchmarks/ is on sys.path when a script here runs

LITERATURE = {"JT-VAE": [5.30, 4.93, 4.49], "CVAE, GVAE": "below 3"}
DELTAS = (0.0, 0.2, 0.4, 0.6)
#: JT-VAE, Table 3: per δ, improvement and similarity (mean, std) over the successes, success rate.
LITERATURE_CONSTRAINED = {"JT-VAE": [
    {"delta": 0.0, "improvement": [1.91, 2.04], "similarity": [0.28, 0.15], "success": 0.975},
    {"delta": 0.2, "improvement": [1.68, 1.85], "similarity": [0.33, 0.13], "success": 0.971},
    {"delta": 0.4, "improvement": [0.84, 1.45], "similarity": [0.51, 0.10], "success": 0.836},
    {"delta": 0.6, "improvement": [0.21, 0.71], "similarity": [0.69, 0.06], "success": 0.464},
]}


def first_encodable(model, pool: Sequence[str], order: Iterable[int], n: int) -> list[int]:
    """The first ``n`` indices in ``order`` whose molecule of ``pool`` the model's vocabulary can encode."""
    from vaekit.errors import VaekitError

    out: list[int] = []
    for i in order:
        try:
            model.encode([pool[i]])
        except VaekitError:
            continue
        out.append(int(i))
        if len(out) == n:
            break
    return out


def best_within(candidates: Sequence[Any], delta: float) -> Any | None:
    """The best (highest ``value``) of ``candidates`` other than the start molecule (``is_seed``)
    whose ``similarity`` to it is at least ``delta``; None if there is none."""
    eligible = [c for c in candidates if not c.is_seed and c.similarity is not None and c.similarity >= delta
                and math.isfinite(c.value)]
    return max(eligible, key=lambda c: c.value, default=None)


def constrained_figures(outcomes: Sequence[tuple[float, Sequence[Any]]], deltas: Sequence[float] = DELTAS
                        ) -> list[dict[str, Any]]:
    """JT-VAE's Table 3 from ``outcomes``, one ``(start value, candidates of its search)`` per
    molecule: per δ, the share of molecules whose ``best_within(candidates, δ)`` improves on
    the start (success), and the mean and std of that improvement and similarity over the
    successes (None where there is none)."""

    def stats(values: list[float]) -> tuple[float | None, float | None]:
        return (round(float(np.mean(values)), 4), round(float(np.std(values)), 4)) if values else (None, None)

    rows = []
    for delta in deltas:
        gains, sims = [], []
        for start, candidates in outcomes:
            best = best_within(candidates, delta)
            if best is not None and best.value - start > 0:
                gains.append(best.value - start)
                sims.append(best.similarity)
        (gain_mean, gain_std), (sim_mean, sim_std) = stats(gains), stats(sims)
        rows.append({"delta": delta, "success": round(len(gains) / len(outcomes), 4) if outcomes else None,
                     "successes": len(gains), "improvement_mean": gain_mean, "improvement_std": gain_std,
                     "similarity_mean": sim_mean, "similarity_std": sim_std})
    return rows


def constrained(args: argparse.Namespace) -> None:
    """``--constrained``: see the module docstring."""
    from vaekit.chem.generation import MoleculeModel
    from vaekit.chem.optimize import optimize
    from vaekit.chem.properties import penalized_logp, property_by_name
    from vaekit.data.molecules.rdkit import to_mol
    from vaekit.training.runs import open_run

    start_time = time.perf_counter()
    run = open_run(args.run)
    model = MoleculeModel(run.model)
    source = run.data_config.source
    if run.data_info.name != "zinc250k":
        print(f"warning: the run was trained on '{source}', not zinc250k: its test split is not JT-VAE's "
              "population", file=sys.stderr)
    print(f"reading the run's test split ({source}) and scoring it", file=sys.stderr)
    test = list(run.load_data().extras.get("test_smiles") or [])
    if not test:
        raise SystemExit(f"{args.run}: the run's data has no test split of molecules")
    values = [penalized_logp(to_mol(s)) for s in test]
    lowest_first = np.argsort(values, kind="stable")
    starts = [(test[i], values[i]) for i in first_encodable(model, test, lowest_first, args.molecules)]
    if len(starts) < args.molecules:
        print(f"warning: only {len(starts)} test molecules can be encoded", file=sys.stderr)
    method = args.method or ("gradient" if property_by_name("plogp", model.property_names).head_index is not None
                             else "cmaes")
    budget = 80 if args.budget is None else args.budget
    outcomes, evaluations, valid = [], 0, 0
    every = max(1, len(starts) // 20)
    for i, (smiles, _) in enumerate(starts, 1):
        result = optimize(model, "plogp", budget=budget, seeds=[smiles], method=method, top=budget, seed=i,
                          min_similarity=args.min_similarity)
        start = result.seeds[0].value
        outcomes.append((start, result.candidates))
        evaluations += result.evaluations
        valid += result.valid
        if i == 1 or i % every == 0 or i == len(starts):
            best = best_within(result.candidates, 0.0)
            found = "nothing found" if best is None else \
                f"best {best.value:.2f} (improvement {best.value - start:+.2f}, similarity {best.similarity:.2f})"
            print(f"molecule {i}/{len(starts)}: start {start:.2f}, {found}; "
                  f"{time.perf_counter() - start_time:.0f} s", file=sys.stderr)
    print(json.dumps({
        "benchmark": "molecules_optimize_constrained", "run": str(args.run), "objective": "plogp",
        "method": method, "molecules": len(starts), "molecules_from": f"{source} test split, lowest plogp",
        "start_plogp_mean": round(float(np.mean([v for _, v in starts])), 4) if starts else None,
        "budget_per_molecule": budget, "min_similarity_in_search": args.min_similarity,
        "evaluations": evaluations, "valid_fraction": valid / max(evaluations, 1),
        "deltas": constrained_figures(outcomes), "literature": LITERATURE_CONSTRAINED,
        "seconds": round(time.perf_counter() - start_time, 1), "environment": environment(),
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="A trained sequence-VAE run directory.")
    parser.add_argument("--objective", default="plogp")
    parser.add_argument("--method", default=None, choices=("bo", "cmaes", "gradient"),
                        help="Default: bo; --constrained: gradient with a plogp property head, else cmaes.")
    parser.add_argument("--budget", type=int, default=None,
                        help="Decodes per run (default 250); --constrained: per molecule (default 80).")
    parser.add_argument("--runs", type=int, default=10, help="Independent runs (random seeds 1..runs).")
    parser.add_argument("--seeds-from", default="zinc250k", help="Where seed molecules come from (file or named set).")
    parser.add_argument("--n-seeds", type=int, default=100, help="Seed molecules per run.")
    parser.add_argument("--max-atoms", type=int, default=38, help="Heavy-atom limit of the comparable top-3.")
    parser.add_argument("--constrained", action="store_true",
                        help="JT-VAE's similarity-constrained protocol instead of the top-3 search.")
    parser.add_argument("--molecules", type=int, default=800,
                        help="--constrained: start molecules (lowest penalized logP of the test split).")
    parser.add_argument("--min-similarity", type=float, default=0.0,
                        help="--constrained: constrain the search itself to this similarity (default 0: select "
                             "per δ afterwards, as JT-VAE).")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.constrained:
        if args.objective != "plogp":
            parser.error("--constrained: the protocol is defined on penalized logP (--objective plogp)")
        if args.molecules < 1:
            parser.error(f"--molecules: expected at least 1, got {args.molecules}")
        if not 0.0 <= args.min_similarity <= 1.0:
            parser.error(f"--min-similarity: expected a number in [0, 1], got {args.min_similarity}")
        constrained(args)
        return
    if args.min_similarity:
        parser.error("--min-similarity applies to --constrained")
    args.method = args.method or "bo"
    args.budget = 250 if args.budget is None else args.budget
    top3(args)


def top3(args: argparse.Namespace) -> None:
    """The top-3 search (JT-VAE, Sec. 4.2): see the module docstring."""
    from vaekit.chem.generation import MoleculeModel
    from vaekit.chem.optimize import optimize
    from vaekit.data.molecules.rdkit import to_mol
    from vaekit.data.molecules.smiles_files import read_smiles, validate

    start = time.perf_counter()
    model = MoleculeModel.load(args.run)
    pool, _, _ = validate(read_smiles(args.seeds_from))
    best: dict[str, float] = {}
    evaluations = valid = 0
    seed_best = []
    for run in range(1, args.runs + 1):
        shuffled = np.random.default_rng(run).permutation(len(pool))
        seeds = [pool[i] for i in first_encodable(model, pool, shuffled, args.n_seeds)]
        result = optimize(model, args.objective, budget=args.budget, seeds=seeds, method=args.method,
                          top=args.budget, seed=run)
        evaluations += result.evaluations
        valid += result.valid
        if result.best_seed_value is not None:
            seed_best.append(result.best_seed_value)
        for cand in result.candidates:
            if not cand.is_seed:
                best[cand.smiles] = cand.value
        print(f"run {run}: best {result.candidates[0].value if result.candidates else float('nan'):.3f} "
              f"({result.valid}/{result.evaluations} valid)", file=sys.stderr)
    ranked = sorted(best.items(), key=lambda item: -item[1])
    atoms = {smiles: to_mol(smiles).GetNumHeavyAtoms() for smiles, _ in ranked}

    def listing(items):
        return [{"smiles": s, args.objective: round(v, 4), "heavy_atoms": atoms[s]} for s, v in items[:3]]

    print(json.dumps({
        "benchmark": "molecules_optimize", "run": str(args.run), "objective": args.objective,
        "method": args.method, "runs": args.runs, "budget_per_run": args.budget, "n_seeds": args.n_seeds,
        "seeds_from": args.seeds_from, "evaluations": evaluations,
        "valid_fraction": valid / max(evaluations, 1),
        "top3": listing(ranked), "top3_zinc_size": listing([i for i in ranked if atoms[i[0]] <= args.max_atoms]),
        "max_atoms": args.max_atoms,
        "best_seed_mean": float(np.mean(seed_best)) if seed_best else None,
        "literature_top3": LITERATURE if args.objective == "plogp" else None,
        "seconds": round(time.perf_counter() - start, 1), "environment": environment(),
    }))


if __name__ == "__main__":
    main()
