"""Reading SMILES: ``.smi`` / ``.txt`` lists, CSV/TSV columns (optionally gzip), and named sets.

Reading keeps every string as written, with its line number, and leaves judging validity
to ``validate``: a generated file with invalid molecules is data to be scored (validity
is a metric), while a training file with invalid lines should be reported by line so the
user can fix it. Named sets (``moses``, ``moses:test``, ``zinc250k`` ...) resolve through
``vaekit.data.molecules.smiles_sets`` to a verified local or downloaded file.

One-column CSV files (MOSES's are 1.6M lines) are split line by line instead of going
through the ``csv`` module, which takes the read from ~5 s to ~1 s.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vaekit.data.molecules import smiles_sets
from vaekit.data.tables import read_csv, read_csv_header
from vaekit.errors import VaekitError

LIST_SUFFIXES = (".smi", ".txt", ".smi.gz", ".txt.gz")
TABLE_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".tsv.gz")
SUPPORTED = ".smi, .txt, .csv, .tsv (each optionally .gz) or a named set"
MAX_LINES_SHOWN = 5


@dataclass
class SmilesFile:
    """SMILES strings as read (nothing dropped), where each came from, and numeric columns asked for."""

    smiles: list[str]
    line_numbers: list[int]
    origin: str
    properties: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.smiles)


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")  # type: ignore[return-value]
    return open(path, encoding="utf-8-sig", newline="")


def _read_text(path: Path) -> str:
    try:
        with _open_text(path) as f:
            return f.read()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise VaekitError(f"cannot read '{path}': {exc}") from exc


def _read_list(path: Path, origin: str) -> SmilesFile:
    """First whitespace-separated field of each non-empty line; a first line 'smiles' is a header."""
    smiles, lines = [], []
    header_seen = False
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        fields = line.split(None, 1)
        if not fields:
            continue
        if not smiles and not header_seen and fields[0].lower() == "smiles":
            header_seen = True
            continue
        header_seen = True
        smiles.append(fields[0])
        lines.append(number)
    return SmilesFile(smiles, lines, origin)


def _pick_column(path: Path, names: list[str], column: str | None) -> int:
    if column is not None:
        if column in names:
            return names.index(column)
        folded = [n.lower() for n in names]
        if folded.count(column.lower()) == 1:
            return folded.index(column.lower())
        raise VaekitError(f"{path}: no column '{column}' (columns: {', '.join(names)})")
    folded = [n.lower() for n in names]
    if "smiles" in folded:
        return folded.index("smiles")
    raise VaekitError(f"{path}: no column named SMILES (columns: {', '.join(names)}); pass column=... to choose one")


def _float_column(path: Path, name: str, cells: list[str], lines: list[int]) -> np.ndarray:
    try:
        return np.array(cells, dtype=np.float64)
    except ValueError:
        for cell, line in zip(cells, lines, strict=True):
            try:
                float(cell)
            except ValueError:
                raise VaekitError(f"{path}: column '{name}', line {line}: {cell!r} is not a number") from None
        raise


def _read_table(path: Path, origin: str, column: str | None, properties: Sequence[str]) -> SmilesFile:
    names = read_csv_header(path)
    j = _pick_column(path, names, column)
    wanted = [_pick_column(path, names, p) for p in properties]
    if len(names) == 1:  # the common one-column file: no quoting to undo, split lines directly
        text_lines = _read_text(path).splitlines()
        smiles, lines = [], []
        for number, line in enumerate(text_lines[1:], start=2):
            cell = line.strip()
            if len(cell) > 1 and cell[0] == cell[-1] == '"':  # a quoted cell: undo the CSV quoting
                cell = cell[1:-1].replace('""', '"').strip()
            if cell:
                smiles.append(cell)
                lines.append(number)
        return SmilesFile(smiles, lines, origin)
    _, rows, lines = read_csv(path)
    smiles = [row[j].strip() for row in rows]
    props = {
        p: _float_column(path, names[k], [row[k] for row in rows], lines)
        for p, k in zip(properties, wanted, strict=True)
    }
    return SmilesFile(smiles, lines, origin, props)


def _read_named(name: str, column: str | None, properties: Sequence[str]) -> SmilesFile:
    source, path = smiles_sets.locate(name, tuple(properties))
    if source.column is None:
        file = _read_list(path, name)
    else:
        file = _read_table(path, name, column or source.column, properties)
    if not file.smiles:
        raise VaekitError(f"'{path}' ({name}) holds no SMILES; the file is damaged, delete it")
    return file


def read_smiles(source: str | Path, *, column: str | None = None, properties: Sequence[str] = ()) -> SmilesFile:
    """Read the SMILES of a file or named set (see the module docstring for the formats).

    ``column`` picks the SMILES column of a CSV (default: the one named SMILES, any case);
    ``properties`` are numeric columns returned as float64 arrays. A missing or empty file,
    an unknown column or a non-numeric property cell is a one-line ``VaekitError``.
    """
    if isinstance(source, str) and not Path(source).exists():
        name = smiles_sets.canonical_set_name(source)
        if name is not None:
            return _read_named(name, column, properties)
        if smiles_sets.looks_like_set_name(source):
            raise VaekitError(f"unknown molecule set '{source}' (known: {', '.join(smiles_sets.set_names())})")
    path = Path(source)
    if not path.exists():
        raise VaekitError(f"no such file '{path}' (expected {SUPPORTED}: {', '.join(smiles_sets.set_names())})")
    if path.is_dir():
        raise VaekitError(f"'{path}' is a folder; expected a SMILES file ({SUPPORTED})")
    lower = path.name.lower()
    if lower.endswith(LIST_SUFFIXES):
        if properties or column:
            raise VaekitError(f"'{path}' is a plain SMILES list; properties and columns need a .csv/.tsv file")
        file = _read_list(path, str(path))
    elif lower.endswith(TABLE_SUFFIXES):
        file = _read_table(path, str(path), column, properties)
    else:
        raise VaekitError(f"unsupported file type '{path.name}' (expected {SUPPORTED})")
    if not file.smiles:
        raise VaekitError(f"'{path}' holds no SMILES (the file is empty)")
    return file


def lines_text(lines: Sequence[int]) -> str:
    """``line 4`` or ``lines 4, 17, ...`` (the first few)."""
    shown = ", ".join(str(n) for n in lines[:MAX_LINES_SHOWN])
    return ("line " if len(lines) == 1 else "lines ") + shown + (", ..." if len(lines) > MAX_LINES_SHOWN else "")


def validate(file: SmilesFile, *, canonicalize: bool = True) -> tuple[list[str], list[int], str | None]:
    """The valid molecules (canonical SMILES if ``canonicalize``), their indices, and a report line.

    The report is ``None`` when every SMILES is valid, else e.g. ``"3 of 120 SMILES in
    data.smi are invalid (lines 4, 17, 88)"``; a file with no valid SMILES at all is a
    ``VaekitError`` naming its first bad lines.
    """
    from rdkit import Chem

    from vaekit.data.molecules.rdkit import to_mol

    kept, indices, bad = [], [], []
    for i, smi in enumerate(file.smiles):
        mol = to_mol(smi)
        if mol is None:
            bad.append(file.line_numbers[i])
            continue
        kept.append(Chem.MolToSmiles(mol) if canonicalize else smi)
        indices.append(i)
    n = len(file.smiles)
    if not kept:
        first = repr(file.smiles[0]) if file.smiles else "nothing"
        raise VaekitError(
            f"none of the {n} SMILES in {file.origin} is valid ({lines_text(bad)}; line "
            f"{file.line_numbers[0] if file.line_numbers else 1} reads {first})"
        )
    report = None
    if bad:
        report = f"{len(bad)} of {n} SMILES in {file.origin} are invalid ({lines_text(bad)})"
    return kept, indices, report
