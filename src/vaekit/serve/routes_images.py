"""Pictures of the latent space: samples, interpolations and traversals, through ``vaekit.latent``."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import torch
from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from vaekit import latent
from vaekit.serve.errors import ApiError
from vaekit.serve.responses import ERROR_RESPONSES, IMAGE_RESPONSES, image_response, served
from vaekit.serve.routes_codes import read_file
from vaekit.serve.schemas import MAX_STEPS, ImageFormat, InterpolateIndices, Label, SampleRequest, TraversalRequest

router = APIRouter(tags=["pictures"])
RESPONSES = {**IMAGE_RESPONSES, **ERROR_RESPONSES}


@router.post("/api/runs/{name}/sample", responses=RESPONSES, response_class=Response)
async def sample(request: Request, name: str, body: SampleRequest) -> Response:
    """A grid of ``n`` samples from the prior or the run's GMM sampler at ``temperature``
    (conditional runs: class ``label``, or every class in turn)."""
    run = served(request, name)
    run.require_image("sample")
    cond = None if body.label is None else run.cond(body.label)

    def draw() -> torch.Tensor:
        sampler = {"gmm": run.gmm, "diffusion": run.diffusion}.get(body.sampler, lambda: "prior")()
        return latent.sample(run.model, body.n, sampler=sampler, temperature=body.temperature, seed=body.seed,
                             cond=None if cond is None else int(cond[0]))

    images = await run_in_threadpool(draw)
    return image_response(images, body.format, nrow=body.nrow or math.ceil(math.sqrt(body.n)))


@router.post("/api/runs/{name}/interpolate", responses=RESPONSES, response_class=Response)
async def interpolate_uploads(
    request: Request, name: str,
    file_a: Annotated[UploadFile, File(description="The first image.")],
    file_b: Annotated[UploadFile, File(description="The second image.")],
    steps: Annotated[int, Form(ge=2, le=MAX_STEPS)] = 10,
    method: Annotated[Literal["slerp", "lerp"], Form()] = "slerp",
    label_a: Annotated[Label | None, Form()] = None,
    label_b: Annotated[Label | None, Form()] = None,
    format: Annotated[ImageFormat, Form()] = "png",
) -> Response:
    """A strip of ``steps`` images along the path between the codes of two uploads (conditional
    runs: with their labels; the class then changes smoothly along the strip)."""
    run = served(request, name)
    ca, cb = run.cond(label_a, required=True), run.cond(label_b, required=True)
    xa = await read_file(request, file_a, run, "file_a")
    xb = await read_file(request, file_b, run, "file_b")
    cond = None if ca is None else torch.cat([ca, cb])
    strip = await run_in_threadpool(latent.interpolate, run.model, xa, xb, steps=steps, method=method, cond=cond)
    return image_response(strip, format, nrow=len(strip))


@router.post("/api/runs/{name}/interpolate/indices", responses=RESPONSES, response_class=Response)
async def interpolate_indices(request: Request, name: str, body: InterpolateIndices) -> Response:
    """The same strip between two examples of the run's dataset, by index."""
    run = served(request, name)
    run.require_image("interpolate")

    def strip() -> torch.Tensor:
        xa, ca = run.example(body.split, body.a, "a")
        xb, cb = run.example(body.split, body.b, "b")
        cond = None if ca is None else torch.cat([ca, cb])
        return latent.interpolate(run.model, xa, xb, steps=body.steps, method=body.method, cond=cond)

    images = await run_in_threadpool(strip)
    return image_response(images, body.format, nrow=len(images))


@router.post("/api/runs/{name}/traversal", responses=RESPONSES, response_class=Response)
async def traversal(request: Request, name: str, body: TraversalRequest) -> Response:
    """One latent dimension swept from ``low`` to ``high`` while the others keep the start code's
    values: from example ``index`` (``vaekit.latent.traversal``), a given code ``z``, or the prior mean."""
    run = served(request, name)
    run.require_image("traversal")
    if body.dim >= run.config.latent_dim:
        raise ApiError(400, f"dim: expected a dimension in 0..{run.config.latent_dim - 1}, got {body.dim}")
    if body.z is not None and body.index is not None:
        raise ApiError(400, "z, index: give one start, not both")
    values = torch.linspace(body.low, body.high, body.steps)

    def sweep() -> Any:
        if body.index is not None:
            x, cond = run.example(body.split, body.index, "index")
            rows, _, _ = latent.traversal(run.model, x, values=values, dims=[body.dim], kl=run.kl_per_dim(),
                                          cond=cond)
            return rows[0]
        cond = run.cond(body.label)
        start = run.latent(body.z) if body.z is not None else torch.zeros(1, run.config.latent_dim)
        codes = start.repeat(len(values), 1)
        codes[:, body.dim] = values
        return latent.decode_means(run.model, codes, None if cond is None else cond[0])

    images = await run_in_threadpool(sweep)
    return image_response(images, body.format, nrow=len(images))
