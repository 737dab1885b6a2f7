"""A disk cache of tokenised molecule sets, so a large one is canonicalised only once.

Canonicalising and SELFIES-encoding MOSES (a 250,000-molecule training subset plus the
176,074 test molecules) takes minutes of CPU; ``vaekit train`` does it once, but resume,
``vaekit evaluate`` and ``vaekit report`` rebuild the same dataset from the run's
``DataConfig``. The result is stored under ``<cache>/molecules/`` (``vaekit.data.download.
cache_dir``) as ``<key>.safetensors`` (the rows and lengths) plus ``<key>.json`` (the
``DataInfo``, the SMILES of each split, the reports), never pickled. The key hashes the data
settings, the source file's identity (path, size, modification time; a named set's
verified files are identified by name) and the versions of vaekit, RDKit and selfies, so a
changed file or library gives a new entry rather than stale rows. Sets smaller than
``MIN_MOLECULES`` are not cached: they load in seconds.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaekit.atomic import atomic_path, atomic_write_text
from vaekit.data.bundle import DataInfo, Dataset
from vaekit.data.download import cache_dir
from vaekit.version import __version__ as VERSION

if TYPE_CHECKING:
    from vaekit.data.config import DataConfig

MIN_MOLECULES = 10_000
FORMAT = 1
TENSORS = ("train", "val", "test", "train_lengths")


def cache_key(config: DataConfig, named: str | None) -> str:
    """A hash of everything the tokenised rows depend on."""
    from importlib.metadata import PackageNotFoundError, version


    def installed(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "absent"

    if named is None:
        stat = Path(config.source).expanduser().resolve().stat()
        source: Any = [str(Path(config.source).expanduser().resolve()), stat.st_size, stat.st_mtime_ns]
    else:
        source = named
    blob = json.dumps({"format": FORMAT, "config": config.to_dict(), "source": source, "vaekit": VERSION,
                       "rdkit": installed("rdkit"), "selfies": installed("selfies")}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _paths(key: str) -> tuple[Path, Path]:

    folder = cache_dir() / "molecules"
    return folder / f"{key}.safetensors", folder / f"{key}.json"


def load_cached(key: str) -> Dataset | None:
    """The cached dataset for ``key``, or None (missing or unreadable entries are ignored)."""
    from safetensors.torch import load_file

    tensors_path, meta_path = _paths(key)
    if not (tensors_path.is_file() and meta_path.is_file()):
        return None
    try:
        tensors = load_file(str(tensors_path))
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for line in meta["extras"].get("reports", []):
        warnings.warn(line, stacklevel=3)
    return Dataset(train=tensors["train"], val=tensors.get("val"), test=tensors.get("test"),
                   info=DataInfo.from_dict(meta["info"]), train_lengths=tensors["train_lengths"],
                   extras=meta["extras"])


def save_cached(key: str, data: Dataset) -> None:
    """Store ``data`` under ``key`` when it is large enough to be worth it; a cache that cannot
    be written (read-only home) costs nothing but the next load's time."""
    from safetensors.torch import save_file


    sizes = sum(len(t) for t in (data.train, data.val, data.test) if t is not None)
    if sizes < MIN_MOLECULES:
        return
    tensors = {name: getattr(data, name).contiguous() for name in TENSORS if getattr(data, name) is not None}
    tensors_path, meta_path = _paths(key)
    try:
        tensors_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(tensors_path) as tmp:
            save_file(tensors, str(tmp))
        atomic_write_text(meta_path, json.dumps({"info": data.info.to_dict(), "extras": data.extras}))
    except OSError:
        pass
