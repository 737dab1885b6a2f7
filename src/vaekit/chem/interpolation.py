"""Walk the latent space from one molecule to another, and draw what the decoder makes of it.

A smooth latent space shows up as a path whose molecules drift from A's chemistry to
B's: the Tanimoto similarity (Morgan fingerprints) to A falls while the similarity to B
rises. The path itself is ``vaekit.latent.paths`` (slerp by default: a straight line
between two codes cuts through the low-norm interior the decoder rarely saw), so images
and molecules interpolate the same way. Each step is decoded greedily (deterministic).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import torch

from vaekit.atomic import atomic_path
from vaekit.errors import VaekitError
from vaekit.extras import require_chem
from vaekit.latent.paths import latent_path

require_chem("rdkit")
from rdkit import Chem  # noqa: E402  (after require_chem, so a missing extra is one line)
from rdkit.Chem import Draw  # noqa: E402

from vaekit.chem.properties import tanimoto  # noqa: E402
from vaekit.data.molecules.rdkit import canonical, to_mol  # noqa: E402

CELL_PIXELS = 250


class EncoderDecoder(Protocol):
    """What interpolation needs from ``vaekit.chem.generation.MoleculeModel``."""

    def encode(self, smiles: list[str]) -> torch.Tensor: ...

    def decode(self, z: torch.Tensor, *, method: str = "greedy") -> list[str | None]: ...


@dataclass
class Step:
    """One point of the path: where it is (0 = A, 1 = B), what it decodes to, how close that is to A and B."""

    t: float
    smiles: str | None
    similarity_a: float | None
    similarity_b: float | None


@dataclass
class Interpolation:
    """The decoded path between two molecules (canonical SMILES)."""

    start: str
    end: str
    method: str
    steps: list[Step]

    @property
    def valid(self) -> int:
        return sum(step.smiles is not None for step in self.steps)

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "method": self.method, "valid": self.valid,
                "steps": [asdict(step) for step in self.steps]}


def _parse(smiles: str, which: str) -> str:
    canon = canonical(smiles)
    if canon is None:
        raise VaekitError(f"{which}: '{smiles}' is not a valid SMILES (RDKit cannot parse it)")
    return canon


def interpolate(model: EncoderDecoder, smiles_a: str, smiles_b: str, *, steps: int = 8, method: str = "slerp"
                ) -> Interpolation:
    """Encode A and B, walk ``steps`` points from A's code to B's (both included) and decode each greedily."""
    a, b = _parse(smiles_a, "SMILES_A"), _parse(smiles_b, "SMILES_B")
    z = model.encode([a, b]).detach().float()
    path = latent_path(z[0], z[1], steps, method).float()
    with torch.no_grad():
        decoded = model.decode(path, method="greedy")
    mol_a, mol_b = to_mol(a), to_mol(b)
    out = []
    for i, smiles in enumerate(decoded):
        mol = to_mol(smiles) if smiles else None
        t = i / (steps - 1)
        if mol is None:
            out.append(Step(t, None, None, None))
        else:
            out.append(Step(t, Chem.MolToSmiles(mol), tanimoto(mol, mol_a), tanimoto(mol, mol_b)))
    return Interpolation(start=a, end=b, method=method, steps=out)


def save_grid(result: Interpolation, path: str | Path, *, per_row: int = 5) -> Path:
    """Draw A, every step, then B as one PNG grid (RDKit), each step labelled with its
    similarity to A and B; an invalid step is an empty cell labelled so. Written atomically."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise VaekitError(f"output: expected a .png file, got '{path}'")
    mols = [to_mol(result.start)]
    legends = ["A (input)"]
    for i, step in enumerate(result.steps):
        mols.append(to_mol(step.smiles) if step.smiles else Chem.Mol())
        legends.append(f"{i}: invalid" if step.smiles is None
                       else f"{i}: sim A {step.similarity_a:.2f} / B {step.similarity_b:.2f}")
    mols.append(to_mol(result.end))
    legends.append("B (input)")
    image = Draw.MolsToGridImage(mols, molsPerRow=max(1, per_row), subImgSize=(CELL_PIXELS, CELL_PIXELS),
                                 legends=legends)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path
