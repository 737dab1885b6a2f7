"""Share runs the way the Hugging Face ecosystem does: ``save_pretrained`` (a run's model as a
folder with a model card), ``push_to_hub``, ``from_pretrained`` (a folder, a Hub repository
id or ``pretrained:NAME``) and ``pretrained`` (the models that ship with vaekit).

A run is shared with what it knows: its whole config (data, training), its test figures
(``summary.json``), its pictures and the command that made it, all in the card. A bare
``Model`` has ``Model.save_pretrained`` / ``Model.push_to_hub`` (``vaekit.sharing``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vaekit.errors import VaekitError
from vaekit.models import Model
from vaekit.serialization import CONFIG_FILE
from vaekit.sharing import PRETRAINED, download, zoo_registry
from vaekit.sharing import push_to_hub as _push
from vaekit.sharing import save_pretrained as _save
from vaekit.training.runs import Run, open_run

#: The run's pictures a shared folder carries (the card shows them).
PICTURES = ("samples.png", "reconstructions.png")


def _as_run(run: Run | str | Path) -> Run:
    return run if isinstance(run, Run) else open_run(run)


def save_pretrained(run: Run | str | Path, path: str | Path, *, command: str | None = None) -> Path:
    """Write a run (or run directory) as a shareable folder: config.json, model.safetensors,
    summary.json, its pictures and a README.md model card."""
    run = _as_run(run)
    return _save(run.model, path, config=run.config, summary=run.summary,
                 files=[run.path / p for p in PICTURES if (run.path / p).is_file()],
                 command=command or run.config.get("command"))


def push_to_hub(run: Run | str | Path, repo_id: str, *, token: str | None = None, private: bool = False,
                commit_message: str = "Upload vaekit model") -> str:
    """Upload a run's ``save_pretrained`` folder to the Hugging Face Hub; returns the commit URL."""
    run = _as_run(run)
    return _push(lambda folder: save_pretrained(run, folder), repo_id, token=token, private=private,
                 commit_message=commit_message)


def open_pretrained(source: str | Path, *, revision: str | None = None, token: str | None = None) -> Run:
    """The run behind ``source``: a local folder (a run or a ``save_pretrained`` folder),
    ``pretrained:NAME``, or a Hub repository id (``org/name``, downloaded once to the cache)."""
    text = str(source)
    if text.startswith(PRETRAINED) or Path(text).is_dir():
        return open_run(source)
    if Path(text).exists() or text.count("/") != 1:
        raise VaekitError(f"{source}: not a model folder, pretrained:NAME or a Hub repository id (org/name)")
    folder = download(text, revision=revision, token=token)
    if not (folder / CONFIG_FILE).is_file():
        raise VaekitError(f"{source}: the Hub repository holds no vaekit model ({CONFIG_FILE} is missing)")
    return open_run(folder)


def from_pretrained(source: str | Path, *, revision: str | None = None, token: str | None = None) -> Model:
    """The model of a folder, ``pretrained:NAME`` or a Hub repository id, in eval mode."""
    return open_pretrained(source, revision=revision, token=token).model


def pretrained(name: str) -> Model:
    """A model that ships with vaekit (``list_pretrained()``), checked against its sha256."""
    return open_run(PRETRAINED + name).model


def list_pretrained() -> dict[str, Any]:
    """The pretrained models: name -> description, size and test figures."""
    return {name: {k: v for k, v in entry.items() if k != "sha256"} for name, entry in zoo_registry().items()}
