"""Molecules: SMILES data, tokenizers, MOSES metrics and latent-space optimisation.

Everything here needs the ``chem`` extra (RDKit, SELFIES, fcd). The core package never
imports this package at import time, so ``import vaekit`` works without the extra; a
molecule command used without it fails with one line naming the extra
(``require_chem``), never an ImportError traceback.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from vaekit.errors import VaekitError

CHEM_EXTRA_HINT = "pip install 'vaekit[chem]'"


def require_chem(module: str = "rdkit") -> ModuleType:
    """Import one of the chem extra's packages, or fail with a line that names the extra."""
    try:
        return import_module(module)
    except ImportError:
        top = module.split(".")[0]
        raise VaekitError(f"molecules need the chem extra ({top} is not installed): {CHEM_EXTRA_HINT}") from None
