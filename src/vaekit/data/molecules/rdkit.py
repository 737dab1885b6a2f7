"""RDKit wrappers in one place: parse, canonicalise, kekulise and randomise SMILES.

Every molecule tool goes through these functions so that "valid" means the same
thing everywhere (RDKit parses and sanitises it, and it has at least one atom) and RDKit's
parse warnings, which would flood the terminal when scoring thousands of generated
strings, are silenced only around the parse.
"""

from __future__ import annotations

import numpy as np

from vaekit.extras import require_chem

require_chem("rdkit")
from rdkit import Chem, rdBase  # noqa: E402  (after require_chem, so a missing extra is one line)


def to_mol(smiles: str) -> Chem.Mol | None:
    """The sanitised RDKit molecule, or ``None`` for an invalid or empty SMILES."""
    if not smiles or not isinstance(smiles, str):
        return None
    with rdBase.BlockLogs():
        mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    return mol


def canonical(smiles: str) -> str | None:
    """RDKit's canonical (isomeric) SMILES, or ``None`` when ``smiles`` is invalid."""
    mol = to_mol(smiles)
    return None if mol is None else Chem.MolToSmiles(mol)


def kekule(smiles: str) -> str | None:
    """``smiles`` in its Kekulé form (explicit single and double bonds, written from the input's
    atom numbering rather than RDKit's canonical one), or ``None`` when it is invalid."""
    mol = to_mol(smiles)
    if mol is None:
        return None
    Chem.Kekulize(mol, clearAromaticFlags=True)
    return Chem.MolToSmiles(mol, kekuleSmiles=True, canonical=False)


def randomized(smiles: str, rng: np.random.Generator) -> str:
    """A random, non-canonical SMILES of the same molecule (SMILES enumeration for augmentation).

    The atoms are renumbered with ``rng`` and written without canonical ordering, so the
    result is reproducible from the generator's seed (RDKit's own ``doRandom`` is not).
    An invalid SMILES is returned unchanged.
    """
    mol = to_mol(smiles)
    if mol is None:
        return smiles
    order = rng.permutation(mol.GetNumAtoms()).tolist()
    shuffled = Chem.RenumberAtoms(mol, order)
    return Chem.MolToSmiles(shuffled, canonical=False)
