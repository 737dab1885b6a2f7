"""What the latent commands read: examples by index or image file, classes, flag values, and
the training codes the fitted samplers learn from.

Kept apart from the tools so that ``vaekit.latent``'s functions take tensors only and
the CLI stays a few lines per command; every mistake here is a one-line ``VaekitError``
that names the flag.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch

from vaekit.data import load_for_model
from vaekit.data.bundle import Dataset
from vaekit.data.images import IMAGE_EXTENSIONS
from vaekit.data.labels import class_index
from vaekit.errors import VaekitError
from vaekit.latent.encoding import encode_means
from vaekit.plotting.pictures import is_image_run
from vaekit.training.runs import Run

#: Fixed seed of the one binary draw used when a dynamically binarized training split is encoded.
TRAIN_VIEW_SEED = 0


def require_images(run: Run, command: str) -> None:
    """Commands that draw images refuse table runs up front, saying why."""
    info = run.data_info
    if not is_image_run(info.shape):
        raise VaekitError(f"vaekit {command} needs an image run; {run.path} models {info.kind} data of shape "
                          f"{tuple(info.shape)}")


def split_examples(bundle: Dataset, split: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A split's examples and labels (``None`` if unlabelled), training data as the model saw it
    (one fixed binary draw for dynamically binarized sets)."""
    x = bundle.split(split)
    if split == "train":
        x = bundle.train_epoch_view(torch.Generator().manual_seed(TRAIN_VIEW_SEED))
    return x, getattr(bundle, f"{split}_labels")


def require_labels(labels: torch.Tensor | None, bundle: Dataset, split: str, flag: str) -> torch.Tensor:
    if labels is None:
        raise VaekitError(f"{flag} needs class labels, but the {split} split of '{bundle.info.name}' has none "
                          "(an image folder needs one sub-folder per class)")
    return labels


def model_labels(run: Run, labels: torch.Tensor | None, bundle: Dataset, split: str) -> torch.Tensor | None:
    """What the latent tools pass as ``cond``: the split's labels for a conditional model,
    ``None`` for an unconditional one (whose tools need no labels)."""
    if not run.model.config.conditional:
        return None
    if labels is None:
        raise VaekitError(f"model '{run.model.config.model}' of {run.path} is conditional and needs class labels, "
                          f"but the {split} split of '{bundle.info.name}' has none")
    return labels


def require_unconditional_files(run: Run, flag: str) -> None:
    """Image files carry no label, which a conditional model needs to encode them."""
    if run.model.config.conditional:
        raise VaekitError(f"{flag}: image files have no class label, which this conditional run "
                          f"('{run.model.config.model}') needs; give examples by index instead")


def parse_index(value: str, n: int, split: str, flag: str) -> int:
    try:
        i = int(value)
    except ValueError:
        raise VaekitError(f"{flag}: expected an index into the {split} split or an image file, got '{value}'") from None
    if not 0 <= i < n:
        raise VaekitError(f"{flag}: index {i} is out of range for the {split} split (0..{n - 1})")
    return i


def is_index(value: str) -> bool:
    return value.strip().lstrip("-").isdigit()


def load_image_file(run: Run, value: str, flag: str) -> torch.Tensor:
    """One image file as ``(1, *shape)``, resized and converted like the run's data."""

    path = Path(value).expanduser()
    if not path.is_file():
        raise VaekitError(f"{flag}: '{value}' is neither an index nor an image file")
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise VaekitError(f"{flag}: '{value}' is not an image file (expected {', '.join(IMAGE_EXTENSIONS)})")
    with tempfile.TemporaryDirectory() as folder:  # the folder reader does resizing and channels for us
        copy = Path(folder) / path.name
        shutil.copy(path, copy)
        try:
            return load_for_model(folder, run.data_info).train[:1]
        except VaekitError as e:  # name the user's file, not the copy
            message = str(e).replace(str(copy), str(value)).replace(folder, str(path.parent))
            raise VaekitError(message if str(value) in message else f"{flag} {value}: {message}") from None


def load_image_folder(run: Run, value: str, flag: str) -> torch.Tensor:
    """All images of a folder ``(N, *shape)``, resized and converted like the run's data."""

    if not Path(value).expanduser().is_dir():
        raise VaekitError(f"{flag}: '{value}' is not a folder of images")
    return load_for_model(Path(value).expanduser(), run.data_info).train


def load_images(run: Run, values: Sequence[str | Path], flag: str) -> tuple[torch.Tensor, list[str]]:
    """Image files and folders (every image in a folder, in sorted order) as ``(N, *shape)``,
    resized and converted like the run's data, with one name per image (the file as given,
    or ``folder/name``). A missing path or a non-image is a one-line error naming it; a
    conditional run refuses files (they carry no label)."""
    if not values:
        raise VaekitError(f"{flag}: expected at least one image file or folder")
    require_unconditional_files(run, flag)
    batches, names = [], []
    for value in map(str, values):
        path = Path(value).expanduser()
        if path.is_dir():
            try:
                bundle = load_for_model(path, run.data_info)
            except VaekitError as e:
                raise VaekitError(f"{flag} {value}: {e}") from None
            batches.append(bundle.train)
            files = bundle.extras.get("train_files") or [str(i) for i in range(len(bundle.train))]
            names += [f"{value.rstrip('/')}/{f}" for f in files]
        elif path.is_file():
            batches.append(load_image_file(run, value, flag))
            names.append(value)
        else:
            raise VaekitError(f"{flag}: '{value}' does not exist (expected an image file or a folder of images)")
    return torch.cat(batches), names


def parse_class(value: str, bundle: Dataset, labels: torch.Tensor, flag: str) -> int:
    """A class by index or by name (``--class 3``, ``--class Sneaker``); it must occur in ``labels``."""
    k = class_index(value, bundle.info.class_names, flag)
    present = sorted(set(labels.tolist()))
    if k not in present:
        raise VaekitError(f"{flag}: class {k} does not occur in these labels (present: {present})")
    return k


def class_name(bundle: Dataset, k: int) -> str:
    names = bundle.info.class_names
    return names[k] if names and 0 <= k < len(names) else str(k)


def parse_floats(value: str, flag: str) -> list[float]:
    try:
        items = [float(v) for v in value.replace(" ", "").split(",") if v]
    except ValueError:
        raise VaekitError(f"{flag}: expected comma-separated numbers like -2,-1,0,1,2, got '{value}'") from None
    if not items:
        raise VaekitError(f"{flag}: expected at least one number, got '{value}'")
    return items


def parse_indices(value: str, count: int, n: int, split: str, flag: str) -> list[int]:
    items = [v for v in value.replace(" ", "").split(",") if v]
    if len(items) != count:
        raise VaekitError(f"{flag}: expected {count} comma-separated indices like 3,17,42, got '{value}'")
    return [parse_index(v, n, split, flag) for v in items]


#: The most training codes a fitted sampler reads: a density over a few dozen latent dimensions
#: stops improving long before a large training set is used up, while encoding costs every row.
MAX_CODES = 100_000


def sample_rows(n: int, max_samples: int | None, seed: int = 0) -> torch.Tensor | None:
    """The rows of ``n`` a fit on at most ``max_samples`` of them reads: a seeded subset, or
    None (all) when there are no more than that (or ``max_samples`` is None)."""
    if max_samples is not None and (not isinstance(max_samples, int) or isinstance(max_samples, bool)
                                    or max_samples < 1):
        raise VaekitError(f"max_samples: expected a positive integer or None, got {max_samples!r}")
    if max_samples is None or n <= max_samples:
        return None
    return subset(n, max_samples, seed)


def training_codes(run: Run, data: Dataset | torch.Tensor | None = None, *, max_samples: int | None = MAX_CODES,
                   seed: int = 0) -> torch.Tensor:
    """Posterior means of the run's training examples, or of ``sample_rows`` of them (only those
    are encoded): what the latent samplers are fitted to. ``data``: the run's ``Dataset`` if
    already loaded, or a training tensor. A conditional model's codes are encoded with their
    labels; dynamically binarized data as one fixed binary draw, as the model saw it."""
    if data is None:
        data = run.load_data()
    x, labels = (data, None) if isinstance(data, torch.Tensor) else split_examples(data, "train")
    rows = sample_rows(len(x), max_samples, seed)
    if rows is not None:
        x, labels = x[rows], None if labels is None else labels[rows]
    return encode_means(run.model, x, labels)


def subset(n_total: int, n: int, seed: int = 0) -> torch.Tensor:
    """Up to ``n`` positions out of ``n_total``, drawn without replacement (seeded), in order."""
    if n >= n_total:
        return torch.arange(n_total)
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))[:n].sort().values
