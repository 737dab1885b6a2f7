"""What ``vaekit molecules evaluate`` does: read a generated file and its references, score, explain.

Kept out of the CLI so the command stays a thin shell and the same evaluation is callable
from Python. The reference ``moses`` means MOSES's test and scaffold-test sets (``/Test``
and ``/TestSF``) with MOSES's training set for novelty; any other reference is a SMILES
file or named set scored as ``/Test`` alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaekit.chem.metrics import CANONICAL_TAG, UNIQUE_AT, canonical_set, moses_metrics
from vaekit.chem.metrics_reference import STATS_FORMAT, ReferenceStats, file_key, reference_stats
from vaekit.data.molecules import smiles_sets
from vaekit.data.molecules.smiles_files import lines_text, read_smiles, validate
from vaekit.errors import VaekitError

# What each metric means, for the table (direction: which way is better).
DESCRIPTIONS = {
    "valid": ("higher", "share of generated strings that are valid molecules"),
    "unique@1k": ("higher", "distinct molecules among the first 1,000 valid"),
    "unique@10k": ("higher", "distinct molecules among the first 10,000 valid"),
    "FCD": ("lower", "Fréchet ChemNet Distance to the reference"),
    "SNN": ("higher", "mean Tanimoto similarity to the nearest reference molecule"),
    "Frag": ("higher", "cosine similarity of BRICS fragment counts"),
    "Scaf": ("higher", "cosine similarity of Bemis-Murcko scaffold counts"),
    "IntDiv": ("higher", "internal diversity, 1 - mean pairwise Tanimoto"),
    "IntDiv2": ("higher", "internal diversity with squared similarities"),
    "Filters": ("higher", "share of valid molecules passing MOSES's MCF/PAINS/atom filters"),
    "Novelty": ("higher", "share of distinct valid molecules not in the training set"),
}


@dataclass
class Evaluation:
    """The metrics of one generated file and what a reader should know about them."""

    generated: str
    scored: int
    metrics: dict[str, float]
    references: dict[str, str]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN (an undefined metric, e.g. Scaf with no two-ring scaffold) becomes null."""
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in self.metrics.items()}
        return {"generated": self.generated, "scored": self.scored, "references": self.references,
                "metrics": clean, "notes": self.notes}


def describe_metric(key: str) -> tuple[str, str]:
    """(better direction, meaning) of a metric key such as ``SNN/TestSF``."""
    return DESCRIPTIONS.get(key.split("/")[0], ("", ""))


def _reference_smiles(source: str) -> list[str]:
    kept, _, _ = validate(read_smiles(source))
    return kept


def source_file(source: str) -> Path:
    """The file behind a reference: a named set's verified local copy (downloaded if need be), or the path."""
    name = smiles_sets.canonical_set_name(source) if not Path(source).exists() else None
    if name is not None:
        return smiles_sets.locate(name)[1]
    if not Path(source).is_file():
        read_smiles(source)  # its one-line error: no such file, a folder, an unknown set name
    return Path(source)


def reference_of(source: str, *, validated: bool, n_jobs: int = 1, device: str | None = None) -> ReferenceStats:
    """The cached statistics of a reference file or named set (keyed by the file's sha256: a
    cached reference is not read again). ``validated``: keep only valid molecules, canonicalised
    (a user's file); else the SMILES as written (MOSES's sets, canonical already)."""
    read = (lambda: _reference_smiles(source)) if validated else (lambda: read_smiles(source).smiles)
    tag = f"{STATS_FORMAT}|{'validated' if validated else 'as-written'}"
    return reference_stats(read, key=file_key(source_file(source), tag), n_jobs=n_jobs, device=device)


def training_set_of(source: str, *, n_jobs: int = 1) -> set[str]:
    """The canonical training set of a file or named set, cached by the file's sha256."""
    return canonical_set(lambda: read_smiles(source).smiles, n_jobs=n_jobs,
                         key=file_key(source_file(source), CANONICAL_TAG))


def evaluate_file(generated: str, *, ref: str = "moses", train: str | None = "auto", limit: int | None = None,
                  n_jobs: int = 1, device: str | None = None) -> Evaluation:
    """Score the SMILES in ``generated`` against ``ref``; ``train`` "auto" means MOSES train when ``ref`` is moses."""
    if limit is not None and limit < 1:
        raise VaekitError(f"--limit must be at least 1, got {limit}")
    file = read_smiles(generated)
    smiles = file.smiles[:limit] if limit is not None else file.smiles
    notes = []
    if limit is not None and len(file.smiles) > limit:
        notes.append(f"scored the first {limit} of {len(file.smiles)} SMILES in {file.origin} (--limit)")
    is_moses = ref.strip().lower() == "moses"
    if train == "auto":
        train = "moses:train" if is_moses else None
    elif train is not None and train.strip().lower() == "none":
        train = None
    if is_moses:
        references = {"Test": "moses:test", "TestSF": "moses:test_scaffolds"}
        test = reference_of("moses:test", validated=False, n_jobs=n_jobs, device=device)
        test_sf = reference_of("moses:test_scaffolds", validated=False, n_jobs=n_jobs, device=device)
    else:
        references = {"Test": ref}
        test, test_sf = reference_of(ref, validated=True, n_jobs=n_jobs, device=device), None
    if train is not None:
        references["train"] = train
    train_set = training_set_of(train, n_jobs=n_jobs) if train is not None else None
    metrics = moses_metrics(smiles, test=test, test_scaffolds=test_sf, train=train_set, n_jobs=n_jobs,
                            device=device)
    n_valid = round(metrics["valid"] * len(smiles))
    for k in UNIQUE_AT:
        if n_valid < k:
            notes.append(f"unique@{k // 1000}k is over all {n_valid} valid molecules (fewer than {k:,})")
            break
    if n_valid < len(smiles):
        bad = [file.line_numbers[i] for i, s in enumerate(smiles) if _invalid(s)]
        notes.append(f"{len(bad)} of {len(smiles)} SMILES are invalid ({lines_text(bad)})")
    return Evaluation(file.origin, len(smiles), metrics, references, notes)


def _invalid(smiles: str) -> bool:
    from vaekit.data.molecules.rdkit import to_mol

    return to_mol(smiles) is None
