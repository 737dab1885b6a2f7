"""Run directories: the unit users share, and the Python API over them.

A run directory holds config.json, model.safetensors, checkpoint.pt, metrics.jsonl and
the pictures; ``open_run`` and ``load`` rebuild what a run holds from that directory alone.
``vaekit.pipeline.train`` makes one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from vaekit import data as vdata
from vaekit.atomic import staging_directory, unused_names
from vaekit.data.bundle import DataInfo, Dataset
from vaekit.data.config import DataConfig
from vaekit.data.standardize import Standardizer
from vaekit.errors import VaekitError
from vaekit.models import MODELS, Model, ModelConfig, build
from vaekit.serialization import (
    CONFIG_FILE,
    METRICS_FILE,
    WEIGHTS_FILE,
    load_weights,
    read_json,
    read_metrics,
    save_model,
)
from vaekit.sharing import is_pretrained, resolve_run_path
from vaekit.training.trainer import TrainConfig

SUMMARY_FILE = "summary.json"

#: ``vaekit.save(model, dir)``: what ``Model.save`` does.
save = save_model


@dataclass
class Run:
    """A trained run opened from its directory."""

    path: Path
    config: dict[str, Any]
    model: Model

    def _section(self, name: str) -> dict[str, Any]:
        if name not in self.config:
            raise VaekitError(f"{self.path / CONFIG_FILE}: no '{name}' section (a model saved without training "
                              "data; this needs a run made by `vaekit train`)")
        return self.config[name]

    @property
    def read_only(self) -> bool:
        """A pretrained model shipped inside the package: tools read it and never write into
        it (a fitted sampler is kept in memory, an output needs ``--out``)."""
        return is_pretrained(self.path)

    def output_path(self, name: str) -> Path:
        """Where a tool writes ``name`` when the user gave no ``--out``: inside the run, unless
        the run is read-only."""
        refuse_read_only(self.path, name)
        return self.path / name

    def new_output_paths(self, *names: str) -> list[Path]:
        """``new_output_paths`` of this run's directory."""
        return new_output_paths(self.path, *names)

    @property
    def data_info(self) -> DataInfo:
        return DataInfo.from_dict(self._section("data")["info"])

    @property
    def data_config(self) -> DataConfig:
        return DataConfig.from_dict(self._section("data")["config"])

    @property
    def train_config(self) -> TrainConfig:
        return TrainConfig.from_dict(self._section("train"))

    @property
    def standardizer(self) -> Standardizer | None:
        s = self._section("data").get("standardizer")
        return Standardizer.from_dict(s) if s else None

    @property
    def metrics(self) -> list[dict[str, Any]]:
        return read_metrics(self.path / METRICS_FILE)

    @property
    def summary(self) -> dict[str, Any]:
        p = self.path / SUMMARY_FILE
        return read_json(p) if p.is_file() else {}

    def load_data(self, **overrides: Any) -> Dataset:
        """The run's dataset, split exactly as in training (overrides e.g. ``limit``)."""
        return vdata.load(self.data_config.replace(**overrides))


def refuse_read_only(path: Path, name: str) -> None:
    """A pretrained model (read-only) gets no default output: the user names one with --out."""
    if is_pretrained(path):
        raise VaekitError(f"{path.name}: a pretrained model is read-only; give --out/-o for {name}")


def new_output_paths(path: Path, *names: str) -> list[Path]:
    """Where a tool writes ``names`` (its file and any written beside it) into the run directory
    ``path`` when the user gave no ``--out``: under names no file there has (``samples.png``,
    else ``samples-2.png``, ...; ``atomic.unused_names``), so a command never replaces a file
    the user did not name, such as the pictures training wrote; a read-only run is refused."""
    refuse_read_only(path, names[0])
    return unused_names(path, names)


def open_run(path: str | Path) -> Run:
    """Open a run directory (or ``pretrained:NAME``, a model shipped with vaekit): its config
    and its model with the saved weights."""
    path = resolve_run_path(path)
    if not path.is_dir():
        raise VaekitError(f"{path}: no such run directory")
    config = read_json(path / CONFIG_FILE)
    if "model" not in config:
        raise VaekitError(f"{path / CONFIG_FILE}: missing the 'model' section")
    try:
        model = build(config["model"])
    except VaekitError as e:
        raise VaekitError(f"{path / CONFIG_FILE}: {e}") from None
    load_weights(model, path / WEIGHTS_FILE)
    model.eval()
    return Run(path=path, config=config, model=model)


def load(path: str | Path) -> Model:
    """The trained model of a run directory, in eval mode."""
    return open_run(path).model


def model_config_for(info: DataInfo, options: dict[str, Any], data: Dataset | None = None) -> ModelConfig:
    """A model config whose input shape and likelihood come from the data unless set.

    A conditional family (``config.conditional``) also takes its classes from the data:
    ``num_classes`` and ``class_names`` from ``info.class_names``, or for integer labels
    without names from the largest label in ``data``; data without labels is refused.
    """
    options = dict(options)
    name = options.pop("model", "vae")
    if name not in MODELS:
        raise VaekitError(f"model: unknown model '{name}' (known: {', '.join(MODELS)})")
    config_cls = MODELS[name][1]
    if info.kind == "sequence" and not config_cls.sequences:
        sequence_models = ", ".join(n for n, (_, c) in MODELS.items() if c.sequences)
        raise VaekitError(f"model '{name}' does not take sequence data ('{info.name}'); use --model {sequence_models}")
    if config_cls.sequences and info.kind != "sequence":
        raise VaekitError(f"model '{name}' takes sequences (molecules: moses, zinc250k, a .smi file or SMILES with "
                          f"--tokens), not the {info.kind} data of '{info.name}'")
    options.setdefault("input_shape", tuple(info.shape))
    for key, value in config_cls.data_options(info).items():
        options.setdefault(key, value)
    if config_cls.conditional:
        if data is not None and data.train_labels is None:
            raise VaekitError(f"model '{name}' is conditional and needs class labels, but dataset '{info.name}' has "
                              "none (use mnist, fashion-mnist, digits, an image folder with one sub-folder per "
                              "class, or a table with --label-column)")
        if "num_classes" not in options:
            options["num_classes"], class_names = data_classes(info, data, name)
            options.setdefault("class_names", class_names)
    if "likelihood" not in {f.name for f in fields(config_cls)}:  # a family with one likelihood of its own
        return config_cls.from_dict(options)
    if options.get("likelihood") in (None, "auto"):
        options["likelihood"] = info.likelihood
        if info.obs_std is not None and info.likelihood == "gaussian":  # the std the data's spread fixes
            options.setdefault("obs_std", info.obs_std)
    lo, hi = info.value_range
    if options["likelihood"] == "bernoulli" and (lo < 0 or hi > 1):
        raise VaekitError(f"likelihood bernoulli needs data in [0, 1]; '{info.name}' spans [{lo:g}, {hi:g}] "
                          "(use --likelihood gaussian)")
    return config_cls.from_dict(options)


def data_classes(info: DataInfo, data: Dataset | None, model: str) -> tuple[int, list[str] | None]:
    """``(num_classes, class_names)`` of a labelled dataset: its class names, or for integer
    labels without names ``max label + 1`` over all splits."""
    labels = [] if data is None else [t for t in (data.train_labels, data.val_labels, data.test_labels)
                                      if t is not None and t.numel()]
    if info.class_names:
        return len(info.class_names), list(info.class_names)
    if not labels:
        raise VaekitError(f"model '{model}' is conditional: dataset '{info.name}' has no class names or labels "
                          "to count its classes (set num_classes)")
    low = min(int(t.min()) for t in labels)
    if low < 0:
        raise VaekitError(f"dataset '{info.name}': labels must be non-negative class indices for model '{model}', "
                          f"found {low}")
    return max(int(t.max()) for t in labels) + 1, None


def check_output_directory(out: Path, *, overwrite: bool, what: str = "directory",
                           hint: str = "use --overwrite to replace it", replaces: bool = True) -> None:
    """Refuse ``out`` when it is a file, or a non-empty directory without ``overwrite``.

    With ``overwrite`` a non-empty ``out`` must be a directory vaekit wrote (a run, a
    detector, a saved model: ``is_vaekit_directory``) and never the working directory, a
    folder above it or the home folder (``replaces=False``: the caller adds files to it
    instead of replacing it). Called before any work, so bad input never costs a user an
    existing directory; the caller builds the new contents beside it and swaps them in
    (``atomic.swap_in``) only once complete.
    """
    if out.exists() and not out.is_dir():
        raise VaekitError(f"{out}: exists and is not a directory")
    if not (out.is_dir() and any(out.iterdir())):
        return
    if not overwrite:
        raise VaekitError(f"{out}: {what} already exists ({hint})")
    if not replaces:
        return
    resolved, cwd = out.resolve(), Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents or resolved == Path.home().resolve():
        raise VaekitError(f"{out}: --overwrite never replaces the working directory, a folder above it or the "
                          "home folder; choose a new --out")
    if not is_vaekit_directory(out):
        raise VaekitError(f"{out}: not a vaekit run or detector (no {CONFIG_FILE} written by vaekit), so "
                          "--overwrite will not replace it; choose another --out or remove it yourself")


def is_vaekit_directory(path: Path) -> bool:
    """True for a directory vaekit wrote: its config.json names a vaekit version and a model."""
    try:
        config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "vaekit_version" in config and "model" in config


def prepare_directory(out: Path, *, overwrite: bool, what: str = "run directory",
                      hint: str = "use --overwrite to replace it or --resume to continue it") -> Path:
    """Check ``out`` and return where the run is built: ``out`` itself when it is new or
    empty, else (``overwrite``) a staging directory beside it that ``atomic.building`` puts
    in its place once the new contents are complete (and discards when they are not)."""
    check_output_directory(out, overwrite=overwrite, what=what, hint=hint)
    if out.is_dir() and any(out.iterdir()):
        return staging_directory(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def default_run_name(source: str, arch: str) -> Path:
    """``runs/<data>-<arch>``, numbered when taken, so a plain ``vaekit train`` never clobbers."""
    stem = Path(source).stem if ("/" in source or "." in source) else source
    base = Path("runs") / f"{stem}-{arch}"
    candidate, i = base, 2
    while candidate.exists():
        candidate, i = base.with_name(f"{base.name}-{i}"), i + 1
    return candidate
