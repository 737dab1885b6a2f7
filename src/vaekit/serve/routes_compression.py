"""Compress an upload to a ``.vkc`` file and back, through ``vaekit.compression`` (codec runs;
``lossless`` for a VAE on binary images)."""

from __future__ import annotations

import logging
import struct
from typing import Annotated

import torch
from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from vaekit.errors import VaekitError
from vaekit.serve.errors import ApiError
from vaekit.serve.responses import ERROR_RESPONSES, IMAGE_RESPONSES, image_response, served
from vaekit.serve.routes_codes import read_file
from vaekit.serve.schemas import ImageFormat

router = APIRouter(tags=["compression"])
log = logging.getLogger("vaekit.serve")
VKC_RESPONSE = {200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                      "description": "The .vkc file's bytes."}}


@router.post("/api/runs/{name}/compress", responses={**VKC_RESPONSE, **ERROR_RESPONSES}, response_class=Response)
async def compress(request: Request, name: str, file: Annotated[UploadFile, File(description="An image.")],
                   lossless: Annotated[bool, Form(description="Bits-back coding (a VAE run, binary images).")] = False
                   ) -> Response:
    """An uploaded image as a ``.vkc`` file (a codec run's learned lossy code, or ``lossless``)."""
    from vaekit.compression import compress as compress_images

    run = served(request, name)
    x = await read_file(request, file, run, "file")
    data = await run_in_threadpool(compress_images, run.model, x, lossless=lossless)
    return Response(data, media_type="application/octet-stream",
                    headers={"Content-Disposition": 'attachment; filename="image.vkc"'})


@router.post("/api/runs/{name}/decompress", responses={**IMAGE_RESPONSES, **ERROR_RESPONSES}, response_class=Response)
async def decompress(request: Request, name: str, file: Annotated[UploadFile, File(description="A .vkc file.")],
                     format: Annotated[ImageFormat, Form()] = "png") -> Response:
    """The images of a ``.vkc`` file written with this run, as one PNG grid."""
    from vaekit.compression import decompress as decompress_bytes

    run = served(request, name)
    run.require_image("decompress")
    limit = request.app.state.limits["max_bytes"]
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, f"file: over the limit of {limit} bytes")

    def images() -> torch.Tensor:
        try:
            return decompress_bytes(run.model, data, name="file")
        except VaekitError:
            raise
        except (ValueError, IndexError, OverflowError, RuntimeError, struct.error) as exc:  # bytes from anyone
            log.info("undecodable .vkc upload for %s: %s", name, exc)
            raise ApiError(400, f"file: not a valid .vkc file for run '{name}' ({type(exc).__name__})") from None

    return image_response(await run_in_threadpool(images), format)
