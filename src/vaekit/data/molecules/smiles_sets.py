"""Named molecule sets (MOSES, ZINC250k): their official files, checksums and columns.

Same pattern as ``vaekit.data.registry``: each name has one or more *sources* (a file and
how to read it). A source already on disk (``$VAEKIT_DATA_DIR/<folder>/<file>`` or the
cache, checksum verified by ``vaekit.data.download``) wins; otherwise the first source with
a download URL is fetched into the cache, checked against its sha256, and used.

The MOSES files are the Git-LFS objects of the official repository at a fixed commit; the
ZINC250k SMILES are the Grammar-VAE / JT-VAE file (DD-VAE's gzip copy). ZINC250k with
properties (``logP``, ``qed``, ``SAS``) reads ``zinc250k_properties_rdkit.csv.gz`` when a
data folder has it (properties computed with a current RDKit, so they match what
``vaekit.chem.properties`` computes on generated molecules); otherwise it downloads
chemical_vae's CSV, whose QED column came from a 2016 RDKit and differs by ~0.03.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vaekit.data.download import RemoteFile, download, find_existing
from vaekit.errors import VaekitError

MOSES_COMMIT = "dd7ed6ab38e23afd3ef5371d67939a1760bd8599"
MOSES_LFS = f"https://media.githubusercontent.com/media/molecularsets/moses/{MOSES_COMMIT}/moses/"
MOSES_RAW = f"https://raw.githubusercontent.com/molecularsets/moses/{MOSES_COMMIT}/moses/"
DDVAE_RAW = "https://raw.githubusercontent.com/insilicomedicine/DD-VAE/13498d098bae2c8177abec61ab80d8b618d274f3/"
CHEMVAE_LFS = (
    "https://media.githubusercontent.com/media/aspuru-guzik-group/chemical_vae/"
    "37b9f96470d4471c0593cffefa448e0a8a184ef6/"
)


@dataclass(frozen=True)
class SmilesSource:
    """One file holding a named set: ``column`` None means one SMILES per line (no header)."""

    folder: str
    file: RemoteFile
    column: str | None = None
    properties: tuple[str, ...] = ()


def _moses(part: str, sha256: str, md5: str) -> SmilesSource:
    name = f"{part}.csv.gz"
    return SmilesSource("moses", RemoteFile(name, (f"{MOSES_LFS}dataset/data/{name}",), sha256=sha256, md5=md5),
                        column="SMILES")


ZINC_PROPERTIES = ("logP", "qed", "SAS")

NAMED_SETS: dict[str, tuple[SmilesSource, ...]] = {
    "moses:train": (
        _moses("train", "786f0313aa6b9ba5514df685f885742a70ea8d86f1a4fa48115f7f80a634265c",
               "712ffb13b3c0e4c24ab3faab75f5eb9e"),
    ),
    "moses:test": (
        _moses("test", "f896fbf3764f88d94670b9959e5872c600c12152a18233823e820761b7a791b2",
               "67c1f90c86ff795e47485b2d615dc1c8"),
    ),
    "moses:test_scaffolds": (
        _moses("test_scaffolds", "adffb2192c1bfe31ab0e13154d4af19a37dc18bdbf3cd7b4491e04405128adde",
               "463b155c93d85d6806c6d448dcd476b7"),
    ),
    "zinc250k": (
        SmilesSource("zinc250k", RemoteFile(
            "250k_rndm_zinc_drugs_clean.smi.gz", (f"{DDVAE_RAW}data/zinc/250k_rndm_zinc_drugs_clean.smi.gz",),
            sha256="50b6b95dbdd4547344602c352b6e770daf8bda801fcd670fc487334d04a1ab36",
            md5="4bf25482eeec1548af228ccacb47dbf6")),
        SmilesSource("zinc250k", RemoteFile(
            "zinc250k_properties_rdkit.csv.gz",
            sha256="ccc0c8cb37fcc420b59a59ba2bb5378c7be8f3078176827e1e7148fa5f858d0f",
            md5="e9b471b196822917f8ba8d9754bc1b09"), column="smiles", properties=ZINC_PROPERTIES),
        SmilesSource("zinc250k", RemoteFile(
            "250k_rndm_zinc_drugs_clean_3.csv",
            (f"{CHEMVAE_LFS}models/zinc_properties/250k_rndm_zinc_drugs_clean_3.csv",),
            sha256="35e3f1a52b1badc0697e373d73a18ad773f415936ff992f4c6baa2e067b3e6ae"),
            column="smiles", properties=ZINC_PROPERTIES),
    ),
}
ALIASES = {"moses": "moses:train", "zinc": "zinc250k", "zinc250k:train": "zinc250k"}

# The structural alerts of MOSES's "Filters" metric, byte-identical to the repository's files.
FILTER_FILES = {
    "mcf.csv": RemoteFile("mcf.csv", (f"{MOSES_RAW}metrics/mcf.csv",),
                          sha256="f4a2bfacb4cb8877295eb2a4b4e61ec9770a26388f1331e5dc9c193d22dd5f89",
                          md5="98688e5b83bb64274256dab4640284b9"),
    "wehi_pains.csv": RemoteFile("wehi_pains.csv", (f"{MOSES_RAW}metrics/wehi_pains.csv",),
                                 sha256="d762e5420ec70f06d7e41d336cae6f67e2feb0eddf05c6171192a332726d296f",
                                 md5="e806ffcb4044e31eadd35344929ad68a"),
}


def set_names() -> list[str]:
    """Names ``read_smiles`` accepts besides paths."""
    return ["moses", *NAMED_SETS]


def canonical_set_name(source: str) -> str | None:
    """``'MOSES'`` -> ``'moses:train'``; ``None`` when ``source`` names no known set."""
    key = source.strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    return key if key in NAMED_SETS else None


def looks_like_set_name(source: str) -> bool:
    """Whether ``source`` is meant as a set name (``moses:...``), so a typo gets the list of names."""
    return source.strip().lower().split(":")[0] in {"moses", "zinc250k", "zinc"}


def locate(name: str, properties: tuple[str, ...] = ()) -> tuple[SmilesSource, Path]:
    """The file of set ``name`` that has ``properties``: a local verified copy, else a download."""
    sources = NAMED_SETS[name]
    missing = [p for p in properties if not any(p in s.properties for s in sources)]
    if missing:
        have = sorted({p for s in sources for p in s.properties})
        raise VaekitError(
            f"'{name}' has no property {', '.join(repr(m) for m in missing)} "
            f"(its properties: {', '.join(have) if have else 'none'})"
        )
    usable = [s for s in sources if all(p in s.properties for p in properties)]
    for source in usable:
        path = find_existing(source.folder, source.file)
        if path is not None:
            return source, path
    source = next((s for s in usable if s.file.urls), usable[0])
    return source, download(source.folder, source.file)


def filter_file(name: str) -> Path:
    """Path of MOSES's ``mcf.csv`` or ``wehi_pains.csv`` (local copy or verified download)."""
    spec = FILTER_FILES[name]
    return find_existing("moses", spec) or download("moses", spec)
