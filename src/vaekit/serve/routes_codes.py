"""Encode an example to its posterior, decode a latent vector to an example: the micro-batched pair."""

from __future__ import annotations

from typing import Annotated, Any

import torch
from fastapi import APIRouter, File, Form, Request, Response, UploadFile

from vaekit.serve.errors import ApiError
from vaekit.serve.images import png_bytes, read_upload
from vaekit.serve.registry import ServedRun
from vaekit.serve.responses import ERROR_RESPONSES, PNG_CONTENT, image_response, served
from vaekit.serve.schemas import DecodeRequest, ImageData, Label, Posterior, RowRequest, Values

router = APIRouter(tags=["latent codes"])


async def read_file(request: Request, upload: UploadFile, run: ServedRun, what: str) -> torch.Tensor:
    """An uploaded image as ``(1, *shape)`` of the run, within the app's upload limits."""

    run.require_image(what)
    limits = request.app.state.limits
    data = await upload.read(limits["max_bytes"] + 1)
    return read_upload(data, run.shape, what=what, **limits)


async def posterior(run: ServedRun, x: torch.Tensor, cond: torch.Tensor | None) -> dict[str, Any]:
    out = (await run.encoder.submit(x, cond))[0]
    d = run.config.latent_dim
    return {"mean": out[:d].tolist(), "logvar": out[d:].tolist()}


@router.post("/api/runs/{name}/encode", response_model=Posterior, responses=ERROR_RESPONSES)
async def encode_upload(request: Request, name: str, file: Annotated[UploadFile, File(description="An image.")],
                        label: Annotated[Label | None, Form()] = None) -> dict[str, Any]:
    """The posterior q(z|x) of an uploaded image: latent mean and log-variance.
    A conditional run needs the image's ``label``."""
    run = served(request, name)
    cond = run.cond(label, required=True)
    return await posterior(run, await read_file(request, file, run, "file"), cond)


@router.post("/api/runs/{name}/encode/row", response_model=Posterior, responses=ERROR_RESPONSES)
async def encode_row(request: Request, name: str, body: RowRequest) -> dict[str, Any]:
    """The posterior of one example given as numbers (a table row, or an image's C*H*W values in
    the model's own scale: [0, 1] for images, standardized for tables)."""
    run = served(request, name)
    size = int(torch.Size(run.shape).numel())
    if len(body.x) != size:
        raise ApiError(400, f"x: expected {size} values (an example of shape {run.shape}), got {len(body.x)}")
    cond = run.cond(body.label, required=True)
    return await posterior(run, torch.tensor(body.x, dtype=torch.float32).reshape(1, *run.shape), cond)


@router.post("/api/runs/{name}/decode", response_model=ImageData | Values,
             responses={200: {"content": PNG_CONTENT, "description": "PNG bytes (format png), ImageData (base64) "
                                                                     "or Values (values)."}, **ERROR_RESPONSES})
async def decode(request: Request, name: str, body: DecodeRequest) -> Any:
    """The decoder's mean for a latent vector: a PNG (``format`` png or base64) or its values.
    A conditional run decodes with ``label`` (default class 0)."""
    run = served(request, name)
    z = run.latent(body.z)
    cond = run.cond(body.label)
    if body.format != "values":
        run.require_image("format")
    out = await run.decoder.submit(z, cond)
    if body.format == "values":
        return {"values": out.flatten().tolist(), "shape": list(run.shape)}
    if body.format == "png":
        return Response(png_bytes(out), media_type="image/png")
    return image_response(out, "base64")
