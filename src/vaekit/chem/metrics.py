"""The MOSES metrics of a set of generated molecules (Polykovskiy et al. 2020), defined as MOSES does.

* ``valid``: share of generated strings that RDKit parses and sanitises.
* ``unique@k``: share of distinct canonical SMILES among the first k *valid* molecules
  (all of them when fewer than k are valid, as MOSES does; the CLI says so).
* ``Novelty``: share of the distinct valid molecules that are not in the training set
  (both sides canonicalised with the same RDKit).
* ``IntDiv`` / ``IntDiv2``: 1 - mean over molecules of (mean Tanimoto^p to every generated
  molecule, itself included)^(1/p), p = 1 and 2, Morgan r=2 1024-bit fingerprints (MOSES's
  code takes the p-th root per molecule before averaging; so does this).
* ``Filters``: share of valid molecules passing MOSES's MCF/PAINS/atom/charge/ring rules.
* ``FCD/<ref>``: Fréchet distance between Gaussians fitted to ChemNet activations of the
  valid generated molecules and of the reference (``fcd`` package).
* ``SNN/<ref>``: mean over generated molecules of the Tanimoto similarity to the nearest
  reference molecule.
* ``Frag/<ref>``, ``Scaf/<ref>``: cosine similarity of BRICS-fragment counts / of
  Bemis-Murcko scaffold counts (scaffolds with at least two rings).

``<ref>`` is ``Test`` and ``TestSF`` (MOSES's test and scaffold-test sets) or any reference
list a caller passes. Duplicates among the generated molecules count everywhere except in
unique@k and novelty, as in MOSES. Reference statistics come from ``metrics_reference``
(computed once, cached). The property distances (logP, SA, QED, weight) of MOSES's full
report are not computed here.
"""

from __future__ import annotations

import gzip
import warnings
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from vaekit.atomic import atomic_write_bytes
from vaekit.chem.metrics_reference import (
    Features,
    ReferenceStats,
    canonicalize_all,
    chemnet_activations,
    describe_all,
    gaussian_of,
    reference_stats,
    smiles_key,
    stats_dir,
)
from vaekit.chem.metrics_similarity import aggregated_tanimoto, cosine_similarity
from vaekit.errors import VaekitError

UNIQUE_AT = (1000, 10000)
CANONICAL_TAG = "canonical-set-1"
Reference = Sequence[str] | ReferenceStats


def _valid(generated: Sequence[str | None], *, with_filters: bool = False, n_jobs: int = 1) -> list[Features]:
    features = [f for f in describe_all(generated, with_filters=with_filters, n_jobs=n_jobs) if f is not None]
    if not features:
        raise VaekitError(f"none of the {len(generated)} generated SMILES is a valid molecule "
                          "(validity 0; the other metrics are undefined)")
    return features


def _stats(reference: Reference, n_jobs: int = 1, device: str | None = None) -> ReferenceStats:
    return reference if isinstance(reference, ReferenceStats) else reference_stats(reference, n_jobs=n_jobs,
                                                                                   device=device)


# --- metrics over already-described molecules (what moses_metrics uses) -------------------


def _unique_at(valid: list[Features], k: int | None) -> float:
    first = valid if k is None else valid[:k]
    if k is not None and len(first) < k:
        warnings.warn(f"unique@{k} computed on only {len(first)} valid molecules", stacklevel=3)
    return len({f.canonical for f in first}) / len(first)


def _novelty(valid: list[Features], train: set[str]) -> float:
    distinct = {f.canonical for f in valid}
    return len(distinct - train) / len(distinct)


def _internal_diversity(fps: np.ndarray, p: float, device: str | None) -> float:
    return float(1.0 - aggregated_tanimoto(fps, fps, agg="mean", p=p, device=device).mean())


def _fcd(valid: list[Features], ref: ReferenceStats, device: str | None,
         gen_gaussian: tuple[np.ndarray, np.ndarray] | None = None) -> float:
    from fcd import calculate_frechet_distance

    mu, sigma = gen_gaussian or gaussian_of(chemnet_activations([f.canonical for f in valid], device=device))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fcd calls scipy's sqrtm with a deprecated argument
        return float(calculate_frechet_distance(mu, sigma, ref.fcd_mu, ref.fcd_sigma))


def _snn(fps: np.ndarray, ref: ReferenceStats, device: str | None) -> float:
    return float(aggregated_tanimoto(ref.fingerprints, fps, agg="max", device=device).mean())


def _fragments(valid: list[Features]) -> Counter:
    return Counter(frag for f in valid for frag in f.fragments)


def _scaffolds(valid: list[Features]) -> Counter:
    return Counter(f.scaffold for f in valid if f.scaffold is not None)


# --- the single metrics, on SMILES lists ---------------------------------------------------


def fraction_valid(generated: Sequence[str | None]) -> float:
    """Share of generated strings that are valid molecules (None and empty strings are invalid)."""
    if not generated:
        raise VaekitError("no generated SMILES to score")
    from vaekit.data.molecules.rdkit import to_mol

    return sum(to_mol(s) is not None for s in generated if s) / len(generated)


def fraction_unique(generated: Sequence[str | None], k: int | None = None) -> float:
    """unique@k: distinct canonical SMILES among the first ``k`` valid molecules (all valid ones if ``k`` is None)."""
    return _unique_at(_valid(generated), k)


def canonical_set(smiles: Sequence[str] | Callable[[], Sequence[str]], *, n_jobs: int = 1, cache: bool = True,
                  key: str | None = None) -> set[str]:
    """The canonical SMILES of the valid molecules in ``smiles`` (e.g. a training set), cached as ``.smi.gz``.

    Canonicalising MOSES's 1.6M training molecules takes minutes; the result is stored in
    the cache (plain text, keyed by ``key`` — ``file_key`` of the file it came from — or by
    a hash of the list, with the metrics' and RDKit's versions) and read back in seconds.
    With a ``key``, ``smiles`` may be a function that reads the list, called only on a miss.
    """
    if key is None:
        if callable(smiles):
            raise TypeError("canonical_set: a key is needed when smiles is read lazily")
        key = smiles_key(smiles, CANONICAL_TAG)
    path = stats_dir() / f"canonical-{key}.smi.gz"
    if cache and path.is_file():
        return set(gzip.decompress(path.read_bytes()).decode().split("\n")) - {""}
    smiles = smiles() if callable(smiles) else smiles
    result = set(canonicalize_all(smiles, n_jobs=n_jobs)) - {None}
    if cache:
        atomic_write_bytes(path, gzip.compress("\n".join(sorted(result)).encode(), compresslevel=6))
    return result


def novelty(generated: Sequence[str | None], train: Sequence[str] | set[str]) -> float:
    """Share of distinct valid generated molecules not in ``train`` (a SMILES list, or a set from ``canonical_set``)."""
    train_set = train if isinstance(train, set) else canonical_set(train)
    return _novelty(_valid(generated), train_set)


def internal_diversity(generated: Sequence[str | None], p: float = 1.0, *, device: str | None = None) -> float:
    """IntDiv_p of the valid generated molecules (0 when they are all the same molecule)."""
    fps = np.stack([f.fingerprint for f in _valid(generated)])
    return _internal_diversity(fps, p, device)


def fraction_passes_filters(generated: Sequence[str | None]) -> float:
    """Share of the valid generated molecules that pass MOSES's filters."""
    valid = _valid(generated, with_filters=True)
    return sum(bool(f.passes_filters) for f in valid) / len(valid)


def fcd(generated: Sequence[str | None], reference: Reference, *, device: str | None = None) -> float:
    """Fréchet ChemNet Distance between the valid generated molecules and the reference."""
    return _fcd(_valid(generated), _stats(reference, device=device), device)


def snn(generated: Sequence[str | None], reference: Reference, *, device: str | None = None) -> float:
    """Mean Tanimoto similarity of each valid generated molecule to its nearest reference molecule."""
    fps = np.stack([f.fingerprint for f in _valid(generated)])
    return _snn(fps, _stats(reference, device=device), device)


def fragment_similarity(generated: Sequence[str | None], reference: Reference) -> float:
    """Cosine similarity of the BRICS fragment counts of the generated and reference molecules."""
    return cosine_similarity(_fragments(_valid(generated)), _stats(reference).fragments)


def scaffold_similarity(generated: Sequence[str | None], reference: Reference) -> float:
    """Cosine similarity of the Bemis-Murcko scaffold counts (NaN when either side has no 2-ring scaffold)."""
    return cosine_similarity(_scaffolds(_valid(generated)), _stats(reference).scaffolds)


# --- everything at once ----------------------------------------------------------------------


def moses_metrics(generated: Sequence[str | None], *, test: Reference, test_scaffolds: Reference | None = None,
                  train: Sequence[str] | set[str] | None = None, n_jobs: int = 1, device: str | None = None,
                  unique_at: Sequence[int] = UNIQUE_AT) -> dict[str, float]:
    """All MOSES metrics of ``generated`` in one pass, keyed as MOSES reports them.

    ``test`` / ``test_scaffolds`` are SMILES lists or precomputed ``ReferenceStats``
    (``/Test`` and ``/TestSF`` keys; ``test_scaffolds`` optional); ``train`` (a SMILES list
    or a canonical set) adds ``Novelty``. Each generated molecule is parsed and described
    once; ChemNet runs once on the generated set whichever references are given.
    """
    if not generated:
        raise VaekitError("no generated SMILES to score")
    features = describe_all(generated, with_filters=True, n_jobs=n_jobs)
    valid = [f for f in features if f is not None]
    result: dict[str, float] = {"valid": len(valid) / len(generated)}
    if not valid:
        raise VaekitError(f"none of the {len(generated)} generated SMILES is a valid molecule "
                          "(validity 0; the other metrics are undefined)")
    for k in unique_at:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result[f"unique@{k // 1000}k" if k % 1000 == 0 else f"unique@{k}"] = _unique_at(valid, k)
    fps = np.stack([f.fingerprint for f in valid])
    gen_gaussian = gaussian_of(chemnet_activations([f.canonical for f in valid], device=device)) \
        if len(valid) >= 2 else None
    frags, scafs = _fragments(valid), _scaffolds(valid)
    refs = {"Test": test, "TestSF": test_scaffolds}
    for name, reference in refs.items():
        if reference is None:
            continue
        stats = _stats(reference, n_jobs=n_jobs, device=device)
        result[f"FCD/{name}"] = _fcd(valid, stats, device, gen_gaussian) if gen_gaussian else float("nan")
        result[f"SNN/{name}"] = _snn(fps, stats, device)
        result[f"Frag/{name}"] = cosine_similarity(frags, stats.fragments)
        result[f"Scaf/{name}"] = cosine_similarity(scafs, stats.scaffolds)
    result["IntDiv"] = _internal_diversity(fps, 1.0, device)
    result["IntDiv2"] = _internal_diversity(fps, 2.0, device)
    result["Filters"] = sum(bool(f.passes_filters) for f in valid) / len(valid)
    if train is not None:
        train_set = train if isinstance(train, set) else canonical_set(train, n_jobs=n_jobs)
        result["Novelty"] = _novelty(valid, train_set)
    return result
