"""Which runs there are, what each one is, and the 2-D map of a split's codes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from vaekit.errors import VaekitError
from vaekit.models import MODELS
from vaekit.plotting.pictures import is_image_run
from vaekit.serialization import CONFIG_FILE, METRICS_FILE, read_json, read_metrics
from vaekit.serve.errors import ApiError
from vaekit.serve.registry import ServedRun
from vaekit.serve.responses import ERROR_RESPONSES, finite_json, served
from vaekit.serve.schemas import MapPoints, RunDetail, RunSummary, Split

router = APIRouter(tags=["runs"])
log = logging.getLogger("vaekit.serve")
MAX_MAP_POINTS = 5000


def summarize(name: str, path: Path) -> dict[str, Any]:
    """A run's ``RunSummary`` from its files alone (no weights are loaded to list runs)."""
    config = read_json(path / CONFIG_FILE)
    model = config.get("model") or {}
    family = model.get("model", "vae")
    if family not in MODELS:
        raise VaekitError(f"{path / CONFIG_FILE}: unknown model family '{family}'")
    model_config = MODELS[family][1].from_saved(model)
    summary_file = path / "summary.json"
    metrics: dict[str, Any] = read_json(summary_file) if summary_file.is_file() else {}
    if (path / METRICS_FILE).is_file():
        history = read_metrics(path / METRICS_FILE)
        if history:
            metrics = {**metrics, "last_epoch": history[-1]}
    shape = [int(s) for s in model_config.input_shape]
    conditional = bool(model_config.conditional)
    return finite_json({
        "name": name, "kind": "anomaly" if "anomaly" in config else "model", "family": family,
        "latent_dim": int(model_config.latent_dim), "input_shape": shape, "image": is_image_run(tuple(shape)),
        "conditional": conditional, "class_names": model_config.class_names if conditional else None,
        "num_classes": model_config.num_classes if conditional else None,
        "metrics": metrics, "config": config,
    })


@router.get("/api/runs", response_model=list[RunSummary], responses=ERROR_RESPONSES)
def list_runs(request: Request) -> list[dict[str, Any]]:
    """Every served run with its config and metrics (a run whose files cannot be read is left out and logged)."""
    registry = request.app.state.registry
    out = []
    for name, path in registry.directories().items():
        try:
            out.append(summarize(name, path))
        except VaekitError as exc:
            log.warning("leaving out run %s: %s", name, exc)
    return out


@router.get("/api/runs/{name}", response_model=RunDetail, responses=ERROR_RESPONSES)
def run_detail(request: Request, name: str) -> dict[str, Any]:
    """One run: its summary, KL per dimension (most used first) and, for a detector, its threshold."""
    run = served(request, name)
    detail = summarize(name, run.run.path)
    detail.update(kl_per_dim=finite_json(run.kl_per_dim()), dims_by_kl=run.dims_by_kl(), has_data=run.has_data(),
                  has_diffusion=run.has_diffusion())
    if run.is_anomaly:
        detector = run.detector()
        detail.update(threshold=float(detector.threshold_), score_name=detector.score_)
    return detail


def _map(run: ServedRun, split: str, n: int, method: str) -> dict[str, Any]:
    from vaekit.latent import encode_means, project_2d
    from vaekit.latent.inputs import subset

    x, labels = run.examples(split)
    index = subset(len(x), n)
    cond = labels[index] if labels is not None and run.config.conditional else None
    codes = encode_means(run.model, x[index], cond)
    points, used = project_2d(codes, method=method)
    return {"method": used, "split": split, "indices": index.tolist(), "points": points.tolist(),
            "labels": None if labels is None else labels[index].tolist(), "codes": codes.tolist()}


@router.get("/api/runs/{name}/map", response_model=MapPoints, responses=ERROR_RESPONSES)
async def latent_map(request: Request, name: str, split: Split = "test",
                     n: Annotated[int, Query(ge=5, le=MAX_MAP_POINTS)] = 500,
                     method: Literal["auto", "pca", "tsne"] = "auto") -> dict[str, Any]:
    """A 2-D map of ``n`` examples' codes (the codes themselves for a 2-D latent, else PCA or t-SNE),
    with each point's code so that a client can decode it. Computed once per (split, n, method)."""
    run = served(request, name)
    if not run.has_data():
        raise ApiError(409, f"run '{name}' has no dataset to map")
    return await run_in_threadpool(run.once, ("map", split, n, method), lambda: _map(run, split, n, method))
