"""Molecules: SMILES data, tokenizers, MOSES metrics and latent-space optimisation.

Everything here needs the ``chem`` extra (RDKit, SELFIES, fcd). The core package never
imports this package at import time, so ``import vaekit`` works without the extra; a
molecule command used without it fails with one line naming the extra
(``vaekit.extras.require_chem``), never an ImportError traceback.
"""

