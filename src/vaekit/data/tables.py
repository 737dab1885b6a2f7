"""Reading tables (CSV / TSV, optionally gzip-compressed, and Parquet) into numeric features.

CSV is read with the standard library (pandas is not a dependency): the first row is the
header, the delimiter is ``,`` (``;`` if the header has no comma but a semicolon; tab for
``.tsv``), blank lines are skipped. Parquet needs the optional ``pyarrow``
(``pip install 'vaekit[tables]'``).

Every feature column must hold finite numbers: a text cell, an empty cell, NaN or
infinity is an error naming the file, the column and the data row (1 = the first row
after the header; CSV errors also give the line in the file). The optional
``label_column`` may hold anything and is excluded from the features. Features are
standardized later, in ``load``, on the training rows only.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from vaekit.data.labels import encode_labels
from vaekit.data.parts import Parts
from vaekit.errors import VaekitError

TABLE_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".tsv.gz", ".parquet", ".pq")


def _cell_error(where: str, cell: object) -> str:
    if cell is None or (isinstance(cell, str) and not cell.strip()):
        return f"{where}: empty cell (missing values are not supported)"
    try:
        float(cell)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return f"{where}: {cell!r} is not a number"
    return f"{where}: {cell!r} is not a finite number (missing values are not supported)"


def _finite(value: object) -> bool:
    try:
        return bool(np.isfinite(float(value)))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _label_hint(row_index: int) -> str:
    """A text cell in the very first row suggests a label column rather than a typo."""
    return " (pass label_column=... if this column holds labels)" if row_index == 0 else ""


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")  # type: ignore[return-value]
    return open(path, encoding="utf-8-sig", newline="")


def _check_header(path: Path, header: list[str]) -> list[str]:
    names = [h.strip() for h in header]
    for j, name in enumerate(names):
        if not name:
            raise VaekitError(
                f"{path}: column {j + 1} has no name in the header (an index column? write the file without it)"
            )
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise VaekitError(f"{path}: duplicate column names in the header: {', '.join(dupes)}")
    return names


def _header(path: Path, f: TextIO) -> tuple[Any, list[str]]:
    """A csv reader over ``f`` (delimiter sniffed from the first line) and the checked header."""
    first = f.readline()
    if path.name.lower().endswith((".tsv", ".tsv.gz")):
        delimiter = "\t"
    else:
        delimiter = ";" if "," not in first and ";" in first else ","
    f.seek(0)
    reader = csv.reader(f, delimiter=delimiter)
    header = next(reader, None)
    if header is None or not any(h.strip() for h in header):
        raise VaekitError(f"{path} is empty (expected a header row with column names)")
    return reader, _check_header(path, header)


def read_csv_header(path: Path) -> list[str]:
    """The column names of a CSV/TSV file, reading its first line only."""
    try:
        with _open_text(path) as f:
            return _header(path, f)[1]
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise VaekitError(f"cannot read '{path}': {exc}") from exc


def table_columns(path: Path) -> list[str]:
    """Column names of a table file (CSV/TSV, gzipped or not, or Parquet); [] for anything else,
    for a missing file and for a Parquet file that cannot be read, whose real reader reports it."""
    name = path.name.lower()
    if not name.endswith(TABLE_SUFFIXES) or not path.is_file():
        return []
    if name.endswith((".parquet", ".pq")):
        try:
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        except Exception:  # the real reader reports the problem
            return []
    return read_csv_header(path)


def read_csv(path: Path) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, data rows (as text) and each row's line number in the file."""
    try:
        with _open_text(path) as f:
            reader, names = _header(path, f)
            rows, lines = [], []
            for row in reader:
                if not row or not any(c.strip() for c in row):
                    continue
                if len(row) != len(names):
                    raise VaekitError(
                        f"{path}: row {len(rows) + 1} (line {reader.line_num}) has {len(row)} fields, "
                        f"but the header has {len(names)} columns"
                    )
                rows.append(row)
                lines.append(reader.line_num)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise VaekitError(f"cannot read '{path}': {exc}") from exc
    return names, rows, lines


def _csv_features(path: Path, names: list[str], rows: list[list[str]], lines: list[int], keep: list[int]) -> np.ndarray:
    sub = [[row[j] for j in keep] for row in rows]
    try:
        x = np.array(sub, dtype=np.float64).reshape(len(rows), len(keep))
        bad = np.argwhere(~np.isfinite(x))
        first = (int(bad[0][0]), int(bad[0][1])) if len(bad) else None
    except ValueError:  # some cell is not a number: find the first one in file order
        first = next((i, k) for i, row in enumerate(sub) for k, cell in enumerate(row) if not _finite(cell))
        x = None
    if first is not None:
        i, k = first
        where = f"{path}: column '{names[keep[k]]}', row {i + 1} (line {lines[i]})"
        raise VaekitError(_cell_error(where, sub[i][k]) + _label_hint(i))
    assert x is not None
    return x


Values = Callable[[str], Sequence[object]]
Numeric = Callable[[str], "np.ndarray | None"]


def _parquet_columns(path: Path) -> tuple[list[str], Values, Numeric, int]:
    """Column names, a per-column value getter, a fast numeric getter and the row count."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise VaekitError("reading Parquet needs pyarrow: pip install 'vaekit[tables]'") from exc
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise VaekitError(f"cannot read '{path}': {exc}") from exc

    def values(name: str) -> Sequence[object]:
        return table.column(name).to_pylist()

    def numeric(name: str) -> np.ndarray | None:
        col = table.column(name)
        t = col.type
        if col.null_count or not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
            return None
        return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)

    return _check_header(path, list(table.column_names)), values, numeric, table.num_rows


def _parquet_features(path: Path, names: list[str], keep: list[int], values: Values, numeric: Numeric) -> np.ndarray:
    cols = []
    for j in keep:
        a = numeric(names[j])
        if a is None or not np.isfinite(a).all():
            cells = values(names[j])
            i = next((i for i, cell in enumerate(cells) if not _finite(cell)), None)
            if i is not None:
                raise VaekitError(_cell_error(f"{path}: column '{names[j]}', row {i + 1}", cells[i]) + _label_hint(i))
            a = np.asarray([float(c) for c in cells], dtype=np.float64)
        cols.append(a)
    return np.stack(cols, axis=1)


def read_table(path: Path, label_column: str | None = None) -> Parts:
    """Features (float32, ``(N, D)``), optional labels, and the feature column names."""
    parquet = path.name.lower().endswith((".parquet", ".pq"))
    if parquet:
        names, values, numeric, n = _parquet_columns(path)
    else:
        names, rows, lines = read_csv(path)
        n = len(rows)
    if n == 0:
        raise VaekitError(f"{path} has a header but no data rows")
    if label_column is not None and label_column not in names:
        raise VaekitError(f"{path}: no label column '{label_column}' (columns: {', '.join(names)})")
    keep = [j for j, name in enumerate(names) if name != label_column]
    if not keep:
        raise VaekitError(f"{path}: no feature columns (only the label column '{label_column}')")
    if parquet:
        x = _parquet_features(path, names, keep, values, numeric)
        raw_labels = values(label_column) if label_column is not None else None
    else:
        x = _csv_features(path, names, rows, lines, keep)
        raw_labels = [row[names.index(label_column)] for row in rows] if label_column is not None else None
    y = class_names = None
    if raw_labels is not None:
        y, class_names = encode_labels(raw_labels, lambda i: f"{path}: column '{label_column}', row {i + 1}")
    return Parts(
        x=x.astype(np.float32),
        y=y,
        kind="table",
        likelihood="gaussian",
        columns=[names[j] for j in keep],
        class_names=class_names,
        standardize=True,
    )


def column_order(found: Sequence[str], expected: Sequence[str], what: str,
                 error: type[VaekitError] = VaekitError) -> list[int]:
    """Positions of the ``expected`` (training) columns in ``found``, so a table with the
    same columns in another order is read the same; any other difference is an ``error``
    naming the missing and the extra columns."""
    missing = [c for c in expected if c not in found]
    extra = [c for c in found if c not in expected]
    if missing or extra:
        raise error(f"{what}: columns differ from the training data's: missing {missing or 'none'}, "
                    f"extra {extra or 'none'}")
    return [list(found).index(c) for c in expected]
