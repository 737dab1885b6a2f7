"""What ``vaekit molecules evaluate`` does: read a generated file and its references, score, explain.

Kept out of the CLI so the command stays a thin shell and the same evaluation is callable
from Python. The reference ``moses`` means MOSES's test and scaffold-test sets (``/Test``
and ``/TestSF``) with MOSES's training set for novelty; any other reference is a SMILES
file or named set scored as ``/Test`` alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from vaekit.chem.metrics import UNIQUE_AT, moses_metrics
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
        test, test_sf = read_smiles("moses:test").smiles, read_smiles("moses:test_scaffolds").smiles
    else:
        references = {"Test": ref}
        test, test_sf = _reference_smiles(ref), None
    if train is not None:
        references["train"] = train
    train_smiles = read_smiles(train).smiles if train is not None else None
    metrics = moses_metrics(smiles, test=test, test_scaffolds=test_sf, train=train_smiles, n_jobs=n_jobs,
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
