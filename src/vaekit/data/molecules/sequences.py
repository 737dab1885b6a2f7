"""Molecules as a training set for a sequence model: canonical, tokenised, padded rows.

``vaekit.data.load`` hands molecule sources here (a named set such as ``moses`` or
``zinc250k``, a ``.smi`` file, or any SMILES file when ``DataConfig.tokens`` is set) and
gets back the same ``Dataset`` every model trains on, so the trainer, the run directory and
resume need nothing molecule-specific:

- each example is one float32 row ``[token ids (max_length) | standardized properties]``:
  ids are exact in float32, the likelihood reads them back as integers, and the property
  head finds its targets after them, indexed with the same permutation as the tokens;
- ``DataInfo.kind == "sequence"`` with the vocabulary, the tokenizer, the property names and
  their training mean / std, so a run holds all it needs to turn ids back into molecules;
- ``Dataset.train_lengths`` lets the trainer bucket batches by length (``train_order``).

Splits: a named set with an official test set (MOSES) keeps it; otherwise a seeded test
split is carved as for any user data; validation is ``val_fraction`` of the rest.
``limit`` is a seeded random subset of the source's molecules taken before anything else
(so ``--limit 50000`` on MOSES's 1.6M training SMILES canonicalises only 50,000), and of a
given test set too (encoding MOSES's 176,074 test molecules as SELFIES takes about a minute
of one CPU core, which a quick run need not pay). Invalid
SMILES, molecules the tokenizer cannot encode and held-out molecules with tokens outside
the training vocabulary are counted and reported (``warnings``), never dropped silently.
Large sets are cached on disk once tokenised (``sequence_cache``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from vaekit.data.bundle import DataInfo, Dataset
from vaekit.data.molecules.cache import cache_key, load_cached, save_cached
from vaekit.data.molecules.smiles_files import SmilesFile, read_smiles, validate
from vaekit.data.molecules.smiles_sets import NAMED_SETS, canonical_set_name
from vaekit.data.molecules.tokens import DEFAULT_TOKENS, Vocabulary, get_tokenizer
from vaekit.data.splits import split_indices
from vaekit.errors import VaekitError

if TYPE_CHECKING:
    from vaekit.data.config import DataConfig
    from vaekit.data.molecules.smiles_files import SmilesFile
    from vaekit.data.molecules.tokens import Tokenizer, Vocabulary

MOLECULE_SUFFIXES = (".smi", ".smi.gz")
#: Seed of the random subset ``limit`` takes and of the augmentation's randomised SMILES.
SUBSET_SEED = 0
AUGMENT_SEED = 1


def is_molecule_source(config: DataConfig) -> bool:
    """True for data read as molecules: ``tokens`` set, a named molecule set, or a ``.smi`` file."""
    if config.tokens is not None:
        return True
    if config.source.lower().endswith(MOLECULE_SUFFIXES):
        return True
    return named_set(config.source) is not None


def named_set(source: str) -> str | None:
    """The canonical name (``moses:train``...) of a named molecule set, or None. A bare name
    wins over a folder of that name in the working directory (a run directory called
    ``moses``), as for vaekit's other named datasets; ``./moses`` is the folder."""

    if any(c in source for c in "/\\"):
        return None
    return canonical_set_name(source)


def load_molecules(config: DataConfig) -> Dataset:
    """The ``Dataset`` of a molecule source (see the module docstring)."""

    if config.label_column is not None:
        raise VaekitError("label_column applies to tables only, not to molecules (use properties=... for "
                          "numeric columns the property head predicts)")
    tokenizer = get_tokenizer(config.tokens or DEFAULT_TOKENS)
    config = replace(config, tokens=tokenizer.name)  # the cache key names the tokens actually used
    properties = list(config.properties or [])
    named = named_set(config.source)
    key = cache_key(config, named) if named or Path(config.source).expanduser().is_file() else None
    cached = load_cached(key) if key else None
    if cached is not None:
        return cached
    reports: list[str] = []
    splits = _splits(config, named, properties, reports)
    tokens = {split: _tokenize(s, p, tokenizer, reports, split) for split, (s, p) in splits.items()}
    if not tokens["train"][0]:
        raise VaekitError(f"'{config.source}': no training molecule can be written as {tokenizer.name} "
                          f"({'; '.join(reports)})")
    vocabulary = Vocabulary.build(tokens["train"][0], tokenizer.name)
    for split in ("val", "test"):
        tokens[split] = _known(*tokens[split], vocabulary, reports, split)
    max_length = max(len(t) for seqs, _, _ in tokens.values() for t in seqs) + 2  # bos and eos

    train_props = tokens["train"][1]
    mean = np.nanmean(train_props, axis=0) if properties else np.zeros(0)
    std = np.nanstd(train_props, axis=0) if properties else np.zeros(0)
    std = np.where(std > 0, std, 1.0)
    rows = {split: _rows(seqs, p, vocabulary, max_length, mean, std) for split, (seqs, p, _) in tokens.items()}
    for line in reports:
        warnings.warn(line, stacklevel=2)

    name = named.split(":")[0] if named else _stem(config.source)
    info = DataInfo(
        name=name, shape=(max_length + len(properties),), kind="sequence",
        value_range=(0.0, float(len(vocabulary) - 1)), likelihood="categorical",
        source=named or str(Path(config.source).resolve()), vocabulary=list(vocabulary.tokens),
        tokenizer=tokenizer.name, targets=properties or None,
        target_mean=[float(v) for v in mean] if properties else None,
        target_std=[float(v) for v in std] if properties else None,
    )
    lengths = torch.tensor([len(t) + 2 for t in tokens["train"][0]], dtype=torch.int64)
    extras = {f"{split}_smiles": smi for split, (_, _, smi) in tokens.items()}
    extras["reports"] = reports
    data = Dataset(train=rows["train"], val=rows["val"], test=rows["test"], info=info, train_lengths=lengths,
                   extras=extras)
    if key:
        save_cached(key, data)
    return data


def _splits(config: DataConfig, named: str | None, properties: list[str], reports: list[str]
            ) -> dict[str, tuple[list[str], np.ndarray]]:
    """Canonical SMILES and property rows of train / val / test (augmented training set)."""

    source = _subset(read_smiles(named or config.source, column=config.smiles_column, properties=properties),
                     config.limit)
    smiles, props = _valid(source, properties, reports)
    given_test = f"{named.split(':')[0]}:test" if named and named.endswith(":train") else None
    if given_test not in NAMED_SETS:
        given_test = None
    train_idx, val_idx, test_idx = split_indices(
        len(smiles), val_fraction=config.val_fraction, split_seed=config.split_seed,
        test_fraction=0.0 if given_test else config.test_fraction)
    splits = {split: ([smiles[i] for i in idx], props[idx]) for split, idx in
              (("train", train_idx), ("val", val_idx), ("test", test_idx))}
    if given_test:
        test_file = _subset(read_smiles(given_test), config.limit)
        splits["test"] = _valid(test_file, [], reports, with_properties=len(properties))
    if config.augment:
        splits["train"] = _augment(*splits["train"], config.augment)
    return splits


def _stem(source: str) -> str:
    name = Path(source).name
    for suffix in (".gz", ".smi", ".txt", ".csv", ".tsv"):
        name = name.removesuffix(suffix)
    return name or "molecules"


def _subset(file: SmilesFile, limit: int | None) -> SmilesFile:
    """A seeded random subset of at most ``limit`` molecules, in file order."""
    if limit is None or limit >= len(file.smiles):
        return file

    keep = np.sort(np.random.default_rng(SUBSET_SEED).choice(len(file.smiles), size=limit, replace=False))
    return SmilesFile([file.smiles[i] for i in keep], [file.line_numbers[i] for i in keep], file.origin,
                      {k: v[keep] for k, v in file.properties.items()})


def _valid(file: SmilesFile, properties: Sequence[str], reports: list[str], *,
           with_properties: int | None = None) -> tuple[list[str], np.ndarray]:
    """Canonical SMILES of the valid molecules and their property rows ``(N, P)``; the
    invalid ones reported. ``with_properties``: a set without the columns (MOSES's test
    set) gets NaN targets of that width, which the property head leaves out."""

    smiles, indices, report = validate(file)
    if report:
        reports.append(report)
    if with_properties is not None:
        return smiles, np.full((len(smiles), with_properties), np.nan)
    props = np.stack([file.properties[p][indices] for p in properties], axis=1) if properties else \
        np.zeros((len(smiles), 0))
    return smiles, props


def _augment(smiles: list[str], props: np.ndarray, copies: int) -> tuple[list[str], np.ndarray]:
    """The training molecules plus ``copies`` randomised SMILES of each (seeded; same properties)."""
    from vaekit.data.molecules.rdkit import randomized

    rng = np.random.default_rng(AUGMENT_SEED)
    extra = [randomized(s, rng) for _ in range(copies) for s in smiles]
    return smiles + extra, np.concatenate([props] * (copies + 1), axis=0)


def _tokenize(smiles: list[str], props: np.ndarray, tokenizer: Tokenizer, reports: list[str], split: str
              ) -> tuple[list[list[str]], np.ndarray, list[str]]:
    """Tokens of each molecule; one the tokenizer cannot encode is left out and counted."""
    seqs, keep, failed = [], [], []
    for i, s in enumerate(smiles):
        try:
            seqs.append(tokenizer.tokenize(s))
        except VaekitError:
            failed.append(s)
            continue
        keep.append(i)
    if failed:
        reports.append(f"{len(failed)} of {len(smiles)} {split} molecules cannot be written as {tokenizer.name} "
                       f"and are left out (first: {', '.join(failed[:3])})")
    return seqs, props[keep], [smiles[i] for i in keep]


def _known(seqs: list[list[str]], props: np.ndarray, smiles: list[str], vocabulary: Vocabulary,
           reports: list[str], split: str) -> tuple[list[list[str]], np.ndarray, list[str]]:
    """Held-out molecules whose tokens the training vocabulary has; the others counted."""
    keep = [i for i, t in enumerate(seqs) if vocabulary.knows(t)]
    if len(keep) < len(seqs):
        reports.append(f"{len(seqs) - len(keep)} of {len(seqs)} {split} molecules use tokens that are not in the "
                       "training vocabulary and are left out")
    return [seqs[i] for i in keep], props[keep], [smiles[i] for i in keep]


def _rows(seqs: list[list[str]], props: np.ndarray, vocabulary: Vocabulary, max_length: int, mean: np.ndarray,
          std: np.ndarray) -> torch.Tensor | None:
    """``(N, max_length + P)`` float32: padded ids, then standardized properties."""
    if not seqs:
        return None
    rows = np.zeros((len(seqs), max_length + props.shape[1]), dtype=np.float32)
    for i, tokens in enumerate(seqs):
        ids = vocabulary.encode(tokens)
        rows[i, :len(ids)] = ids
    if props.shape[1]:
        rows[:, max_length:] = (props - mean) / std
    return torch.from_numpy(rows)


def encode_rows(smiles: Sequence[str], tokenizer: Tokenizer, vocabulary: Vocabulary, max_length: int,
                n_properties: int = 0) -> torch.Tensor:
    """Rows a trained model takes for new molecules (canonicalised first; properties NaN).

    An invalid SMILES, a token outside ``vocabulary`` or a molecule longer than the model's
    ``max_length`` is a one-line ``VaekitError`` naming the molecule.
    """
    from vaekit.data.molecules.rdkit import canonical

    rows = np.zeros((len(smiles), max_length + n_properties), dtype=np.float32)
    rows[:, max_length:] = np.nan
    for i, s in enumerate(smiles):
        c = canonical(s)
        if c is None:
            raise VaekitError(f"invalid SMILES '{s}': RDKit cannot parse it")
        ids = vocabulary.encode(tokenizer.tokenize(c), molecule=s)
        if len(ids) > max_length:
            raise VaekitError(f"molecule '{s}' has {len(ids) - 2} {tokenizer.name} tokens; this model takes at "
                              f"most {max_length - 2}")
        rows[i, :len(ids)] = ids
    return torch.from_numpy(rows)
