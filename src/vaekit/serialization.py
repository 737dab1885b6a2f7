"""Saving and loading models and run files: safetensors + JSON, never pickle.

``model.safetensors`` carries a sha256 of its tensor bytes in its metadata, so a file
that was truncated or altered after writing is refused with a clear message instead of
loading garbage. ``checkpoint.pt`` holds only tensors and plain Python values, so it
loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from vaekit.atomic import atomic_path, atomic_write_text
from vaekit.errors import VaekitError
from vaekit.version import __version__

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CHECKPOINT_FILE = "checkpoint.pt"
METRICS_FILE = "metrics.jsonl"


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Write the model's parameters and buffers to ``path`` atomically."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {"format": "pt", "sha256": _digest(tensors)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def load_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load weights saved by ``save_weights`` into ``model``, checking integrity and fit."""
    path = Path(path)
    if not path.is_file():
        raise VaekitError(f"{path}: no such weights file")
    try:
        tensors = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise VaekitError(f"{path}: cannot read weights (truncated or not a safetensors file): {e}") from None
    expected = metadata.get("sha256")
    if expected is not None and _digest(tensors) != expected:
        raise VaekitError(f"{path}: weights do not match their recorded checksum (file altered or corrupted)")
    own = model.state_dict()
    missing, extra = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
    if missing or extra:
        raise VaekitError(f"{path}: weights do not fit the model in config.json (missing {missing}, extra {extra})")
    for name, t in tensors.items():
        if t.shape != own[name].shape:
            raise VaekitError(f"{path}: tensor '{name}' has shape {tuple(t.shape)}, "
                              f"the model expects {tuple(own[name].shape)}")
    model.load_state_dict(tensors)


def read_json(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise VaekitError(f"{path}: no such file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise VaekitError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise VaekitError(f"{path}: expected a JSON object")
    return data


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write a training checkpoint (tensors and plain values only) atomically."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise VaekitError(f"{path}: no checkpoint to resume from")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for bad files
        raise VaekitError(f"{path}: cannot read checkpoint (truncated or not a vaekit checkpoint): {e}") from None


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                raise VaekitError(f"{path}: line {i} is not valid JSON") from None
    return rows


def write_metrics(path: str | Path, rows: list[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def save_model(model: torch.nn.Module, path: str | Path) -> None:
    """Write ``model`` to a directory: ``model.safetensors`` and the model section of
    ``config.json`` (the other sections of an existing config.json are kept)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    config_path = path / CONFIG_FILE
    config = read_json(config_path) if config_path.is_file() else {"vaekit_version": __version__}
    config["model"] = model.config.to_dict()
    save_weights(model, path / WEIGHTS_FILE)
    write_json(config_path, config)
