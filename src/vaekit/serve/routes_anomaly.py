"""An anomaly detector's score for one upload or row, against its threshold."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import torch
from fastapi import APIRouter, File, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from vaekit.serve.errors import ApiError
from vaekit.serve.registry import ServedRun
from vaekit.serve.responses import ERROR_RESPONSES, served
from vaekit.serve.routes_codes import read_file
from vaekit.serve.schemas import AnomalyScore, RowRequest

router = APIRouter(tags=["anomaly"])


def _score(run: ServedRun, x: np.ndarray) -> dict[str, Any]:
    detector = run.detector()
    score = float(detector.decision_function(x)[0])
    return {"score": score, "threshold": float(detector.threshold_), "anomaly": bool(score > detector.threshold_),
            "score_name": detector.score_}


@router.post("/api/runs/{name}/anomaly", response_model=AnomalyScore, responses=ERROR_RESPONSES)
async def score_upload(request: Request, name: str,
                       file: Annotated[UploadFile, File(description="An image.")]) -> dict[str, Any]:
    """The anomaly score of an uploaded image under a detector of `vaekit anomaly fit`."""
    run = served(request, name)
    run.detector()
    x = await read_file(request, file, run, "file")
    return await run_in_threadpool(_score, run, x.numpy())


@router.post("/api/runs/{name}/anomaly/row", response_model=AnomalyScore, responses=ERROR_RESPONSES)
async def score_row(request: Request, name: str, body: RowRequest) -> dict[str, Any]:
    """The anomaly score of one example given as numbers, in the data's own units (a detector
    of tables standardizes them itself; images: C*H*W values in [0, 1])."""
    run = served(request, name)
    detector = run.detector()
    size = int(torch.Size(run.shape).numel())
    if len(body.x) != size:
        raise ApiError(400, f"x: expected {size} values (an example of shape {run.shape}), got {len(body.x)}")
    x = np.asarray(body.x, dtype=np.float32).reshape(1, *detector.input_shape_)
    return await run_in_threadpool(_score, run, x)
