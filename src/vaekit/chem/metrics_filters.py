"""MOSES's "Filters" metric: does a molecule pass the rules the MOSES data set was built with?

A molecule passes (Polykovskiy et al. 2020, and ``mol_passes_filters`` in the MOSES code)
when all of these hold:

* no ring of 8 or more atoms;
* no atom with a formal charge;
* only the atoms C, N, S, O, F, Cl, Br, H;
* no match of any medicinal-chemistry filter (MCF, ``mcf.csv``) or PAINS alert
  (``wehi_pains.csv``), matched on the molecule with explicit hydrogens (several alerts
  name hydrogens);
* its non-isomeric SMILES is non-empty and parses again.

The SMARTS files are MOSES's own, found like a named data set (``$VAEKIT_DATA_DIR/moses``,
the cache, or a verified download), and compiled once per process.

Speed: matching 502 patterns against a molecule with explicit hydrogens costs ~7 ms. Each
pattern is first screened with RDKit's pattern fingerprints (a pattern can only match when
all its fingerprint bits are set in the molecule's: the substructure screen RDKit's
``SubstructLibrary`` uses), which leaves ~30 patterns to match and cuts the time ~3x
without changing any answer (checked on 11,000 ZINC molecules and in the tests).
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

from rdkit import Chem, DataStructs

from vaekit.data.molecules import smiles_sets
from vaekit.data.molecules.rdkit import to_mol
from vaekit.errors import VaekitError

ALLOWED_ATOMS = frozenset({"C", "N", "S", "O", "F", "Cl", "Br", "H"})
MAX_RING_SIZE = 7


def _smarts_column(path: Path, has_header: bool) -> list[str]:
    """The SMARTS strings of ``mcf.csv`` (header ``names,smarts``) or ``wehi_pains.csv`` (no header, SMARTS first)."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = [row for row in csv.reader(f) if row]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise VaekitError(f"cannot read '{path}': {exc}") from exc
    if has_header:
        header = [h.strip().lower() for h in rows[0]]
        if "smarts" not in header:
            raise VaekitError(f"'{path}': no 'smarts' column (columns: {', '.join(rows[0])})")
        j = header.index("smarts")
        return [row[j].strip() for row in rows[1:]]
    return [row[0].strip() for row in rows]


@lru_cache(maxsize=1)
def _screened_alerts() -> tuple[tuple[DataStructs.ExplicitBitVect, Chem.Mol], ...]:
    return tuple((Chem.PatternFingerprint(p), p) for p in structural_alerts())


def matches_alert(mol_with_h: Chem.Mol, *, screen: bool = True) -> bool:
    """Whether any MCF/PAINS pattern matches (``screen=False``: match every pattern, for checking the screen)."""
    if not screen:
        return any(mol_with_h.HasSubstructMatch(p) for p in structural_alerts())
    fp = Chem.PatternFingerprint(mol_with_h)
    return any(DataStructs.AllProbeBitsMatch(pfp, fp) and mol_with_h.HasSubstructMatch(p)
               for pfp, p in _screened_alerts())


@lru_cache(maxsize=1)
def structural_alerts() -> tuple[Chem.Mol, ...]:
    """The compiled MCF + PAINS patterns (22 + 480 in MOSES's files)."""
    smarts = _smarts_column(smiles_sets.filter_file("mcf.csv"), has_header=True)
    smarts += _smarts_column(smiles_sets.filter_file("wehi_pains.csv"), has_header=False)
    patterns = []
    for s in smarts:
        pattern = Chem.MolFromSmarts(s)
        if pattern is None:
            raise VaekitError(f"MOSES filter SMARTS {s!r} does not parse; the filter files are damaged")
        patterns.append(pattern)
    return tuple(patterns)


def passes_filters(mol: Chem.Mol | None) -> bool:
    """Whether ``mol`` passes MOSES's filters (``False`` for ``None``)."""
    if mol is None:
        return False
    if any(len(ring) > MAX_RING_SIZE for ring in mol.GetRingInfo().AtomRings()):
        return False
    atoms = mol.GetAtoms()
    if any(atom.GetFormalCharge() != 0 for atom in atoms):
        return False
    if any(atom.GetSymbol() not in ALLOWED_ATOMS for atom in atoms):
        return False
    if matches_alert(Chem.AddHs(mol)):
        return False
    flat = Chem.MolToSmiles(mol, isomericSmiles=False)
    return to_mol(flat) is not None
