"""Molecular properties computed by RDKit, and the objectives a latent-space search maximises.

The numbers an optimiser reports must be the molecule's, not the model's opinion of it,
so every property here is computed by RDKit on the decoded molecule: QED (Bickerton et
al. 2012, ``rdkit.Chem.QED``), Crippen logP, the synthetic-accessibility score SAS
(Ertl & Schuffenhauer 2009, RDKit's Contrib ``SA_Score``) and penalized logP.

Penalized logP is JT-VAE's objective (Jin et al. 2018, Sec. 4.2, after Kusner et al.
2017): logP - SAS - long-cycle penalty, each term standardised with its mean and standard
deviation over ZINC250k, summed. The long-cycle penalty is ``max(0, largest ring - 6)``
over a cycle basis of the molecular graph (networkx's ``cycle_basis``, as JT-VAE's
``bo/gen_latent.py`` computes it; networkx is a dependency of torch). The six constants are
the ones JT-VAE's statistics over ZINC250k produce and every later paper (GCPN, GraphAF,
...) reuses, kept so scores compare with the literature. Recomputed over ZINC250k with
RDKit 2026.09 and networkx 3.6 they agree to 2e-3 (logP 2.457119 / 1.434329, -SAS
-3.053303 / 0.834900 from ``zinc250k_properties_rdkit.csv.gz``; cycle term -0.048794 /
0.287967 from the SMILES; RDKit's SSSR rings instead of a cycle basis give -0.0380 /
0.2237, which is why the cycle basis is kept); ``tests/test_chem_properties.py`` checks
the logP and SAS statistics when the data are present.

An *objective* is a property by name (``qed``, ``logp``, ``sas``, ``plogp``) or a column the
run's property head predicts (any numeric CSV column it was trained on). A column that is
one of the RDKit properties under another spelling (``logP``, ``SAS``) is that property:
the head guides gradient search, and RDKit's value is reported. A column RDKit cannot
compute (an assay value) is searched *and* reported by the head's prediction for the
molecule, flagged as predicted. SAS is the one property minimised (lower = easier to make).
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType

from vaekit.errors import VaekitError
from vaekit.extras import require_chem

require_chem("rdkit")
import networkx as nx  # noqa: E402  (a torch dependency, so always there with vaekit)
from rdkit import Chem, DataStructs  # noqa: E402  (after require_chem, so a missing extra is one line)
from rdkit.Chem import QED, Crippen, RDConfig, rdFingerprintGenerator, rdmolops  # noqa: E402

from vaekit.data.molecules.rdkit import to_mol  # noqa: E402

# JT-VAE's ZINC250k statistics (bo/gen_latent.py: np.mean / np.std over the 250k training
# molecules of logP, -SAS and -cycle penalty), as reused by GCPN, GraphAF and later work.
PLOGP_STATS = {
    "logp": (2.4570953396190123, 1.434324401111988),
    "neg_sas": (-3.0525811293166134, 0.8335207024513095),
    "neg_cycle": (-0.0485696876403053, 0.2860212110245455),
}
MORGAN_RADIUS, MORGAN_BITS = 2, 2048


@cache
def _sascorer() -> ModuleType:
    """RDKit's Contrib SA_Score module: importable from the pip wheel, loaded from
    ``RDConfig.RDContribDir`` otherwise (conda builds ship Contrib as plain files)."""
    try:
        from rdkit.Contrib.SA_Score import sascorer
        return sascorer
    except ImportError:
        path = Path(RDConfig.RDContribDir) / "SA_Score" / "sascorer.py"
        spec = importlib.util.spec_from_file_location("vaekit_sascorer", path)
        if spec is None or spec.loader is None or not path.is_file():
            raise VaekitError(f"SAS needs RDKit's Contrib SA_Score, not found at {path}") from None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


def qed(mol: Chem.Mol) -> float:
    """Quantitative estimate of drug-likeness, 0 (unlike drugs) to 1."""
    return float(QED.qed(mol))


def logp(mol: Chem.Mol) -> float:
    """Crippen's octanol-water partition coefficient (Wildman & Crippen 1999)."""
    return float(Crippen.MolLogP(mol))


def sas(mol: Chem.Mol) -> float:
    """Synthetic accessibility, 1 (easy) to 10 (hard)."""
    return float(_sascorer().calculateScore(mol))


def long_cycle_penalty(mol: Chem.Mol) -> int:
    """How far the largest ring of a cycle basis exceeds six atoms (0 for rings of 6 or fewer)."""
    cycles = nx.cycle_basis(nx.Graph(rdmolops.GetAdjacencyMatrix(mol)))
    largest = max((len(cycle) for cycle in cycles), default=0)
    return max(largest - 6, 0)


def penalized_logp(mol: Chem.Mol) -> float:
    """JT-VAE's penalized logP: standardised logP + standardised (-SAS) + standardised (-cycle penalty)."""
    terms = {"logp": logp(mol), "neg_sas": -sas(mol), "neg_cycle": -float(long_cycle_penalty(mol))}
    return float(sum((value - PLOGP_STATS[key][0]) / PLOGP_STATS[key][1] for key, value in terms.items()))


@dataclass(frozen=True)
class RDKitProperty:
    """A property RDKit computes, and which way is better."""

    name: str
    compute: Callable[[Chem.Mol], float]
    maximize: bool
    description: str


RDKIT_PROPERTIES: dict[str, RDKitProperty] = {
    "qed": RDKitProperty("qed", qed, True, "QED drug-likeness (RDKit)"),
    "logp": RDKitProperty("logp", logp, True, "Crippen logP (RDKit)"),
    "sas": RDKitProperty("sas", sas, False, "synthetic accessibility score (lower is easier)"),
    "plogp": RDKitProperty("plogp", penalized_logp, True, "penalized logP (JT-VAE, ZINC250k-standardised)"),
}
# Other spellings of the same properties, as CSV columns and papers write them.
ALIASES = {"qed": "qed", "logp": "logp", "sas": "sas", "sa": "sas", "sa_score": "sas", "plogp": "plogp",
           "penalized_logp": "plogp", "penalized-logp": "plogp"}


def rdkit_name(name: str) -> str | None:
    """The RDKit property a name or CSV column stands for (``logP`` -> ``logp``), or None."""
    return ALIASES.get(name.strip().lower())


def compute_properties(mol: Chem.Mol) -> dict[str, float]:
    """Every RDKit property of one molecule, by name (qed, logp, sas, plogp)."""
    return {name: prop.compute(mol) for name, prop in RDKIT_PROPERTIES.items()}


def property_of(name: str, smiles: str) -> float | None:
    """One RDKit property of a SMILES by name; None when the SMILES is invalid."""
    key = rdkit_name(name)
    if key is None:
        raise VaekitError(f"property: expected one of {', '.join(RDKIT_PROPERTIES)}, got '{name}'")
    mol = to_mol(smiles)
    return None if mol is None else RDKIT_PROPERTIES[key].compute(mol)


@dataclass(frozen=True)
class Objective:
    """What a search maximises: an RDKit property, a property-head column, or both.

    ``rdkit``: the RDKit property scored on decoded molecules (None for a column RDKit
    cannot compute, which is then scored by the head's prediction). ``head_index``: the
    head column that predicts it (what gradient ascent climbs), or None. ``sign``: +1 to
    maximise, -1 to minimise (SAS).
    """

    name: str
    rdkit: str | None
    head_index: int | None
    head_column: str | None
    sign: float

    @property
    def predicted(self) -> bool:
        """True when the reported value is the property head's prediction, not RDKit's."""
        return self.rdkit is None

    def rdkit_value(self, mol: Chem.Mol) -> float:
        assert self.rdkit is not None
        return RDKIT_PROPERTIES[self.rdkit].compute(mol)


def property_by_name(name: str, head_columns: Sequence[str] = ()) -> Objective:
    """The objective for ``name``: ``qed``, ``logp``, ``sas``, ``plogp`` (any case, or an alias
    such as ``logP`` / ``SAS`` / ``penalized_logp``), or one of ``head_columns`` (the run's
    property-head columns). Unknown names fail with one line that lists the choices."""
    key = rdkit_name(name)
    if key is not None:
        index = next((i for i, column in enumerate(head_columns) if rdkit_name(column) == key), None)
        return Objective(name=key, rdkit=key, head_index=index,
                         head_column=None if index is None else head_columns[index],
                         sign=1.0 if RDKIT_PROPERTIES[key].maximize else -1.0)
    matches = [i for i, column in enumerate(head_columns) if column == name]
    if not matches:
        matches = [i for i, column in enumerate(head_columns) if column.lower() == name.lower()]
    if len(matches) == 1:
        column = head_columns[matches[0]]
        return Objective(name=column, rdkit=None, head_index=matches[0], head_column=column, sign=1.0)
    columns = f" or a property-head column ({', '.join(head_columns)})" if head_columns else ""
    raise VaekitError(f"objective: expected {', '.join(RDKIT_PROPERTIES)}{columns}, got '{name}'")


def fingerprint(mol: Chem.Mol) -> DataStructs.ExplicitBitVect:
    """Morgan fingerprint (radius 2, 2048 bits: ECFP4-like), what Tanimoto similarities use here."""
    return _morgan().GetFingerprint(mol)


@cache
def _morgan() -> rdFingerprintGenerator.FingerprintGenerator64:
    return rdFingerprintGenerator.GetMorganGenerator(radius=MORGAN_RADIUS, fpSize=MORGAN_BITS)


def tanimoto(a: Chem.Mol, b: Chem.Mol) -> float:
    """Tanimoto similarity of two molecules' Morgan fingerprints, 0 to 1."""
    return float(DataStructs.TanimotoSimilarity(fingerprint(a), fingerprint(b)))


def nearest(mol: Chem.Mol, references: Sequence[DataStructs.ExplicitBitVect]) -> tuple[float, int]:
    """Highest Tanimoto similarity of ``mol`` to the reference fingerprints, and that reference's index."""
    if not references:
        return math.nan, -1
    sims = DataStructs.BulkTanimotoSimilarity(fingerprint(mol), list(references))
    best = max(range(len(sims)), key=sims.__getitem__)
    return float(sims[best]), best
