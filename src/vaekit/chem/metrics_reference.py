"""Per-molecule features for the MOSES metrics, and the reference statistics built from them.

Every metric needs a few things per molecule (canonical SMILES, Morgan fingerprint, BRICS
fragments, Bemis-Murcko scaffold, whether it passes the filters); ``describe_all`` computes
them in one pass, in worker processes when ``n_jobs > 1``. A reference set (MOSES test or
scaffold test, or a user's file) is summarised once into ``ReferenceStats``: ChemNet
activation mean and covariance (FCD), fingerprints (SNN), fragment and scaffold counts
(Frag, Scaf). The summary of the 176k-molecule MOSES test set takes most of an hour on one
CPU core (ChemNet alone ~7 ms a molecule), so it is cached under ``<cache>/chem/`` as
``.npz`` (arrays) + ``.json`` (counts), never pickle, written atomically. The key is the
reference's checksum (``file_key``: the file's sha256, so a cached reference is not even
read; ``smiles_key``: a hash of a SMILES list) with ``METRICS_VERSION`` and the RDKit / fcd
versions, so a changed file, metric or library gives a new entry rather than a stale one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from rdkit import Chem, rdBase
from rdkit.Chem.Scaffolds import MurckoScaffold

from vaekit.atomic import atomic_write_text, atomic_write_with
from vaekit.chem.metrics_filters import passes_filters
from vaekit.chem.metrics_similarity import morgan_bits
from vaekit.data.download import cache_dir, sha256_of
from vaekit.data.molecules.rdkit import to_mol
from vaekit.errors import VaekitError

STATS_FORMAT = "vaekit-moses-reference-1"
#: Part of every cache key: bump it when what a cached statistic means changes (features,
#: fingerprints, ChemNet inputs), so older entries are never read again.
METRICS_VERSION = 2
#: Molecules per ChemNet pass between two progress reports.
CHEMNET_CHUNK = 4096
MIN_SCAFFOLD_RINGS = 2  # MOSES counts a scaffold only when it has at least two rings
CHUNK = 2000


@dataclass
class Features:
    """What the metrics need of one valid molecule."""

    canonical: str
    fingerprint: np.ndarray  # 128 uint8, bit-packed Morgan r=2, 1024 bits
    fragments: list[str]
    scaffold: str | None
    passes_filters: bool | None  # None when not asked for


def fragments_of(mol: Chem.Mol) -> list[str]:
    """SMILES of the pieces left after cutting every BRICS bond (dummy atoms mark the cuts), as in MOSES."""
    return Chem.MolToSmiles(Chem.FragmentOnBRICSBonds(mol)).split(".")


def scaffold_of(mol: Chem.Mol) -> str | None:
    """Canonical SMILES of the Bemis-Murcko scaffold, or None when it has fewer than two rings (MOSES's rule)."""
    try:
        scaffold = MurckoScaffold.GetScaffoldForMol(mol)
    except Exception:  # RDKit raises assorted errors on exotic molecules; MOSES skips them too
        return None
    smiles = Chem.MolToSmiles(scaffold)
    if not smiles or scaffold.GetRingInfo().NumRings() < MIN_SCAFFOLD_RINGS:
        return None
    return smiles


def describe(smiles: str | None, with_filters: bool = False) -> Features | None:
    """The features of one SMILES, or None when it is not a valid molecule."""
    mol = to_mol(smiles) if smiles else None
    if mol is None:
        return None
    with rdBase.BlockLogs():
        return Features(
            canonical=Chem.MolToSmiles(mol),
            fingerprint=morgan_bits(mol),
            fragments=fragments_of(mol),
            scaffold=scaffold_of(mol),
            passes_filters=passes_filters(mol) if with_filters else None,
        )


#: Who hears how far a long pass over molecules is: ``(what, done, total)`` after each chunk
#: (the CLI's progress bar); nobody by default, so the library itself prints nothing.
_progress: ContextVar[Callable[[str, int, int], None] | None] = ContextVar("molecule_progress", default=None)


@contextmanager
def reporting_progress(callback: Callable[[str, int, int], None]) -> Iterator[None]:
    """Within the block, ``callback(what, done, total)`` hears each chunk of a long pass
    (describing or canonicalising molecules)."""
    token = _progress.set(callback)
    try:
        yield
    finally:
        _progress.reset(token)


def _in_chunks(work: Callable[[list], list], items: Sequence, what: str, n_jobs: int) -> list:
    """``work`` over ``items`` chunk by chunk, in order (worker processes when ``n_jobs > 1``
    and there is enough to share), reporting each finished chunk."""
    chunks = [list(items[i:i + CHUNK]) for i in range(0, len(items), CHUNK)]
    report = _progress.get()
    done: list = []
    with contextlib.ExitStack() as stack:
        if n_jobs > 1 and len(chunks) > 1:
            results = stack.enter_context(multiprocessing.get_context("spawn").Pool(n_jobs)).imap(work, chunks)
        else:
            results = map(work, chunks)
        for part in results:
            done.extend(part)
            if report is not None:
                report(what, len(done), len(items))
    return done


def _describe_chunk(chunk: list[str | None]) -> list[Features | None]:
    return [describe(s, False) for s in chunk]


def _describe_chunk_with_filters(chunk: list[str | None]) -> list[Features | None]:
    return [describe(s, True) for s in chunk]


def describe_all(smiles: Sequence[str | None], *, with_filters: bool = False, n_jobs: int = 1) -> list[Features | None]:
    """``describe`` of every SMILES, in order; ``n_jobs > 1`` spreads chunks over worker processes."""
    work = _describe_chunk_with_filters if with_filters else _describe_chunk
    return _in_chunks(work, smiles, "describing molecules", n_jobs)


def _canonical_chunk(chunk: list[str]) -> list[str | None]:
    from vaekit.data.molecules.rdkit import canonical

    return [canonical(s) for s in chunk]


def canonicalize_all(smiles: Sequence[str], *, n_jobs: int = 1) -> list[str | None]:
    """Canonical SMILES of each string (None where invalid); ``n_jobs > 1`` uses worker processes."""
    return _in_chunks(_canonical_chunk, smiles, "canonicalising molecules", n_jobs)


@lru_cache(maxsize=1)
def _chemnet() -> torch.nn.Module:
    import fcd

    return fcd.load_ref_model()


def chemnet_activations(smiles: Sequence[str], *, device: str | None = None, batch_size: int = 256) -> np.ndarray:
    """ChemNet's penultimate-layer activations (N, 512) for canonical SMILES (the ``fcd`` package's model).

    The same numbers as ``fcd.get_predictions`` (one-hot rows padded to 350 characters, or to
    the longest SMILES of the whole list), computed in chunks so a long pass reports its progress.
    """
    from fcd.utils import SmilesDataset
    from torch.utils.data import DataLoader

    smiles = list(smiles)
    if not smiles:
        return np.zeros((0, 512), dtype=np.float32)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model = _chemnet().to(device)
    pad = max(350, max(len(s) for s in smiles) + 1)
    report = _progress.get()
    out = []
    with torch.no_grad():
        for start in range(0, len(smiles), CHEMNET_CHUNK):
            chunk = smiles[start:start + CHEMNET_CHUNK]
            for batch in DataLoader(SmilesDataset(chunk, pad_len=pad, warn=False), batch_size=batch_size):
                out.append(model(batch.transpose(1, 2).float().to(device)).cpu().numpy().astype(np.float32))
            if report is not None:
                report("ChemNet activations", start + len(chunk), len(smiles))
    return np.concatenate(out)


def gaussian_of(activations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of activations, as FCD defines them (``np.cov`` of the rows, N - 1 normalisation)."""
    if len(activations) < 2:
        raise VaekitError(f"FCD needs at least 2 valid molecules, got {len(activations)}")
    return activations.mean(0).astype(np.float64), np.cov(activations.T.astype(np.float64))


@dataclass
class ReferenceStats:
    """A reference set summarised for the metrics: computed once, reused for every generated set."""

    size: int
    fcd_mu: np.ndarray
    fcd_sigma: np.ndarray
    fingerprints: np.ndarray  # (size, 128) uint8, bit-packed
    fragments: dict[str, int]
    scaffolds: dict[str, int]

    @classmethod
    def from_features(cls, features: Iterable[Features], *, device: str | None = None) -> ReferenceStats:
        valid = list(features)
        mu, sigma = gaussian_of(chemnet_activations([f.canonical for f in valid], device=device))
        return cls(
            size=len(valid),
            fcd_mu=mu,
            fcd_sigma=sigma,
            fingerprints=np.stack([f.fingerprint for f in valid]),
            fragments=dict(Counter(frag for f in valid for frag in f.fragments)),
            scaffolds=dict(Counter(f.scaffold for f in valid if f.scaffold is not None)),
        )

    def save(self, stem: Path) -> None:
        """Write ``stem.npz`` (arrays) and ``stem.json`` (counts), each atomically."""
        def write_npz(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, fcd_mu=self.fcd_mu, fcd_sigma=self.fcd_sigma, fingerprints=self.fingerprints)

        atomic_write_with(stem.with_suffix(".npz"), write_npz)
        meta = {"format": STATS_FORMAT, "size": self.size, "fragments": self.fragments, "scaffolds": self.scaffolds}
        atomic_write_text(stem.with_suffix(".json"), json.dumps(meta))

    @classmethod
    def load(cls, stem: Path) -> ReferenceStats:
        """Read what ``save`` wrote; a damaged or foreign file is a ``VaekitError`` naming it."""
        try:
            meta = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
            with np.load(stem.with_suffix(".npz"), allow_pickle=False) as z:
                mu, sigma, fps = z["fcd_mu"], z["fcd_sigma"], z["fingerprints"]
        except (OSError, ValueError, KeyError) as exc:
            raise VaekitError(f"cannot read reference statistics '{stem}.npz/.json': {exc} (delete them)") from exc
        if meta.get("format") != STATS_FORMAT or len(fps) != meta.get("size"):
            raise VaekitError(f"'{stem}.json' is not a {STATS_FORMAT} file (delete it and its .npz)")
        return cls(meta["size"], mu, sigma, fps, meta["fragments"], meta["scaffolds"])


def _versions(tag: str) -> str:
    return f"{tag}|metrics {METRICS_VERSION}|rdkit {rdBase.rdkitVersion}|fcd {version('fcd')}\n"


def smiles_key(smiles: Sequence[str | None], tag: str) -> str:
    """A short hash of a SMILES list, the metrics' version and the library versions that shape its statistics."""
    h = hashlib.sha256(_versions(tag).encode())
    for s in smiles:
        h.update((s or "").encode())
        h.update(b"\n")
    return h.hexdigest()[:20]


def file_key(path: str | Path, tag: str) -> str:
    """The cache key of a reference file: its sha256 (not its name or date), the metrics' version,
    the library versions and ``tag`` (what is computed from it, and how the file is read)."""
    return hashlib.sha256((_versions(tag) + sha256_of(Path(path))).encode()).hexdigest()[:20]


def stats_dir() -> Path:
    return cache_dir() / "chem"


def reference_stats(smiles: Sequence[str] | Callable[[], Sequence[str]], *, n_jobs: int = 1,
                    device: str | None = None, cache: bool = True, key: str | None = None) -> ReferenceStats:
    """The statistics of a reference SMILES list, from the cache when computed before.

    ``key`` names the cache entry (``file_key`` of the reference file; default: ``smiles_key``
    of the list); with a key, ``smiles`` may be a function that reads the list, called only
    when the entry is missing. Invalid reference SMILES are skipped (MOSES's sets have none);
    a list with no valid molecule is a ``VaekitError``.
    """
    if key is None:
        if callable(smiles):
            raise TypeError("reference_stats: a key is needed when smiles is read lazily")
        key = smiles_key(smiles, STATS_FORMAT)
    stem = stats_dir() / f"reference-{key}"
    if cache and stem.with_suffix(".json").is_file() and stem.with_suffix(".npz").is_file():
        return ReferenceStats.load(stem)
    smiles = smiles() if callable(smiles) else smiles
    features = [f for f in describe_all(smiles, n_jobs=n_jobs) if f is not None]
    if not features:
        raise VaekitError(f"none of the {len(smiles)} reference SMILES is a valid molecule")
    stats = ReferenceStats.from_features(features, device=device)
    if cache:
        stats.save(stem)
    return stats
