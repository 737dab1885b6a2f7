"""Optional extras: import a package that only some commands need, or fail with one line.

A command used without its extra says which extra to install (``pip install
'vaekit[chem]'``) instead of ending in an ImportError traceback. The core never imports an
extra's package at import time.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from vaekit.errors import VaekitError


def install_hint(extra: str) -> str:
    """The command that installs ``extra``."""
    return f"pip install 'vaekit[{extra}]'"


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module`` (of the ``extra`` extra), or raise a ``VaekitError`` saying that
    ``what`` needs that extra and how to install it."""
    try:
        return import_module(module)
    except ImportError:
        top = module.split(".")[0]
        raise VaekitError(f"{what} need the {extra} extra ({top} is not installed): {install_hint(extra)}") from None


def require_chem(module: str = "rdkit") -> ModuleType:
    """One of the chem extra's packages (RDKit, SELFIES, fcd)."""
    return require(module, "chem", "molecules")
