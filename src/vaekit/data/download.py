"""Finding a named dataset's files: a local data folder, the cache, or a verified download.

Order for each file ``<folder>/<name>``:

1. ``$VAEKIT_DATA_DIR/<folder>/<name>`` when ``VAEKIT_DATA_DIR`` is set (offline machines,
   shared copies). Its checksum must match; a mismatch is an error (the file is the
   user's, so it is never deleted).
2. ``<cache>/<folder>/<name>``, the cache being ``$VAEKIT_CACHE_DIR`` or
   ``~/.cache/vaekit``. A cached file with a wrong checksum is deleted and fetched again.
3. A download into the cache from each mirror in turn, written to a temporary file and
   renamed only after its checksum matched, so a failed or interrupted download never
   leaves a file that looks complete.

Files without a published checksum (``sha256=None``) are validated by their reader
(shape, value checks) instead.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from vaekit.atomic import atomic_path
from vaekit.errors import VaekitError

DATA_DIR_ENV = "VAEKIT_DATA_DIR"
CACHE_DIR_ENV = "VAEKIT_CACHE_DIR"
TIMEOUT_S = 60.0

_verified: dict[tuple[str, int, int], str] = {}


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: its name, the mirrors it can be downloaded from, and checksums.

    ``sha256`` is what is checked; ``md5`` is the officially published checksum, kept for
    reference (several datasets publish only MD5s).
    """

    name: str
    urls: tuple[str, ...] = ()
    sha256: str | None = None
    md5: str | None = None


def data_dir() -> Path | None:
    """``$VAEKIT_DATA_DIR`` as a path, or ``None`` when unset or empty."""
    value = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Where downloads go: ``$VAEKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/vaekit``, else ``~/.cache/vaekit``."""
    value = os.environ.get(CACHE_DIR_ENV, "").strip()
    if value:
        return Path(value).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".cache") / "vaekit"


def sha256_of(path: Path) -> str:
    """The file's sha256, remembered per (path, size, mtime) for the life of the process."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _verified:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _verified[key] = h.hexdigest()
    return _verified[key]


def _mismatch(path: Path, spec: RemoteFile) -> str | None:
    """A one-line reason if ``path`` fails its checksum, else ``None``."""
    if spec.sha256 is None:
        return None
    actual = sha256_of(path)
    if actual != spec.sha256.lower():
        return f"sha256 mismatch for '{path}' (expected {spec.sha256}, got {actual})"
    return None


def _hint(folder: str, spec: RemoteFile) -> str:
    root = data_dir()
    where = f" (now {root}, which has no {folder}/{spec.name})" if root is not None else ""
    return f"set {DATA_DIR_ENV} to a folder holding {folder}/{spec.name}{where}"


def find_existing(folder: str, spec: RemoteFile) -> Path | None:
    """The verified local copy of ``folder/spec.name`` (data folder, then cache), or ``None``."""
    root = data_dir()
    if root is not None:
        path = root / folder / spec.name
        if path.is_file():
            reason = _mismatch(path, spec)
            if reason:
                raise VaekitError(f"{reason}: the file is damaged or not the official one; replace it")
            return path
    path = cache_dir() / folder / spec.name
    if path.is_file():
        if _mismatch(path, spec) is None:
            return path
        path.unlink(missing_ok=True)  # a damaged cache entry: fetch it again
    return None


def fetch_url(url: str, out: BinaryIO, timeout: float = TIMEOUT_S) -> None:
    """Copy ``url`` (http, https or file) into ``out``. Tests replace this to avoid the network."""
    request = urllib.request.Request(url, headers={"User-Agent": "vaekit"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        shutil.copyfileobj(response, out, 1 << 20)


def download(folder: str, spec: RemoteFile, dest: Path | None = None) -> Path:
    """Download ``spec`` into ``dest`` (default: the cache) from its first working mirror.

    The file appears at ``dest`` only complete and verified; otherwise a ``VaekitError``
    lists the mirrors tried and why each failed.
    """
    dest = dest if dest is not None else cache_dir() / folder / spec.name
    if not spec.urls:
        raise VaekitError(f"{folder}/{spec.name} cannot be downloaded (no known source); {_hint(folder, spec)}")
    reasons = []
    for url in spec.urls:
        sys.stderr.write(f"vaekit: downloading {folder}/{spec.name} from {url}\n")
        try:
            with atomic_path(dest) as tmp:
                with open(tmp, "wb") as out:
                    fetch_url(url, out)
                reason = _mismatch(tmp, spec)
                if reason:
                    raise _BadChecksum(reason.replace(f"'{tmp}'", "the downloaded file"))
            return dest
        except _BadChecksum as exc:
            reasons.append(f"{url}: {exc}")
        except (OSError, ValueError) as exc:  # URLError, HTTPError and timeouts are OSErrors
            reasons.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
    raise VaekitError(
        f"could not download {spec.name} from [{', '.join(spec.urls)}]: {'; '.join(reasons)}; {_hint(folder, spec)}"
    )


class _BadChecksum(Exception):
    pass


def fetch(folder: str, files: Sequence[RemoteFile]) -> dict[str, Path]:
    """Paths of all ``files`` of ``folder``, downloading the ones not found locally."""
    paths = {}
    for spec in files:
        paths[spec.name] = find_existing(folder, spec) or download(folder, spec)
    return paths


def find_all(folder: str, files: Sequence[RemoteFile]) -> dict[str, Path] | None:
    """Paths of all ``files`` if every one is already local (verified), else ``None``."""
    paths = {}
    for spec in files:
        path = find_existing(folder, spec)
        if path is None:
            return None
        paths[spec.name] = path
    return paths
