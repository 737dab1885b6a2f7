"""Does the latent space hold molecules? Encode held-out molecules, decode them back, compare.

For each molecule: the posterior mean z = E[q(z|x)] is decoded greedily and by beam search
(the beam's best sequence), and the result compared with the input:

* ``exact_greedy`` / ``exact_beam``: share decoded to the same canonical SMILES (RDKit);
* ``tanimoto_greedy`` / ``tanimoto_beam``: mean Tanimoto similarity (Morgan r=2, 1024 bits,
  as the MOSES metrics) of the decoded molecule to the input, 0 for an invalid decoding;
* ``valid_greedy`` / ``valid_beam``: share decoded to a valid molecule.

Deterministic (no sampling anywhere), so the figures of a run do not depend on a seed.
This is the figure of the JT-VAE paper's table (there with 10 x 10 stochastic encodings
and decodings; here the single most likely path, which is what a user's encode-then-decode
gets).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from rdkit import DataStructs
from rdkit.Chem import rdFingerprintGenerator

from vaekit.chem.generation import MoleculeModel
from vaekit.chem.metrics_similarity import FP_BITS, FP_RADIUS
from vaekit.data.molecules.rdkit import canonical, to_mol
from vaekit.errors import VaekitError

#: Held-out molecules a run's reconstruction figures use by default (beam search of width 5
#: costs ~5 greedy decodings; 1,000 molecules take seconds to a minute on one core).
DEFAULT_MOLECULES = 1000
DEFAULT_BEAM = 5


def _similarities(originals: Sequence[str], decoded: Sequence[str | None]) -> np.ndarray:
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=FP_RADIUS, fpSize=FP_BITS)
    out = np.zeros(len(originals))
    for i, (a, b) in enumerate(zip(originals, decoded, strict=True)):
        mol_b = to_mol(b) if b else None
        if mol_b is not None:
            fp_a, fp_b = generator.GetFingerprint(to_mol(a)), generator.GetFingerprint(mol_b)
            out[i] = DataStructs.TanimotoSimilarity(fp_a, fp_b)
    return out


def reconstruction_figures(model: MoleculeModel, smiles: Sequence[str], *, beam_width: int | None = DEFAULT_BEAM
                           ) -> dict[str, Any]:
    """Exact-match rate, mean Tanimoto and validity of greedy (and, with ``beam_width``, beam)
    reconstructions of ``smiles`` from their posterior means. Invalid input SMILES are left out
    (counted in ``skipped``); none left is a ``VaekitError``."""
    if beam_width is not None and beam_width < 1:
        raise VaekitError(f"--beam-width: must be at least 1, got {beam_width}")
    pairs = [(s, canonical(s)) for s in smiles]
    kept = [c for _, c in pairs if c is not None]
    if not kept:
        raise VaekitError(f"none of the {len(smiles)} molecules to reconstruct is valid")
    z = model.encode(kept)
    out: dict[str, Any] = {"reconstruction_n": len(kept), "reconstruction_skipped": len(smiles) - len(kept)}
    methods = {"greedy": {}} if beam_width is None else {"greedy": {}, "beam": {"beam_width": beam_width}}
    for name, options in methods.items():
        decoded = model.decode(z, method=name, **options)
        out[f"exact_{name}"] = float(np.mean([d == c for d, c in zip(decoded, kept, strict=True)]))
        out[f"tanimoto_{name}"] = float(_similarities(kept, decoded).mean())
        out[f"valid_{name}"] = float(np.mean([d is not None for d in decoded]))
    if beam_width is not None:
        out["beam_width"] = beam_width
    return out


def run_reconstruction(run: Any, *, split: str = "test", limit: int | None = DEFAULT_MOLECULES,
                       beam_width: int | None = DEFAULT_BEAM) -> dict[str, Any]:
    """``reconstruction_figures`` on the first ``limit`` molecules of a sequence-VAE run's split
    (the molecules the run held out when ``split`` is val or test)."""
    smiles = run.load_data().extras.get(f"{split}_smiles")
    if not smiles:
        raise VaekitError(f"the run's data has no SMILES for its '{split}' split")
    model = MoleculeModel(run.model)
    return reconstruction_figures(model, list(smiles[:limit] if limit else smiles), beam_width=beam_width)
