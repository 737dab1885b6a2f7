"""Which runs the server serves, each loaded once and kept.

The served runs are the sub-directories of ``RUNS_DIR`` that hold a ``config.json`` (or
``RUNS_DIR`` itself when it is one run), and with ``pretrained=True`` the models shipped in
the package as ``pretrained:NAME`` (read-only: a sampler fitted for one is kept in memory,
nothing is written into the zoo). A name in a request is only ever looked up in that list,
so no path from a request reaches the file system. A run's model, its anomaly
detector, dataset, GMM sampler and latent map are loaded on first use and kept; its
micro-batchers live here too, one per operation.
"""

from __future__ import annotations

import threading
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import torch

from vaekit.errors import VaekitError
from vaekit.latent import gmm_sampler, kl_order
from vaekit.latent.diffusion import DIFFUSION_FILE, diffusion_sampler
from vaekit.latent.inputs import split_examples
from vaekit.plotting.pictures import is_image_run
from vaekit.serialization import CONFIG_FILE
from vaekit.serve.batching import MicroBatcher
from vaekit.serve.errors import ApiError
from vaekit.sharing import PRETRAINED, ZOO, zoo_registry
from vaekit.training.runs import Run, open_run

#: Examples of a split used for the KL order when summary.json has none, and for the map by default.
KL_EXAMPLES = 500


class ServedRun:
    """One run with everything the endpoints need, each part made once on first use."""

    def __init__(self, name: str, run: Run, executor: Executor, *, window_s: float | None, max_batch: int) -> None:
        self.name = name
        self.run = run
        self.model = run.model
        self.config = run.model.config
        self.shape = tuple(int(s) for s in self.config.input_shape)
        self.is_image = is_image_run(self.shape)
        self.is_anomaly = "anomaly" in run.config
        self._lock = threading.RLock()  # a part may need another (the KL order needs the data)
        self._cache: dict[Any, Any] = {}
        self.encoder = MicroBatcher(self._encode_batch, executor, window_s=window_s, max_batch=max_batch)
        self.decoder = MicroBatcher(self._decode_batch, executor, window_s=window_s, max_batch=max_batch)

    # -- the batched forward passes -------------------------------------------------------
    def _encode_batch(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        posterior = self.model.encode(x, cond)
        return torch.cat([posterior.mean.flatten(1), posterior.logvar.flatten(1)], dim=1)

    def _decode_batch(self, z: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        return self.model.decode(z, self.model.sample_cond(len(z), cond)).mean

    # -- checks shared by the endpoints ---------------------------------------------------
    def cond(self, label: int | None, *, required: bool = False) -> torch.Tensor | None:
        """The label tensor ``(1,)`` for a conditional run (checked), ``None`` for another."""
        if not self.config.conditional:
            if label is not None:
                raise ApiError(400, f"label: run '{self.name}' is not conditional; leave label out")
            return None
        if label is None:
            if required:
                raise ApiError(400, f"label: run '{self.name}' is conditional; give the class index (0.."
                                    f"{self.config.num_classes - 1})")
            label = 0
        if not 0 <= label < self.config.num_classes:
            raise ApiError(400, f"label: expected a class index in 0..{self.config.num_classes - 1}, got {label}")
        return torch.tensor([label])

    def latent(self, values: list[float], what: str = "z") -> torch.Tensor:
        if len(values) != self.config.latent_dim:
            raise ApiError(400, f"{what}: expected {self.config.latent_dim} values (the run's latent_dim), "
                                f"got {len(values)}")
        return torch.tensor(values, dtype=torch.float32)[None]

    def require_image(self, what: str) -> None:
        if not self.is_image:
            raise ApiError(400, f"{what}: run '{self.name}' models rows of shape {self.shape}, not images")

    # -- parts loaded once ------------------------------------------------------------------
    def once(self, key: Any, make: Any) -> Any:
        with self._lock:
            if key not in self._cache:
                self._cache[key] = make()
            return self._cache[key]

    def detector(self) -> Any:
        if not self.is_anomaly:
            raise ApiError(400, f"run '{self.name}' is not an anomaly detector (fit one with `vaekit anomaly fit`)")
        from vaekit.anomaly.storage import load_detector

        return self.once("detector", lambda: load_detector(self.run.path))

    def data(self) -> Any:
        """The run's dataset; a run without a readable one gets a 409 naming why."""
        def load() -> Any:
            try:
                return self.run.load_data()
            except VaekitError as exc:
                return exc
        bundle = self.once("data", load)
        if isinstance(bundle, VaekitError):
            raise ApiError(409, f"run '{self.name}': its dataset cannot be read here ({bundle})")
        return bundle

    def has_data(self) -> bool:
        return "data" in self.run.config

    def has_diffusion(self) -> bool:
        """Whether ``vaekit sample RUN --sampler diffusion`` has fitted and saved the run's sampler."""

        return (self.run.path / DIFFUSION_FILE).is_file()

    def examples(self, split: str) -> tuple[torch.Tensor, torch.Tensor | None]:

        bundle = self.data()
        if bundle.split(split) is None or not len(bundle.split(split)):
            raise ApiError(400, f"split: run '{self.name}' has no {split} examples")
        return self.once(("split", split), lambda: split_examples(bundle, split))

    def example(self, split: str, index: int, what: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        x, labels = self.examples(split)
        if not 0 <= index < len(x):
            raise ApiError(400, f"{what}: index {index} is out of range for the {split} split (0..{len(x) - 1})")
        cond = labels[index:index + 1] if labels is not None and self.config.conditional else None
        return x[index:index + 1], cond

    def kl_per_dim(self) -> list[float] | None:
        """Mean KL per dimension: the test figure of summary.json, else measured on a few examples."""
        def measure() -> list[float] | None:
            kl = (self.run.summary.get("test") or {}).get("kl_per_dim")
            if kl is not None and len(kl) == self.config.latent_dim:
                return [float(v) for v in kl]
            if not self.has_data():
                return None

            try:
                split = "test" if self.data().test is not None and len(self.data().test) else "train"
                x, labels = self.examples(split)
            except ApiError:
                return None
            cond = labels[:KL_EXAMPLES] if self.config.conditional and labels is not None else None
            return [float(v) for v in kl_order(self.model, x[:KL_EXAMPLES], cond)[1]]
        return self.once("kl", measure)

    def dims_by_kl(self) -> list[int]:
        kl = self.kl_per_dim()
        if kl is None:
            return list(range(self.config.latent_dim))
        return torch.argsort(torch.tensor(kl), descending=True, stable=True).tolist()

    def gmm(self) -> Any:
        if self.model.learned_prior:
            raise ApiError(400, f"sampler: run '{self.name}' has a learned prior; use sampler 'prior'")
        if not self.has_data():
            raise ApiError(409, f"sampler: run '{self.name}' has no dataset to fit a GMM sampler on; use 'prior'")

        return self.once("gmm", lambda: gmm_sampler(self.run))

    def diffusion(self) -> Any:
        """The run's saved latent diffusion sampler. Fitting one takes minutes, too long for a
        request, so the server uses it only once ``vaekit sample RUN --sampler diffusion`` made it."""

        if not self.has_diffusion() and self.run.read_only:
            raise ApiError(409, f"sampler: run '{self.name}' is a pretrained model without a diffusion sampler; "
                                "use 'prior' or 'gmm'")
        if not self.has_diffusion():
            raise ApiError(409, f"sampler: run '{self.name}' has no diffusion sampler yet; fit it once with "
                                f"vaekit sample {self.name} --sampler diffusion")
        return self.once("diffusion", lambda: diffusion_sampler(self.run))


class RunRegistry:
    """The runs under ``runs_dir`` and, with ``pretrained``, the zoo's models (named
    ``pretrained:NAME``), opened lazily and kept (one ``ServedRun`` per name)."""

    def __init__(self, runs_dir: str | Path | None, executor: Executor, *, pretrained: bool = False,
                 window_s: float | None = 0.001, max_batch: int = 256) -> None:
        if runs_dir is None and not pretrained:
            raise VaekitError("nothing to serve: give a directory of runs, or --pretrained for the models "
                              "shipped with vaekit")
        self.root = None if runs_dir is None else Path(runs_dir).resolve()
        if self.root is not None and not self.root.is_dir():
            raise VaekitError(f"{runs_dir}: no such directory of runs")
        self.pretrained = pretrained
        self.executor = executor
        self.window_s = window_s
        self.max_batch = max_batch
        self._runs: dict[str, ServedRun] = {}
        self._lock = threading.Lock()

    def directories(self) -> dict[str, Path]:
        """Each served name and its folder: the zoo's models first (their names have a colon, which
        a run directory's name is taken not to), then the runs of ``runs_dir``."""
        found: dict[str, Path] = {}
        if self.pretrained:
            found.update({PRETRAINED + name: ZOO / name for name in sorted(zoo_registry())
                          if (ZOO / name / CONFIG_FILE).is_file()})
        if self.root is None:
            return found
        if (self.root / CONFIG_FILE).is_file():  # RUNS_DIR is itself one run
            found.setdefault(self.root.name, self.root)
            return found
        for d in sorted(self.root.iterdir()):
            if d.is_dir() and not d.name.startswith(".") and d.name not in found and (d / CONFIG_FILE).is_file():
                found[d.name] = d
        return found

    def names(self) -> list[str]:
        return list(self.directories())

    def get(self, name: str) -> ServedRun:
        """The served run called ``name``; 404 unless it is one of ``names()``. A run already
        opened is served from the cache; the folders are rescanned only for a name not yet opened."""
        with self._lock:
            if name in self._runs:
                return self._runs[name]
        directories = self.directories()
        if name not in directories:
            raise ApiError(404, f"unknown run '{name}' (known: {', '.join(directories) or 'none'})")
        with self._lock:
            if name not in self._runs:
                # a zoo model by its name, so that its files are checked against the registry's sha256
                run = open_run(name if self.pretrained and name.startswith(PRETRAINED) else directories[name])
                self._runs[name] = ServedRun(name, run, self.executor, window_s=self.window_s,
                                             max_batch=self.max_batch)
            return self._runs[name]
