"""PNG files and folders in and out of the compression commands (Pillow).

Images are taken as they are: a file whose size or channel count differs from the model's
is refused with one line naming it (no resizing: a codec's figures are for the pixels it
was given). Everything is read and checked before anything is written, and every file is
written atomically.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from vaekit.atomic import atomic_write_bytes, check_new_files
from vaekit.errors import VaekitError

IMAGE_SUFFIXES = (".png", ".pgm", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg", ".webp")
VKC_SUFFIX = ".vkc"


def read_image(path: Path, shape: tuple[int, ...]) -> torch.Tensor:
    """An image file as (C, H, W) float32 in [0, 1], checked against the model's ``shape``."""
    from PIL import Image, UnidentifiedImageError

    c, h, w = shape
    try:
        with Image.open(path) as im:
            im = im.convert("L" if c == 1 else "RGB")
            array = np.asarray(im, dtype=np.uint8)
    except (OSError, UnidentifiedImageError) as e:
        raise VaekitError(f"{path}: cannot read as an image ({e})") from None
    if array.shape[:2] != (h, w):
        raise VaekitError(f"{path}: is {array.shape[1]}x{array.shape[0]} pixels, the model takes {w}x{h}")
    t = torch.from_numpy(array.copy()).float() / 255
    return t.unsqueeze(0) if c == 1 else t.permute(2, 0, 1)


def png_bytes(image: torch.Tensor) -> bytes:
    """(C, H, W) in [0, 1] -> PNG bytes (8-bit grey or RGB; values rounded to 1/255)."""
    from PIL import Image

    array = (image.clamp(0, 1) * 255).round().to(torch.uint8)
    array = array[0].numpy() if array.shape[0] == 1 else array.permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def input_files(path: Path, suffixes: tuple[str, ...], what: str) -> list[Path]:
    """``path`` itself, or the files of folder ``path`` with one of ``suffixes``, sorted."""
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
        if not files:
            raise VaekitError(f"{path}: no {what} files in this folder ({', '.join(suffixes)})")
        return files
    raise VaekitError(f"{path}: no such file or folder")


def check_outputs(paths: list[Path], overwrite: bool) -> None:
    """Refuse to replace existing files unless ``overwrite`` (checked before any work): the
    rule of every writer (``atomic.check_new_files``); a folder of outputs is created."""
    check_new_files([p for p in paths if p.parent.is_dir()], overwrite=overwrite)


def write_files(outputs: dict[Path, bytes]) -> None:
    for path, data in outputs.items():
        atomic_write_bytes(path, data)
