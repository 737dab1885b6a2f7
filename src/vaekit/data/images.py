"""Reading a folder of image files (any size, grey or colour) into one image tensor.

Layout: images directly in the folder (no labels), or in one sub-folder per class (labels
from the sorted sub-folder names; deeper nesting inside a class folder is fine). Files
with other extensions and hidden files are skipped. Every image is fully decoded
(``img.load()``), so a truncated file is reported by name instead of yielding a partly
grey image.

Channels: ``channels`` if given, else RGB as soon as one image is in colour (an RGB file
whose three channels are equal counts as grey). Colour is turned into grey with the
ITU-R 601 luma weights (as Pillow's ``convert("L")``); transparency is dropped. Size:
see ``DataConfig.image_size``. Values are in [0, 1] (8-bit / 255, 16-bit / 65535).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from vaekit.data.parts import Parts
from vaekit.errors import VaekitError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")
#: Side of the square that images of differing sizes are resized to, at most (when no
#: ``image_size`` is given): keeps models small and CPU training practical.
MAX_AUTO_SIZE = 64
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def list_images(root: Path) -> tuple[list[Path], list[str] | None]:
    """Image files under ``root`` in sorted order, and each one's class (sub-folder) or ``None``."""
    files = sorted(
        (
            p
            for p in root.rglob("*")
            if p.is_file()
            and p.suffix.lower() in IMAGE_EXTENSIONS
            and not any(part.startswith(".") for part in p.relative_to(root).parts)
        ),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    if not files:
        raise VaekitError(f"no images found in '{root}' (looked for {', '.join(IMAGE_EXTENSIONS)})")
    direct = [p for p in files if p.parent == root]
    if direct and len(direct) != len(files):
        raise VaekitError(
            f"'{root}' has images both directly inside it (e.g. '{direct[0].name}') and in sub-folders; "
            "put all images in one sub-folder per class, or all directly in the folder"
        )
    if direct:
        return files, None
    return files, [p.relative_to(root).parts[0] for p in files]


def _to_array(img: Image.Image) -> np.ndarray:
    """``(H, W, C)`` float32 in [0, 1], C = 1 for grey content and 3 for colour."""
    mode = img.mode
    if mode in ("1", "L", "LA", "La"):
        return np.asarray(img.convert("L"), dtype=np.float32)[:, :, None] / 255.0
    if mode.startswith("I"):
        a = np.asarray(img, dtype=np.float32)
        return np.clip(a / 65535.0, 0.0, 1.0)[:, :, None]
    if mode == "F":
        a = np.asarray(img, dtype=np.float32)
        return np.clip(a / 255.0 if a.max(initial=0.0) > 1.0 else a, 0.0, 1.0)[:, :, None]
    rgb = np.asarray(img.convert("RGB"))
    if np.array_equal(rgb[:, :, 0], rgb[:, :, 1]) and np.array_equal(rgb[:, :, 1], rgb[:, :, 2]):
        rgb = rgb[:, :, :1]
    return rgb.astype(np.float32) / 255.0


def read_image(path: Path) -> np.ndarray:
    """Decode one image fully (truncation is an error), upright per its EXIF orientation."""
    try:
        with Image.open(path) as img:
            img.load()
            upright = ImageOps.exif_transpose(img)
            return _to_array(upright)
    except Exception as exc:  # Pillow raises many types (OSError, SyntaxError, ValueError, ...)
        raise VaekitError(f"cannot read image '{path}': {exc}") from exc


def target_size(sizes: list[tuple[int, int]], image_size: int | None) -> tuple[int, int]:
    """(H, W) every image is brought to; see ``DataConfig.image_size``."""
    if image_size is not None:
        return image_size, image_size
    if len(set(sizes)) == 1:
        return sizes[0]
    side = min(MAX_AUTO_SIZE, min(min(h, w) for h, w in sizes))
    return side, side


def _convert(a: np.ndarray, channels: int, size: tuple[int, int]) -> np.ndarray:
    if a.shape[2] == 3 and channels == 1:
        a = (a @ _LUMA)[:, :, None]
    elif a.shape[2] == 1 and channels == 3:
        a = np.repeat(a, 3, axis=2)
    chw = np.ascontiguousarray(a.transpose(2, 0, 1))
    if chw.shape[1:] != size:
        t = torch.from_numpy(chw)[None]
        t = F.interpolate(t, size=size, mode="bilinear", antialias=True, align_corners=False)
        chw = t[0].clamp_(0.0, 1.0).numpy()
    return chw


def read_image_folder(
    root: Path,
    *,
    image_size: int | None = None,
    channels: int | None = None,
    shape: tuple[int, ...] | None = None,
) -> Parts:
    """All images under ``root`` as ``(N, C, H, W)`` in [0, 1]; ``shape`` = ``(C, H, W)``
    forces channels and size (new data for an already-trained model)."""
    files, classes = list_images(root)
    arrays = [read_image(p) for p in files]
    if shape is not None:
        if len(shape) != 3 or shape[0] not in (1, 3):
            raise VaekitError(f"'{root}' holds images, but the model expects examples of shape {tuple(shape)}")
        channels, size = shape[0], (shape[1], shape[2])
    else:
        size = target_size([a.shape[:2] for a in arrays], image_size)
        if channels is None:
            channels = 3 if any(a.shape[2] == 3 for a in arrays) else 1
    x = np.stack([_convert(a, channels, size) for a in arrays]).astype(np.float32, copy=False)
    y = class_names = None
    if classes is not None:
        class_names = sorted(set(classes))
        index = {c: i for i, c in enumerate(class_names)}
        y = np.asarray([index[c] for c in classes], dtype=np.int64)
    names = [p.relative_to(root).as_posix() for p in files]
    return Parts(x=x, y=y, kind="image", class_names=class_names, names=names)
