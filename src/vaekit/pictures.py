"""Image grids: PNG files for people and a terminal preview for the demo.

torchvision has no CPU build here, so the grid is assembled with torch and written
with Pillow. Small images (8x8 digits) are scaled up with nearest-neighbour so a
person can see them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from vaekit.atomic import atomic_path
from vaekit.errors import VaekitError

if TYPE_CHECKING:
    from vaekit.data.bundle import Dataset
    from vaekit.runs import Run

RECONSTRUCTIONS_FILE = "reconstructions.png"
SAMPLES_FILE = "samples.png"


def grid(images: torch.Tensor, nrow: int | None = None, padding: int = 1) -> np.ndarray:
    """Tile ``(N, C, H, W)`` images in [0, 1] into one ``(H', W', C)`` uint8 array."""
    if images.dim() != 4:
        raise ValueError(f"expected (N, C, H, W) images, got shape {tuple(images.shape)}")
    n, c, h, w = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    canvas = torch.ones(c, rows * (h + padding) + padding, nrow * (w + padding) + padding)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        canvas[:, top:top + h, left:left + w] = images[i].detach().float().cpu().clamp(0, 1)
    return (canvas.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None, min_size: int = 256) -> Path:
    """Write a grid PNG, scaled up (nearest) until it is at least ``min_size`` pixels wide."""
    path = Path(path)
    if path.suffix.lower() not in (".png", ".jpg", ".jpeg", ".gif", ".webp"):
        raise VaekitError(f"{path}: expected an image file name ending in .png, .jpg, .gif or .webp")
    arr = grid(images, nrow)
    img = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    scale = max(1, math.ceil(min_size / img.width))
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    with atomic_path(path) as tmp:
        img.save(tmp, format=path.suffix.lstrip(".").upper().replace("JPG", "JPEG"))
    return path


def paired_rows(inputs: torch.Tensor, outputs: torch.Tensor, per_row: int = 8) -> tuple[torch.Tensor, int]:
    """Interleave rows of inputs and their reconstructions: row 1 inputs, row 2 outputs, ..."""
    chunks = []
    for start in range(0, len(inputs), per_row):
        chunks += [inputs[start:start + per_row], outputs[start:start + per_row]]
    return torch.cat(chunks), per_row


ASCII_RAMP = " .:-=+*#%@"


def terminal_preview(images: torch.Tensor, title: str, max_images: int = 8) -> None:
    """Print grey-level images side by side in the terminal.

    A colour terminal gets half-block characters (two pixels per cell, true grey
    levels); anything else, a log file or a pipe, gets an ASCII ramp, so the demo's
    pictures are visible wherever its output goes.
    """
    from rich.console import Console
    from rich.text import Text

    imgs = images.detach().float().cpu().clamp(0, 1).mean(dim=1)  # to grey
    while imgs.shape[1] > 16:  # 28x28 becomes 14x14, 64x64 16x16: a preview, not the picture
        imgs = torch.nn.functional.avg_pool2d(imgs[:, None], 2, ceil_mode=True)[:, 0]
    _, h, w = imgs.shape
    console = Console(soft_wrap=True)
    color = console.color_system is not None
    cell_width = (w if color else 2 * w) + 2
    imgs = imgs[: max(1, min(max_images, console.width // cell_width))]
    console.print(f"[bold]{title}[/bold]")
    if not color:
        for y in range(h):
            console.print("  ".join("".join(ASCII_RAMP[int(v * (len(ASCII_RAMP) - 1))] * 2 for v in img[y])
                                    for img in imgs), highlight=False)
        return
    for y in range(0, h - h % 2, 2):
        line = Text()
        for img in imgs:
            for x in range(w):
                top, bottom = int(img[y, x] * 255), int(img[y + 1, x] * 255)
                line.append("▀", style=f"rgb({top},{top},{top}) on rgb({bottom},{bottom},{bottom})")
            line.append("  ")
        console.print(line)


def is_image_run(info_shape: tuple[int, ...]) -> bool:
    return len(info_shape) == 3 and info_shape[0] in (1, 3)


def write_run_pictures(run: Run, bundle: Dataset, n: int = 32) -> list[Path]:
    """Reconstructions of held-out examples and random samples, saved in the run directory."""
    info = run.data_info
    if not is_image_run(info.shape):
        return []
    held_out = bundle.test if bundle.test is not None and len(bundle.test) else bundle.train
    x = held_out[:n]
    generator = torch.Generator().manual_seed(0)
    recon = run.model.reconstruct(x)
    samples = run.model.sample(64, generator=generator)
    pairs, per_row = paired_rows(x, recon)
    return [save_grid(pairs, run.path / RECONSTRUCTIONS_FILE, nrow=per_row),
            save_grid(samples, run.path / SAMPLES_FILE, nrow=8)]
