"""Reader for the idx format of MNIST and Fashion-MNIST (``*-idx3-ubyte.gz`` and friends).

An idx file is a big-endian header (two zero bytes, a type code, the number of
dimensions, then one 4-byte size per dimension) followed by the raw values. Decoding with
``numpy.frombuffer`` after checking the header means a damaged or truncated file is a
clear ``VaekitError`` naming the file, never a silent wrong array.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from vaekit.errors import VaekitError

_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path) -> bytes:
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (EOFError, OSError, zlib.error) as exc:
        raise VaekitError(f"cannot read idx file '{path}': {exc} (the file is damaged or truncated)") from exc


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Decode an idx file (optionally gzip-compressed) into a numpy array in native byte order."""
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise VaekitError(f"'{path}' is not an idx file (bad magic number {raw[:4].hex() or 'empty'})")
    dtype = _DTYPES[raw[2]]
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise VaekitError(f"'{path}' has a damaged idx header ({ndim} dimensions, {len(raw)} bytes)")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    count = int(np.prod(dims, dtype=np.int64))
    expected = header + count * dtype.itemsize
    if len(raw) != expected:
        raise VaekitError(
            f"'{path}' is truncated or damaged: its header promises shape {tuple(dims)} "
            f"({expected} bytes) but it holds {len(raw)} bytes"
        )
    array = np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=True)
