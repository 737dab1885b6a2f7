"""Atomic file writes: a crash never leaves a half-written model, checkpoint or download.

Also the rules every writer shares: ``check_new_files`` (a file the user named is never
replaced unless asked), ``unused_names`` (a default output never replaces any file) and
``staging_directory`` / ``swap_in`` (a directory is replaced only by a complete new one,
built beside it).

Every writer goes to a temporary file in the destination folder and then renames it
over the target (``os.replace`` is atomic on POSIX and Windows within one file system).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from vaekit.errors import VaekitError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``.

    Use it for writers that insist on a file name (``safetensors.torch.save_file``,
    ``torch.save``, ``PIL.Image.save``). On error the temporary file is removed and the
    old ``path``, if any, is untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes 0600 (and some writers recreate the file): give it the usual permissions
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_with(path: str | os.PathLike, writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp_path)`` and move the result onto ``path`` atomically."""
    with atomic_path(path) as tmp:
        writer(tmp)


def check_new_files(paths: Iterable[str | os.PathLike], *, overwrite: bool, flag: str = "--overwrite") -> None:
    """The one rule of every command that writes a file the user named: refuse a path that
    exists (unless ``overwrite``), that is a directory, or whose folder does not exist.

    Called before any work, so a refused command changes nothing on disk.
    """
    targets = [Path(p) for p in paths]
    for target in targets:
        if target.is_dir():
            raise VaekitError(f"{target}: is a directory (expected a file name)")
        if not target.parent.is_dir():
            raise VaekitError(f"{target}: the folder {target.parent} does not exist (create it first)")
    taken = [t for t in targets if t.exists()]
    if taken and not overwrite:
        more = f" (and {len(taken) - 1} more)" if len(taken) > 1 else ""
        raise VaekitError(f"{taken[0]}: already exists{more} (use {flag} to replace it)")


def unused_names(folder: str | os.PathLike, names: Iterable[str]) -> list[Path]:
    """``names`` (a file and those written beside it) in ``folder`` under the first tag that
    none of them has yet: ``samples.png``, else ``samples-2.png``, ``samples-3.png``, ...
    (``interpolation.png`` and ``.gif`` get the same tag). Where a command writes a file the
    user did not name, it never replaces one that is there."""
    folder, names = Path(folder), [Path(n) for n in names]
    number = 1
    while True:
        tag = "" if number == 1 else f"-{number}"
        paths = [folder / f"{n.stem}{tag}{n.suffix}" for n in names]
        if not any(p.exists() or p.is_symlink() for p in paths):
            return paths
        number += 1


def staging_directory(target: str | os.PathLike) -> Path:
    """A new empty directory beside ``target`` in which its replacement is built; pass it to
    ``swap_in`` once complete, or to ``discard`` when the work failed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))


def final_place(path: str | os.PathLike) -> Path:
    """The directory that ``path`` will become: the target of a ``staging_directory`` (which
    ``swap_in`` renames to it), else ``path`` itself. For what a run records about its own
    place while it is still being built beside it."""
    path = Path(path)
    match = re.fullmatch(r"\.(.+)\.new-[a-z0-9_]{8}", path.name)
    return path.with_name(match.group(1)) if match else path


def swap_in(staging: Path, target: str | os.PathLike) -> None:
    """Put the complete directory ``staging`` in the place of ``target``, removing the old one
    only once the new one is in place (a failed rename puts the old one back)."""
    target = Path(target)
    if not target.exists():
        os.replace(staging, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.replace(target, old / target.name)
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(old / target.name, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def discard(staging: Path) -> None:
    """Remove a staging directory whose work failed or was interrupted."""
    shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def building(build_dir: Path, target: str | os.PathLike, *, swap: bool = True) -> Iterator[Path]:
    """Work in ``build_dir`` (``target`` itself, or a ``staging_directory`` beside it); on
    success a staging directory replaces ``target`` (``swap_in``; ``swap=False``: another
    process does it), on failure or Ctrl-C it is discarded and ``target`` stays as it was."""
    staged = Path(build_dir) != Path(target)
    try:
        yield Path(build_dir)
    except BaseException:
        if staged:
            discard(build_dir)
        raise
    if staged and swap:
        swap_in(build_dir, target)
