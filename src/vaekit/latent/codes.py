"""Latent codes as files: encoder means of a dataset written as features, and codes decoded back.

``encode`` writes the encoder means (``model.encode(x).mean``) of every example of DATA, the
dimensionality-reduction use of a VAE: 784 pixels become ``latent_dim`` numbers a classifier
or a nearest-neighbour index can take. ``decode`` turns codes (from ``encode``, or made by
hand) back into images (one PNG per row) or table rows (one CSV, original units).

Files (``-o``), chosen by the extension:

- ``.csv`` / ``.parquet``: columns ``id`` (the example's index in its split, its row in a
  table or ``.npy``, or its path inside an image folder), ``label`` (when the data has
  labels: the class name, or the integer label), ``z0 .. z{D-1}`` and, with ``--logvar``,
  ``logvar0 .. logvar{D-1}``.
- ``.npy``: the codes alone, ``(N, D)`` float32, so ``np.load`` gives the feature matrix;
  ids and labels go to a sidecar ``<name>.ids.csv`` (``id[,label]``), log-variances to
  ``<name>.logvar.npy``. ``decode`` reads the sidecar when it is there.

``vaekit encode`` / ``vaekit decode`` (``vaekit.cli.codes``) are thin commands over
``encode_data`` + ``write_codes`` and ``read_codes`` + ``decode_codes``. Every file is
written atomically; bad files are one-line ``VaekitError``s naming the file.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaekit import data as vdata
from vaekit.atomic import atomic_path, atomic_write_text, check_new_files
from vaekit.data import registry
from vaekit.data.tables import read_csv, table_columns
from vaekit.errors import VaekitError
from vaekit.latent.encoding import decode_means, encode_means
from vaekit.latent.inputs import model_labels, split_examples
from vaekit.latent.writers import write_table
from vaekit.plotting.pictures import is_image_run
from vaekit.training.runs import check_output_directory

CODE_SUFFIXES = (".npy", ".csv", ".parquet")
_BATCH = 1024


@dataclass
class Codes:
    """Latent codes ``(N, D)`` of N examples, with what identifies them."""

    codes: np.ndarray
    ids: list[Any]
    labels: list[Any] | None = None
    logvar: np.ndarray | None = None


# -- encoding -------------------------------------------------------------------------------

def encode_data(run: Any, data: str, *, split: str | None = None, logvar: bool = False, sample: bool = False,
                seed: int = 0) -> Codes:
    """Encoder means (or, with ``sample``, posterior draws seeded by ``seed``) of every example
    of ``data``: a named dataset (``split``, default test) or a path (image folder, table,
    .npy/.npz; every example, in file order), read like the run's own data."""

    if run.model.sequences:
        raise VaekitError(f"{run.path} models molecules: their codes come from vaekit.chem.generation.MoleculeModel"
                          ".encode(smiles)")
    bundle, x, labels, ids, split_name = _examples(run, data, split)
    cond = model_labels(run, labels, bundle, split_name)
    model = run.model
    means = encode_means(model, x, cond, batch_size=_BATCH)
    logvars = _logvars(model, x, cond) if (logvar or sample) else None
    codes = means
    if sample:
        assert logvars is not None
        noise = torch.randn(means.shape, generator=torch.Generator().manual_seed(seed), dtype=means.dtype)
        codes = means + torch.exp(0.5 * logvars) * noise
    names = bundle.info.class_names
    shown = None if labels is None else [names[k] if names and 0 <= k < len(names) else k for k in labels.tolist()]
    return Codes(codes=codes.float().cpu().numpy(), ids=ids, labels=shown,
                 logvar=logvars.float().cpu().numpy() if (logvar and logvars is not None) else None)


@torch.no_grad()
def _logvars(model: Any, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
    device = next(model.parameters()).device
    parts = [model.encode(x[i:i + _BATCH].to(device), None if cond is None else cond[i:i + _BATCH])
             .logvar.flatten(1).cpu() for i in range(0, len(x), _BATCH)]
    return torch.cat(parts) if parts else torch.empty(0, model.config.latent_dim)


def _examples(run: Any, data: str, split: str | None
              ) -> tuple[Any, torch.Tensor, torch.Tensor | None, list[Any], str]:
    """``(bundle, examples, labels, ids, split name)`` of DATA, shaped for the run's model."""

    key = registry.normalize_name(data)
    if key in registry.DATASETS:
        split = split or "test"
        if split not in ("train", "val", "test"):
            raise VaekitError(f"--split: expected train, val or test, got '{split}'")
        own = registry.normalize_name(run.data_config.source) == key
        bundle = run.load_data() if own else vdata.load(data, expected_shape=run.data_info.shape)
        x, labels = split_examples(bundle, split)
        return bundle, x, labels, list(range(len(x))), split
    if split is not None:
        raise VaekitError(f"--split applies to named datasets; '{data}' is a file or folder, encoded whole")
    label_column = run.data_config.label_column
    if label_column is not None and label_column not in table_columns(Path(data).expanduser()):
        label_column = None  # new rows without the run's label column: no labels to carry
    bundle = vdata.load_for_model(data, run.data_info, run.standardizer, label_column=label_column)
    x = bundle.train
    ids = bundle.extras.get("train_files") or list(range(len(x)))
    return bundle, x, bundle.train_labels, list(ids), "train"


# -- files ----------------------------------------------------------------------------------

def check_suffix(path: Path, flag: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in CODE_SUFFIXES:
        raise VaekitError(f"{flag} {path}: expected a file ending in {', '.join(CODE_SUFFIXES)}")
    return suffix


def sidecars(path: Path) -> tuple[Path, Path]:
    """The ``.npy`` format's companions: ``<name>.ids.csv`` and ``<name>.logvar.npy``."""
    return path.with_name(f"{path.stem}.ids.csv"), path.with_name(f"{path.stem}.logvar.npy")


def write_codes(codes: Codes, path: Path) -> list[Path]:
    """Write ``codes`` as ``.csv``, ``.parquet`` or ``.npy`` (+ sidecars); returns the files written."""
    path = Path(path)
    suffix = check_suffix(path, "-o")
    d = codes.codes.shape[1]
    columns = [f"z{j}" for j in range(d)] + ([f"logvar{j}" for j in range(d)] if codes.logvar is not None else [])
    values = codes.codes if codes.logvar is None else np.concatenate([codes.codes, codes.logvar], axis=1)
    if suffix == ".npy":
        ids_path, logvar_path = sidecars(path)
        _write_npy(path, codes.codes)
        written = [path, _write_csv(ids_path, codes, [], np.empty((len(codes.ids), 0), np.float32))]
        if codes.logvar is not None:
            _write_npy(logvar_path, codes.logvar)
            written.append(logvar_path)
        return written
    if suffix == ".csv":
        return [_write_csv(path, codes, columns, values)]
    return [_write_parquet(path, codes, columns, values)]


def _write_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)


def _write_csv(path: Path, codes: Codes, columns: list[str], values: np.ndarray) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    labelled = codes.labels is not None
    writer.writerow(["id", *(["label"] if labelled else []), *columns])
    for i, row in enumerate(values.tolist()):
        writer.writerow([codes.ids[i], *([codes.labels[i]] if labelled else []),
                         *(f"{v:.9g}" for v in row)])  # 9 significant digits: float32 round-trips exactly
    atomic_write_text(path, buf.getvalue())
    return path


def _write_parquet(path: Path, codes: Codes, columns: list[str], values: np.ndarray) -> Path:
    pa, pq = _pyarrow(path)
    arrays = {"id": pa.array(codes.ids)}
    if codes.labels is not None:
        arrays["label"] = pa.array(codes.labels)
    for j, name in enumerate(columns):
        arrays[name] = pa.array(np.ascontiguousarray(values[:, j], dtype=np.float32))
    with atomic_path(path) as tmp:
        pq.write_table(pa.table(arrays), tmp)
    return path


def _pyarrow(path: Path) -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise VaekitError(f"{path}: Parquet needs pyarrow (pip install 'vaekit[tables]')") from None
    return pa, pq


def read_codes(path: Path, latent_dim: int) -> Codes:
    """Codes written by ``encode`` (or by hand: ``(N, latent_dim)`` .npy; .csv / .parquet with
    columns ``z0 .. z{latent_dim-1}``); a wrong width is an error naming the file and ``latent_dim``."""
    path = Path(path)
    suffix = check_suffix(path, "CODES")
    if not path.is_file():
        raise VaekitError(f"{path}: no such file")
    if suffix == ".npy":
        return _read_npy(path, latent_dim)
    if suffix == ".csv":
        header, rows, _ = read_csv(path)
        table = {name: [r[j] if j < len(r) else "" for r in rows] for j, name in enumerate(header)}
    else:
        pa, pq = _pyarrow(path)
        try:
            table = pq.read_table(path).to_pydict()
        except (OSError, pa.ArrowException) as exc:
            raise VaekitError(f"{path}: cannot read Parquet ({exc})") from None
    return _from_columns(path, table, latent_dim)


def _read_npy(path: Path, latent_dim: int) -> Codes:
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise VaekitError(f"{path}: cannot read .npy ({exc})") from None
    if a.ndim != 2 or a.dtype.kind not in "iuf":
        raise VaekitError(f"{path}: found an array of shape {a.shape} ({a.dtype}), expected (N, {latent_dim}) numbers")
    if a.shape[1] != latent_dim:
        raise VaekitError(f"{path}: codes have {a.shape[1]} columns, but the run's latent_dim is {latent_dim}")
    codes = Codes(codes=_finite(path, a.astype(np.float32)), ids=list(range(len(a))))
    ids_path, _ = sidecars(path)
    if ids_path.is_file():
        header, rows, _ = read_csv(ids_path)
        if len(rows) != len(a):
            raise VaekitError(f"{ids_path}: {len(rows)} rows for the {len(a)} codes of {path}")
        if "id" in header:
            codes.ids = [r[header.index("id")] for r in rows]
        if "label" in header:
            codes.labels = [r[header.index("label")] for r in rows]
    return codes


_CODE_COLUMN = re.compile(r"z(\d+)")


def _from_columns(path: Path, table: dict[str, list[Any]], latent_dim: int) -> Codes:
    found = sorted((int(m.group(1)), name) for name in table if (m := _CODE_COLUMN.fullmatch(name)))
    expected = [f"z{j}" for j in range(latent_dim)]
    if [name for _, name in found] != expected:
        raise VaekitError(f"{path}: {len(found)} code columns ({', '.join(n for _, n in found[:4]) or 'none'}"
                          f"{', ...' if len(found) > 4 else ''}), but the run's latent_dim is {latent_dim} "
                          f"(expected columns z0 .. z{latent_dim - 1})")
    try:
        values = np.array([table[name] for name in expected], dtype=np.float32).T.reshape(-1, latent_dim)
    except (TypeError, ValueError):
        raise VaekitError(f"{path}: code columns z0 .. z{latent_dim - 1} must hold numbers") from None
    n = len(values)
    return Codes(codes=_finite(path, values), ids=list(table["id"]) if "id" in table else list(range(n)),
                 labels=list(table["label"]) if "label" in table else None)


def _finite(path: Path, a: np.ndarray) -> np.ndarray:
    bad = ~np.isfinite(a)
    if bad.any():
        raise VaekitError(f"{path}: row {int(np.argwhere(bad)[0, 0])} holds a value that is not a finite number")
    return a


# -- decoding -------------------------------------------------------------------------------

def decode_codes(run: Any, codes: Codes, output: Path, *, overwrite: bool = False) -> list[Path]:
    """Decoder means of ``codes``: one PNG per row in the folder ``output`` (image runs), or
    the CSV ``output`` in the data's original units (table runs)."""

    image = is_image_run(run.data_info.shape)
    output = Path(output)
    if image:
        check_output_directory(output, overwrite=overwrite, what="output folder", hint="use --overwrite to add to it",
                               replaces=False)
    elif output.suffix.lower() != ".csv":
        raise VaekitError(f"-o {output}: this run models tables; expected an output file ending in .csv")
    else:
        check_new_files([output], overwrite=overwrite)
    cond = _labels_for(run, codes)
    decoded = decode_means(run.model, torch.from_numpy(codes.codes), cond)
    if not image:
        return [write_table(run, decoded, output)]
    output.mkdir(parents=True, exist_ok=True)
    return [_write_png(img, output / f"{name}.png") for img, name in zip(decoded, _file_names(codes.ids), strict=True)]


def _labels_for(run: Any, codes: Codes) -> torch.Tensor | None:
    """A conditional run decodes each code with its row's label (class name or index)."""
    config = run.model.config
    if not config.conditional:
        return None
    if codes.labels is None:
        raise VaekitError(f"model '{config.model}' of {run.path} is conditional: the codes need a 'label' column "
                          "(as vaekit encode writes it)")
    return torch.tensor([config.class_index(str(v)) for v in codes.labels], dtype=torch.int64)


def _file_names(ids: list[Any]) -> list[str]:
    """One file name per row: the id made safe for a file name ('3/a.png' -> '3_a'; numbers
    zero-padded so files sort in order), or the row number when ids are missing or collide."""
    if all(str(i).isdigit() for i in ids):
        width = max((len(str(int(i))) for i in ids), default=1)
        names = [f"{int(i):0{width}d}" for i in ids]
    else:
        names = [re.sub(r"[^A-Za-z0-9._-]+", "_", str(Path(str(i)).with_suffix(""))).strip("._") for i in ids]
    if any(not n for n in names) or len(set(names)) != len(names):
        width = len(str(max(len(ids) - 1, 0)))
        return [f"{i:0{width}d}" for i in range(len(ids))]
    return names


def _write_png(image: torch.Tensor, path: Path) -> Path:
    from PIL import Image

    a = (image.detach().float().clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    with atomic_path(path) as tmp:
        Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a).save(tmp, format="PNG")
    return path
