"""Latent-space search for molecules with a better property.

Three ways to move through the latent space of a trained molecule VAE, all scored the
same way: every code visited is decoded (greedy by default), the molecule is scored by
RDKit (``vaekit.chem.properties``; a property RDKit cannot compute by the property head's
prediction for the decoded molecule, flagged), duplicates are merged by canonical SMILES,
and the best ``top`` are returned with their similarity to the nearest seed.

- ``gradient``: ascent on the property head's prediction from each seed's code
  (Gómez-Bombarelli et al. 2018), normalised steps of a fixed length, kept inside the
  prior's shell (the decoder never saw codes much farther out), decoding every step.
- ``cmaes``: CMA-ES (Hansen 2016, "The CMA Evolution Strategy: A Tutorial") started at the
  best seed's code; rank-based, so invalid decodes simply rank last.
- ``bo``: Bayesian optimisation with expected improvement (the JT-VAE / Grammar-VAE
  protocol): a Gaussian process (scikit-learn) over the codes scored so far, starting from
  the seeds' codes with the seeds' own values (as JT-VAE's GP starts from the training
  set's), proposing a batch of codes at a time from local and prior candidates.

The budget counts decoded molecules (valid or not) — the expensive, comparable unit
across methods; encoding and scoring the seeds themselves is free. Everything is seeded:
the same seed gives the same molecules.

``min_similarity`` turns the search into similarity-constrained lead optimisation (JT-VAE,
Jin et al. 2018, Sec. 4.3: improve a molecule while staying close to it): a decoded
molecule whose Tanimoto similarity to its nearest seed is below the threshold scores as an
invalid decode does (CMA-ES ranks it last and halves its step while most of a generation
fails, BO gives it the worst valid score) and is never returned. Gradient ascent follows the head's gradient
whatever the scores are, so for it the constraint only decides which decodes are kept. A
seed the search decodes again is returned flagged ``is_seed``: it is the starting point,
never an improvement.
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from vaekit.atomic import atomic_write_text
from vaekit.errors import VaekitError
from vaekit.extras import require_chem

require_chem("rdkit")
from rdkit import Chem  # noqa: E402

from vaekit.chem.properties import Objective, compute_properties, fingerprint, nearest, property_by_name  # noqa: E402
from vaekit.data.molecules.rdkit import canonical, to_mol  # noqa: E402

METHODS = ("gradient", "cmaes", "bo")


class LatentMoleculeModel(Protocol):
    """What a search needs from a trained model (``vaekit.chem.generation.MoleculeModel``)."""

    latent_dim: int
    property_names: list[str]

    def encode(self, smiles: Sequence[str]) -> torch.Tensor: ...

    def decode(self, z: torch.Tensor, *, method: str = "greedy", temperature: float = 1.0, beam_width: int = 5,
               generator: torch.Generator | None = None) -> list[str | None]: ...

    def predict_properties(self, z: torch.Tensor) -> torch.Tensor | None: ...


@dataclass
class Candidate:
    """A molecule found by the search (or a seed), with what RDKit says about it."""

    smiles: str
    value: float                       # the objective's property (RDKit's, or the head's when ``predicted``)
    predicted: bool                    # value is the property head's prediction (RDKit cannot compute it)
    properties: dict[str, float]       # qed, logp, sas, plogp by RDKit
    similarity: float | None = None    # Tanimoto (Morgan r=2, 2048 bits) to the nearest seed
    nearest_seed: str | None = None
    evaluation: int = 0                # the decode that first produced it (1-based; 0 for seeds)
    is_seed: bool = False


@dataclass
class OptimizationResult:
    """The top molecules, best first, and what the search spent to find them."""

    objective: str
    method: str
    budget: int
    evaluations: int                   # decodes made (<= budget)
    valid: int                         # decodes that gave a valid molecule
    unique: int                        # distinct valid molecules among them
    candidates: list[Candidate]
    seeds: list[Candidate] = field(default_factory=list)
    maximize: bool = True
    min_similarity: float = 0.0        # the constraint: candidates at least this similar to a seed
    feasible: int = 0                  # valid decodes that met it (all valid ones without a constraint)

    @property
    def best_seed_value(self) -> float | None:
        values = [s.value for s in self.seeds if math.isfinite(s.value)]
        if not values:
            return None
        return max(values) if self.maximize else min(values)

    def to_dict(self) -> dict:
        """Plain JSON values (NaN, e.g. a seed the head cannot score, becomes None)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("candidates", "seeds")}
        out["best_seed_value"] = self.best_seed_value
        out["candidates"] = [asdict(c) for c in self.candidates]
        out["seeds"] = [asdict(s) for s in self.seeds]
        return _json_safe(out)


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


CSV_COLUMNS = ("rank", "smiles", "value", "predicted", "qed", "logp", "sas", "plogp", "similarity", "nearest_seed",
               "evaluation", "is_seed")


def write_csv(result: OptimizationResult, path: str | Path) -> Path:
    """The top molecules as CSV (``value`` is the objective's property), written atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for rank, c in enumerate(result.candidates, 1):
        props = [c.properties.get(name, math.nan) for name in ("qed", "logp", "sas", "plogp")]
        writer.writerow([rank, c.smiles, _fmt(c.value), int(c.predicted), *map(_fmt, props),
                         "" if c.similarity is None else _fmt(c.similarity), c.nearest_seed or "", c.evaluation,
                         int(c.is_seed)])
    atomic_write_text(path, buffer.getvalue())
    return Path(path)


def _fmt(value: float) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.6g}"


class _Scorer:
    """Decodes codes, scores molecules, keeps the first sighting of each, and counts the budget.

    Under a ``min_similarity`` constraint each new molecule gets its similarity to the nearest
    seed when found (the seeds' fingerprints are computed once, here), and one below it scores
    -inf, as an invalid decode does; without one, only the molecules returned need it."""

    def __init__(self, model: LatentMoleculeModel, objective: Objective, budget: int, decode_method: str,
                 generator: torch.Generator, seeds: Sequence[str] = (), min_similarity: float = 0.0) -> None:
        self.model, self.objective, self.budget = model, objective, budget
        self.decode_method, self.generator = decode_method, generator
        self.seeds, self.min_similarity = list(seeds), min_similarity
        self.seed_fps = [fingerprint(to_mol(s)) for s in self.seeds]
        self.evaluations = self.valid = self.feasible = 0
        self.found: dict[str, Candidate] = {}

    @property
    def remaining(self) -> int:
        return self.budget - self.evaluations

    def value_of(self, smiles: str, mol: Chem.Mol | None) -> tuple[float, dict[str, float]]:
        if mol is None:
            return math.nan, {}
        props = compute_properties(mol)
        if self.objective.rdkit is not None:
            return props[self.objective.rdkit], props
        try:
            with torch.no_grad():
                predicted = self.model.predict_properties(self.model.encode([smiles]))
        except VaekitError:  # a decoded molecule the encoder cannot read back: no prediction
            return math.nan, props
        assert predicted is not None and self.objective.head_index is not None
        return float(predicted[0, self.objective.head_index]), props

    def new_candidate(self, smiles: str) -> Candidate:
        mol = to_mol(smiles)
        value, props = self.value_of(smiles, mol)
        cand = Candidate(smiles, value, self.objective.predicted, props, evaluation=self.evaluations,
                         is_seed=smiles in self.seeds)
        if self.min_similarity > 0:
            self.place(cand, mol)
        return cand

    def place(self, cand: Candidate, mol: Chem.Mol | None = None) -> None:
        """Give ``cand`` its similarity to the nearest seed, once (without seeds it stays None)."""
        if self.seed_fps and cand.similarity is None:
            cand.similarity, index = nearest(mol or to_mol(cand.smiles), self.seed_fps)
            cand.nearest_seed = self.seeds[index]

    def is_feasible(self, cand: Candidate) -> bool:
        """Within the similarity constraint (always, without one)."""
        return self.min_similarity <= 0 or (cand.similarity is not None and cand.similarity >= self.min_similarity)

    def __call__(self, z: torch.Tensor) -> np.ndarray:
        """Signed scores of the first ``remaining`` codes (higher is better; -inf where invalid
        or below ``min_similarity``)."""
        z = z[: max(self.remaining, 0)]
        with torch.no_grad():
            decoded = self.model.decode(z.float(), method=self.decode_method, generator=self.generator)
        scores = np.full(len(z), -np.inf)
        for i, smiles in enumerate(decoded):
            self.evaluations += 1
            smiles = canonical(smiles) if smiles else None
            if smiles is None:
                continue
            self.valid += 1
            if smiles not in self.found:
                self.found[smiles] = self.new_candidate(smiles)
            cand = self.found[smiles]
            if not self.is_feasible(cand):
                continue
            self.feasible += 1
            scores[i] = self.objective.sign * cand.value if math.isfinite(cand.value) else -np.inf
        return scores


def _prior_shell_radius(latent_dim: int) -> float:
    """A bound on a code's norm: N(0, I) codes have norm ~sqrt(D) (sd ~0.7); two beyond that
    the decoder has essentially never been trained."""
    return math.sqrt(latent_dim) + 2.0


def _gradient(model: LatentMoleculeModel, score: _Scorer, starts: torch.Tensor, *, step_size: float) -> None:
    index = score.objective.head_index
    assert index is not None
    radius = _prior_shell_radius(starts.shape[1])
    z = starts.detach().clone().float()
    score(z)
    while score.remaining > 0:
        z = z.detach().requires_grad_(True)
        with torch.enable_grad():
            predicted = model.predict_properties(z)
            assert predicted is not None
            (grad,) = torch.autograd.grad((score.objective.sign * predicted[:, index]).sum(), z)
        z = z.detach() + step_size * grad / grad.norm(dim=1, keepdim=True).clamp_min(1e-12)
        z = z * (radius / z.norm(dim=1, keepdim=True).clamp_min(radius))  # back inside the shell
        score(z)


def _cmaes(score: _Scorer, mean: np.ndarray, rng: np.random.Generator, *, sigma: float,
           population: int | None) -> None:
    """(mu/mu_w, lambda)-CMA-ES with rank-one and rank-mu updates and cumulative step-size
    adaptation, in Hansen's tutorial's default settings, plus its flat-fitness escape, and a
    halved step where most offspring fail (invalid, or outside the similarity constraint)."""
    n = len(mean)
    lam = population or 4 + int(3 * math.log(n))
    mu = lam // 2
    weights = math.log(mu + 0.5) - np.log(np.arange(1, mu + 1))
    weights /= weights.sum()
    mueff = 1.0 / (weights ** 2).sum()
    cc = (4 + mueff / n) / (n + 4 + 2 * mueff / n)
    cs = (mueff + 2) / (n + mueff + 5)
    c1 = 2 / ((n + 1.3) ** 2 + mueff)
    cmu = min(1 - c1, 2 * (mueff - 2 + 1 / mueff) / ((n + 2) ** 2 + mueff))
    damps = 1 + 2 * max(0.0, math.sqrt((mueff - 1) / (n + 1)) - 1) + cs
    chi_n = math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n ** 2))
    pc, ps, cov = np.zeros(n), np.zeros(n), np.eye(n)
    eigvals, basis = np.ones(n), np.eye(n)
    generation = 0
    while score.remaining > 0:
        steps = rng.standard_normal((lam, n)) @ (basis * np.sqrt(eigvals)).T   # ~ N(0, C)
        xs = mean + sigma * steps
        fitness = score(torch.from_numpy(xs))
        if len(fitness) < lam:                      # budget ran out inside the generation
            break
        if np.isfinite(fitness).sum() < mu:
            # fewer than mu offspring are molecules (valid, and within min_similarity): the step
            # overshoots the region that has any, and failures carry no ranking to move the mean
            # by; stay, and halve the step until the offspring land inside it
            sigma *= 0.5
            continue
        order = np.argsort(-fitness, kind="stable")[:mu]
        old_mean = mean
        mean = weights @ xs[order]
        y = (mean - old_mean) / sigma
        inv_sqrt = basis @ np.diag(1 / np.sqrt(eigvals)) @ basis.T
        ps = (1 - cs) * ps + math.sqrt(cs * (2 - cs) * mueff) * inv_sqrt @ y
        generation += 1
        hsig = np.linalg.norm(ps) / math.sqrt(1 - (1 - cs) ** (2 * generation)) / chi_n < 1.4 + 2 / (n + 1)
        pc = (1 - cc) * pc + hsig * math.sqrt(cc * (2 - cc) * mueff) * y
        artmp = (xs[order] - old_mean) / sigma
        cov = ((1 - c1 - cmu) * cov + c1 * (np.outer(pc, pc) + (1 - hsig) * cc * (2 - cc) * cov)
               + cmu * artmp.T @ np.diag(weights) @ artmp)
        sigma *= math.exp((cs / damps) * (np.linalg.norm(ps) / chi_n - 1))
        ranked = np.sort(fitness)[::-1]
        if ranked[0] == ranked[math.ceil(0.7 * lam) - 1]:
            # flat fitness: most of the population decodes to one molecule (a plateau of the
            # decoder), so ranks carry no signal; widen the search (Hansen's tutorial, B.3)
            sigma *= math.exp(0.2 + cs / damps)
        cov = (cov + cov.T) / 2
        eigvals, basis = np.linalg.eigh(cov)
        eigvals = np.clip(eigvals, 1e-12, None)


def _expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    from scipy.stats import norm

    std = np.maximum(std, 1e-9)
    gap = mean - best
    return gap * norm.cdf(gap / std) + std * norm.pdf(gap / std)


def _bayesian(score: _Scorer, starts: np.ndarray, start_scores: np.ndarray | None, rng: np.random.Generator, *,
              batch: int, pool: int, sigma: float) -> None:
    """Expected improvement over a GP fitted to every code scored so far; invalid decodes get
    the worst valid score seen, so the GP learns to avoid their region. ``start_scores``: the
    seeds' own (signed) values at their codes, which JT-VAE's protocol gives the GP for free
    (the training molecules' scores are known); without them the starts are decoded and scored."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    n = starts.shape[1]
    xs = [starts]
    ys = [start_scores if start_scores is not None else score(torch.from_numpy(starts))]
    while score.remaining > 0:
        y = np.concatenate(ys)
        x = np.concatenate(xs)[: len(y)]
        finite = np.isfinite(y)
        if not finite.any():            # nothing valid yet: widen the net with prior draws
            proposal = rng.standard_normal((batch, n))
        else:
            y_fit = np.where(finite, y, y[finite].min())
            kernel = ConstantKernel(1.0) * Matern(length_scale=np.full(n, math.sqrt(n)), nu=2.5) + WhiteKernel(1e-2)
            gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=int(rng.integers(2 ** 31)))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                gp.fit(x, y_fit)
            top = x[np.argsort(-y_fit, kind="stable")[: max(1, batch)]]
            local = top[rng.integers(len(top), size=pool // 2)] + sigma * rng.standard_normal((pool // 2, n))
            candidates = np.concatenate([local, rng.standard_normal((pool - pool // 2, n))])
            mean, std = gp.predict(candidates, return_std=True)
            ei = _expected_improvement(mean, std, y_fit.max())
            proposal = candidates[np.argsort(-ei, kind="stable")[:batch]]
        xs.append(proposal)
        ys.append(score(torch.from_numpy(proposal)))


def _seed_candidates(scorer: _Scorer, seeds: Sequence[str]) -> list[Candidate]:
    out = []
    for smiles in seeds:
        value, props = scorer.value_of(smiles, to_mol(smiles))
        out.append(Candidate(smiles, value, scorer.objective.predicted, props, similarity=1.0, nearest_seed=smiles,
                             is_seed=True))
    return out


def _check(method: str, budget: int, top: int, min_similarity: float) -> None:
    if method not in METHODS:
        raise VaekitError(f"method: expected {', '.join(METHODS)}, got '{method}'")
    if budget < 1:
        raise VaekitError(f"budget: expected at least 1 decoded molecule, got {budget}")
    if top < 1:
        raise VaekitError(f"top: expected at least 1, got {top}")
    if isinstance(min_similarity, bool) or not isinstance(min_similarity, (int, float)) \
            or not 0.0 <= min_similarity <= 1.0:  # NaN fails the comparison too
        raise VaekitError(f"min_similarity: expected a number in [0, 1], got {min_similarity!r}")


def _canonical_seeds(seeds: Sequence[str]) -> list[str]:
    out: list[str] = []
    for i, smiles in enumerate(seeds):
        canon = canonical(smiles)
        if canon is None:
            raise VaekitError(f"seeds: SMILES {i + 1} ('{smiles}') is not a valid molecule")
        if canon not in out:
            out.append(canon)
    return out


def optimize(model: LatentMoleculeModel, objective: str, *, budget: int, seeds: Sequence[str] | None = None,
             method: str = "cmaes", top: int = 10, seed: int = 0, starts: int = 8, step_size: float = 0.5,
             sigma: float = 0.5, population: int | None = None, batch: int = 10, pool: int = 2000,
             decode_method: str = "greedy", min_similarity: float = 0.0) -> OptimizationResult:
    """Search the latent space of ``model`` for molecules that improve ``objective``.

    ``objective``: ``qed``, ``logp``, ``sas`` (minimised), ``plogp`` or a property-head column
    (``properties.property_by_name``). ``budget``: decoded molecules allowed. ``seeds``: SMILES
    to start from (their codes are the start points; the result's similarities refer to
    them); without seeds the search starts from ``starts`` prior draws. Gradient ascent decodes
    one code per start at every step, so its budget buys ``budget / starts`` steps. ``step_size``: length
    of one gradient step in latent units; ``sigma``: CMA-ES's initial step size, and the
    spread of BO's local candidates; ``batch``: codes BO proposes per round from ``pool``
    random candidates. ``seed`` makes the whole search reproducible.

    ``min_similarity`` (0 to 1; 0: no constraint; needs seeds): molecules whose Tanimoto
    similarity to their nearest seed is below it count as failures of the search, like
    invalid decodes, and are never returned, so every candidate stays a close analogue of a
    seed (JT-VAE's constrained optimisation). A seed found again is flagged ``is_seed``.
    """
    _check(method, budget, top, min_similarity)
    target = property_by_name(objective, list(model.property_names))
    if method == "gradient" and target.head_index is None:
        head = (f"this run's property head predicts {', '.join(model.property_names)}" if model.property_names
                else "this run has no property head")
        raise VaekitError(f"objective '{objective}': --method gradient climbs the property head's prediction, and "
                          f"{head}; use --method cmaes or bo")
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    seed_smiles = _canonical_seeds(seeds) if seeds else []
    if min_similarity > 0 and not seed_smiles:
        raise VaekitError(f"min_similarity {min_similarity}: a similarity constraint needs seeds (similarity is "
                          "measured to the nearest seed); give seeds or min_similarity=0")
    scorer = _Scorer(model, target, budget, decode_method, generator, seed_smiles, min_similarity)
    seed_list = _seed_candidates(scorer, seed_smiles)
    if seed_smiles:
        start_z = model.encode(seed_smiles).detach().float().cpu()
    else:
        start_z = torch.randn(max(starts, 1), model.latent_dim, generator=generator)

    if method == "gradient":
        _gradient(model, scorer, start_z, step_size=step_size)
    elif method == "cmaes":
        values = [target.sign * s.value for s in seed_list]
        first = int(np.nanargmax(values)) if seed_list and np.isfinite(values).any() else 0
        _cmaes(scorer, start_z[first].double().numpy(), rng, sigma=sigma, population=population)
    else:
        known = np.array([target.sign * s.value if math.isfinite(s.value) else -np.inf for s in seed_list])
        starts_np = start_z.double().numpy()
        _bayesian(scorer, starts_np if seed_list else starts_np[:budget], known if seed_list else None, rng,
                  batch=batch, pool=pool, sigma=sigma)

    ranked = sorted((c for c in scorer.found.values() if math.isfinite(c.value) and scorer.is_feasible(c)),
                    key=lambda c: (-target.sign * c.value, c.evaluation))[:top]
    for cand in ranked:
        scorer.place(cand)
    return OptimizationResult(objective=target.name, method=method, budget=budget, evaluations=scorer.evaluations,
                              valid=scorer.valid, unique=len(scorer.found), candidates=ranked, seeds=seed_list,
                              maximize=target.sign > 0, min_similarity=float(min_similarity),
                              feasible=scorer.feasible)
