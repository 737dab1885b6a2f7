"""Uploads in, PNGs out.

An upload is checked before it is decoded: its byte size (``max_bytes``), that Pillow
recognises it, and its pixel count from the header alone (``max_pixels``), so a small file
that would expand to gigabytes (a decompression bomb) is refused without being expanded.
It is then converted exactly as the run's data reader converts files (grey/colour, size),
through ``vaekit.data.images``.
"""

from __future__ import annotations

import base64
import io
import math
import warnings

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from vaekit.data.images import _convert, _to_array
from vaekit.plotting.pictures import grid
from vaekit.serve.errors import ApiError

#: Default upload limits: 10 MiB and 40 megapixels (a 6000 x 6000 photo passes, a bomb does not).
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_UPLOAD_PIXELS = 40_000_000


def read_upload(data: bytes, shape: tuple[int, ...], *, what: str = "file", max_bytes: int = MAX_UPLOAD_BYTES,
                max_pixels: int = MAX_UPLOAD_PIXELS) -> torch.Tensor:
    """One uploaded image as ``(1, C, H, W)`` float32 in [0, 1], converted to ``shape`` = ``(C, H, W)``."""
    if not data:
        raise ApiError(400, f"{what}: the upload is empty")
    if len(data) > max_bytes:
        raise ApiError(413, f"{what}: {len(data)} bytes is over the limit of {max_bytes} bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > max_pixels:
                raise ApiError(413, f"{what}: {width}x{height} pixels is over the limit of {max_pixels} pixels")
            img.load()
            array = _to_array(ImageOps.exif_transpose(img))
    except ApiError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        status = 415 if isinstance(exc, UnidentifiedImageError) else 413
        reason = "not an image Pillow can read" if status == 415 else "too many pixels (a decompression bomb?)"
        raise ApiError(status, f"{what}: {reason}") from None
    except Exception as exc:  # Pillow raises many types for damaged files (OSError, SyntaxError, ValueError...)
        raise ApiError(400, f"{what}: cannot decode the image ({type(exc).__name__}: {exc})") from None
    channels, size = shape[0], (shape[1], shape[2])
    return torch.from_numpy(_convert(array, channels, size).astype(np.float32, copy=False))[None]


def png_bytes(images: torch.Tensor, *, nrow: int | None = None, min_width: int = 0) -> bytes:
    """``(N, C, H, W)`` images in [0, 1] tiled into one PNG, scaled up (nearest) to at least ``min_width``."""
    if len(images) == 1:  # one image (the explorer's live decode): no grid canvas to build
        arr = (images[0].detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    else:
        arr = grid(images, nrow=nrow)
    img = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    scale = max(1, math.ceil(min_width / img.width)) if min_width else 1
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    out = io.BytesIO()
    img.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's header."""
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def as_base64(png: bytes) -> dict[str, object]:
    """The ``ImageData`` body of a PNG."""
    width, height = png_size(png)
    return {"image": base64.b64encode(png).decode("ascii"), "width": width, "height": height}
