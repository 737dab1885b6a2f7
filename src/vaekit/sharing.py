"""Sharing models: the Hub-style folder (``save_pretrained``), its model card, the Hugging Face
Hub's upload and download (the ``hub`` extra), and the pretrained models that ship inside
the package (``pretrained:NAME``).

The folder is the run format itself: ``config.json`` + ``model.safetensors`` (+ the run's
``summary.json`` and pictures when there is a run) and a generated ``README.md``; reading it
never unpickles (safetensors and JSON only).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from vaekit.atomic import atomic_write_text
from vaekit.errors import VaekitError
from vaekit.extras import require
from vaekit.serialization import CONFIG_FILE, WEIGHTS_FILE, read_json, save_model, write_json

CARD_FILE = "README.md"
SUMMARY_FILE = "summary.json"
#: What a download takes from a Hub repository: nothing that could be unpickled.
HUB_FILES = [CONFIG_FILE, WEIGHTS_FILE, CARD_FILE, SUMMARY_FILE, "*.png"]
PRETRAINED = "pretrained:"
ZOO = Path(__file__).parent / "zoo"
ZOO_REGISTRY = ZOO / "registry.json"


# -- the folder and its card -------------------------------------------------------------------

def save_pretrained(model: torch.nn.Module, path: str | Path, *, config: dict[str, Any] | None = None,
                    summary: dict[str, Any] | None = None, files: Iterable[Path] = (),
                    command: str | None = None) -> Path:
    """Write ``model`` as a shareable folder: the run format plus a model card. ``config``: the
    run's whole config.json (data and training sections), ``summary``: its summary.json,
    ``files``: pictures to copy, ``command``: what made it (else generated from ``config``)."""
    path = Path(path)
    _check_shared_folder(path)
    path.mkdir(parents=True, exist_ok=True)
    if config is not None:
        write_json(path / CONFIG_FILE, config)
    save_model(model, path)  # the weights, and the model section over config.json's
    if summary:
        write_json(path / SUMMARY_FILE, summary)
    pictures = []
    for file in files:
        if Path(file).resolve() != (path / Path(file).name).resolve():
            shutil.copyfile(file, path / Path(file).name)
        pictures.append(Path(file).name)
    n_params = sum(p.numel() for p in model.parameters())
    card = model_card(read_json(path / CONFIG_FILE), summary, command=command, pictures=pictures,
                      parameters=n_params)
    atomic_write_text(path / CARD_FILE, card)
    return path


#: How every card ``model_card`` writes begins: a README.md without it is not vaekit's.
CARD_FRONT_MATTER = "---\nlibrary_name: vaekit"


def _check_shared_folder(path: Path) -> None:
    """Refuse, before writing anything, a folder inside the installed zoo or one whose
    README.md or config.json vaekit did not write (saving over a vaekit folder is fine)."""
    if is_pretrained(path):
        raise VaekitError(f"{path}: inside vaekit's pretrained models (read-only); save somewhere else")
    card, config = path / CARD_FILE, path / CONFIG_FILE
    if card.is_file() and not card.read_bytes().startswith(CARD_FRONT_MATTER.encode()):
        raise VaekitError(f"{card}: exists and is not a vaekit model card (save into a new or empty folder)")
    if config.is_file():
        try:
            ours = isinstance(read_json(config).get("model"), dict)
        except (VaekitError, ValueError, AttributeError):
            ours = False
        if not ours:
            raise VaekitError(f"{config}: exists and is not a vaekit config (no model section; "
                              "save into a new or empty folder)")


def train_command(config: dict[str, Any]) -> str:
    """A ``vaekit train`` command that makes this run again: its data, family and every setting
    (``--set section.field=value``) that is not what the data or the defaults give."""
    data = (config.get("data") or {}).get("config") or {}
    model = dict(config.get("model") or {})
    parts = ["vaekit train", str(data.get("source", "DATA")), "--model", str(model.pop("model", "vae"))]
    derived = {"input_shape", "num_classes", "class_names", "vocabulary", "tokenizer", "property_names",
               "property_mean", "property_std"}
    for section, values in (("model", model), ("train", config.get("train") or {}), ("data", data)):
        for key, value in values.items():
            if key in derived or key == "source" or value is None:
                continue
            parts.append(f"--set {section}.{key}={json.dumps(value, separators=(',', ':'))}")
    return " ".join(parts)


def model_card(config: dict[str, Any], summary: dict[str, Any] | None = None, *, command: str | None = None,
               pictures: Iterable[str] = (), parameters: int | None = None) -> str:
    """The README.md of a shared model: Hub metadata, what it is, how well it does, how to use
    it and the command that made it."""
    model = config.get("model", {})
    family = model.get("model", "vae")
    data = config.get("data") or {}
    source = (data.get("config") or {}).get("source")
    info = data.get("info") or {}
    lines = ["---", "library_name: vaekit", "tags:", "- vaekit", "- variational-autoencoder", f"- {family}"]
    if source:
        lines += ["datasets:", f"- {source}"]
    lines += ["---", "", f"# vaekit {family}" + (f" on {source}" if source else ""), ""]
    shape = "x".join(map(str, model.get("input_shape", []))) or "?"
    about = [f"- family: `{family}`", f"- input: {shape} ({info.get('kind', 'data')}), "
             f"likelihood {model.get('likelihood', 'its own')}", f"- latent dimensions: {model.get('latent_dim')}"]
    if model.get("arch"):
        about.append(f"- network: {model['arch']}" + (f", hidden {model['hidden']}" if model.get("hidden") else ""))
    if parameters is not None:
        about.append(f"- parameters: {parameters:,}")
    if model.get("class_names"):
        about.append(f"- classes: {', '.join(map(str, model['class_names']))}")
    lines += [*about, ""]
    test = (summary or {}).get("test")
    if test:
        lines += ["## Evaluation", "", "On the held-out test split (nats per example; lower is better):", "",
                  "| -ELBO | reconstruction | KL |", "|---|---|---|",
                  f"| {test['elbo']:.2f} | {test['recon']:.2f} | {test['kl']:.2f} |", ""]
        if summary.get("epochs"):
            lines += [f"Trained for {summary['epochs']} epochs (best epoch {summary.get('best_epoch')}).", ""]
    for picture in pictures:
        lines += [f"![{Path(picture).stem}]({picture})", ""]
    lines += ["## Use", "", "```python", "import vaekit", "", 'model = vaekit.from_pretrained("REPO_OR_FOLDER")',
              "images = model.sample(64)", "```", "", "or `vaekit sample FOLDER -n 64 -o samples.png` on a "
              "downloaded copy. Loading reads safetensors and JSON only.", ""]
    if config.get("train") or command:
        lines += ["## How it was made", "", "```", command or train_command(config), "```", ""]
    if config.get("vaekit_version"):
        lines += [f"vaekit {config['vaekit_version']}.", ""]
    return "\n".join(lines)


# -- the Hub (network boundary: huggingface_hub) ------------------------------------------------

def _hub() -> Any:
    return require("huggingface_hub", "hub", "the Hugging Face Hub")


def push_to_hub(write: Callable[[Path], Any], repo_id: str, *, token: str | None = None, private: bool = False,
                commit_message: str = "Upload vaekit model") -> str:
    """Write a folder with ``write(folder)`` and upload it to the Hub repository ``repo_id``
    (created if needed); returns the commit's URL."""
    hub = _hub()
    api = hub.HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        write(Path(tmp))
        info = api.upload_folder(repo_id=repo_id, folder_path=tmp, commit_message=commit_message)
    return str(getattr(info, "commit_url", info))


def download(repo_id: str, *, revision: str | None = None, token: str | None = None) -> Path:
    """A Hub repository's model folder in the local cache (config, weights, card, pictures)."""
    hub = _hub()
    try:
        return Path(hub.snapshot_download(repo_id, revision=revision, token=token, allow_patterns=HUB_FILES))
    except Exception as e:  # not found, no network, gated: one line
        raise VaekitError(f"{repo_id}: cannot download from the Hugging Face Hub ({type(e).__name__}: {e})") from None


# -- the zoo: pretrained models inside the package ----------------------------------------------

def zoo_registry() -> dict[str, Any]:
    return read_json(ZOO_REGISTRY) if ZOO_REGISTRY.is_file() else {}


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def zoo_path(name: str) -> Path:
    """The folder of pretrained model ``name``, its files checked against the registry's sha256."""
    registry = zoo_registry()
    if name not in registry:
        known = ", ".join(sorted(registry)) or "none installed"
        raise VaekitError(f"pretrained:{name}: no such pretrained model (known: {known})")
    folder = ZOO / name
    for file, digest in registry[name]["sha256"].items():
        if not (folder / file).is_file():
            raise VaekitError(f"pretrained:{name}: {file} is missing from {folder} (reinstall vaekit)")
        if file_sha256(folder / file) != digest:
            raise VaekitError(f"pretrained:{name}: {folder / file} does not match its recorded sha256 (altered or "
                              "corrupted; reinstall vaekit)")
    return folder


def is_pretrained(path: str | Path) -> bool:
    """Whether ``path`` is a model shipped inside the package (read-only: tools never write there)."""
    return Path(path).resolve().is_relative_to(ZOO.resolve())


def resolve_run_path(path: str | Path) -> Path:
    """``pretrained:NAME`` -> the zoo folder of ``NAME``; any other path as it is."""
    text = str(path)
    return zoo_path(text[len(PRETRAINED):]) if text.startswith(PRETRAINED) else Path(path)
