"""What the endpoints share: looking up the run of a request, and image answers in two formats."""

from __future__ import annotations

import math
from typing import Any

import torch
from fastapi import Request, Response
from fastapi.responses import JSONResponse

from vaekit.serve.images import as_base64, png_bytes
from vaekit.serve.registry import ServedRun
from vaekit.serve.schemas import ErrorBody, ImageData

#: OpenAPI entry of an endpoint that answers image/png, or JSON with a base64 PNG (``format``).
PNG_CONTENT = {"image/png": {"schema": {"type": "string", "format": "binary"}}}
IMAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": ImageData, "content": PNG_CONTENT,
          "description": "PNG bytes (format png) or ImageData JSON (format base64)."},
}
#: OpenAPI entries of the error answers every run endpoint can give.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": what} for code, what in (
        (400, "Input the run cannot take (wrong latent length, label, index...)."),
        (401, "Missing or wrong bearer token (when the server has one)."),
        (404, "Unknown run."),
        (409, "The run lacks what this needs (e.g. a readable dataset)."),
        (413, "Upload too large in bytes or pixels."),
        (415, "Upload is not an image."),
        (422, "Request does not match the schema (types, ranges, NaN)."),
    )
}


def served(request: Request, name: str) -> ServedRun:
    """The run ``name`` of the app's registry (404 for any name not in its list)."""
    return request.app.state.registry.get(name)


def image_response(images: torch.Tensor, fmt: str, *, nrow: int | None = None) -> Response:
    """``images`` ``(N, C, H, W)`` as one PNG: bytes for ``png``, ``ImageData`` JSON for ``base64``."""
    png = png_bytes(images.detach().float().cpu(), nrow=nrow)
    if fmt == "base64":
        return JSONResponse(ImageData(**as_base64(png)).model_dump())
    return Response(png, media_type="image/png")


def finite_json(value: Any) -> Any:
    """``value`` with every non-finite float as ``None``: a run's metrics may hold a NaN loss,
    which strict JSON cannot carry."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value
