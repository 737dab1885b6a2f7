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
from vaekit.plotting.figures import latent_scatter

if TYPE_CHECKING:
    from matplotlib.figure import Figure



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


# -- latent-space figures: strips, animations, labelled grids and scatter maps -----------
# matplotlib is imported inside the functions (it costs ~0.5 s) and drawn through its Agg
# canvas directly, so the global backend of a notebook or GUI session is never touched.


def _check_image_suffix(path: Path, allowed: tuple[str, ...]) -> None:
    if path.suffix.lower() not in allowed:
        raise VaekitError(f"{path}: expected an image file name ending in {' or '.join(allowed)}")


def _scale_for(images: torch.Tensor, cell_size: int) -> int:
    """Nearest-neighbour factor that makes one image about ``cell_size`` pixels on its longer side."""
    return max(1, math.ceil(cell_size / max(images.shape[-2:])))


def _to_pil(arr: np.ndarray, scale: int) -> Image.Image:
    img = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    return img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST) if scale > 1 else img


def save_strip(images: torch.Tensor, path: str | Path, *, cell_size: int = 64) -> Path:
    """One row of ``(N, C, H, W)`` images in [0, 1] (a path, a sequence), each shown about
    ``cell_size`` pixels tall."""
    path = Path(path)
    _check_image_suffix(path, (".png", ".jpg", ".jpeg", ".webp"))
    img = _to_pil(grid(images, nrow=len(images)), _scale_for(images, cell_size))
    with atomic_path(path) as tmp:
        img.save(tmp, format=path.suffix.lstrip(".").upper().replace("JPG", "JPEG"))
    return path


def save_gif(frames: torch.Tensor, path: str | Path, *, duration_ms: int = 120, cell_size: int = 128,
             pingpong: bool = True) -> Path:
    """An endlessly looping animated GIF of ``(N, C, H, W)`` frames in [0, 1], scaled up
    (nearest) to about ``cell_size`` pixels; ``pingpong`` plays forward then back so a
    path loops without a jump."""
    path = Path(path)
    _check_image_suffix(path, (".gif",))
    if len(frames) == 0:
        raise VaekitError(f"{path}: no frames to animate")
    scale = _scale_for(frames, cell_size)
    order = list(range(len(frames)))
    if pingpong and len(frames) > 2:
        order += order[-2:0:-1]
    images = [_to_pil(grid(frames[i:i + 1], nrow=1, padding=0), scale) for i in order]
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
    return path


def save_labeled_grid(images: torch.Tensor, path: str | Path, *, row_labels: list[str] | None = None,
                      col_labels: list[str] | None = None, dimmed_rows: list[bool] | None = None,
                      title: str | None = None, cell_inches: float = 0.6) -> Path:
    """A grid of ``(rows, cols, C, H, W)`` images with text labels on rows and columns.

    ``dimmed_rows`` marks rows a person must tell apart at a glance (e.g. collapsed latent
    dimensions): they are drawn at low contrast inside a red frame, with a red label.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    path = Path(path)
    _check_image_suffix(path, (".png", ".jpg", ".jpeg", ".webp"))
    n_rows, n_cols = images.shape[:2]
    dimmed = dimmed_rows or [False] * n_rows
    shown = images.detach().float().cpu().clamp(0, 1).clone()
    for r, dim in enumerate(dimmed):
        if dim:
            shown[r] = 0.5 + 0.3 * (shown[r] - 0.5)
    arr = grid(shown.reshape(n_rows * n_cols, *shown.shape[2:]), nrow=n_cols)
    h, w = images.shape[-2:]
    fig = Figure(figsize=(n_cols * cell_inches * w / max(h, w) + 1.6, n_rows * cell_inches * h / max(h, w) + 0.9))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(arr[:, :, 0] if arr.shape[2] == 1 else arr, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_yticks([1 + r * (h + 1) + (h - 1) / 2 for r in range(n_rows)], row_labels or [""] * n_rows)
    ax.set_xticks([1 + c * (w + 1) + (w - 1) / 2 for c in range(n_cols)], col_labels or [""] * n_cols)
    ax.xaxis.tick_top()
    ax.tick_params(length=0, labelsize=9)
    for side in ax.spines.values():
        side.set_visible(False)
    for r, (dim, label) in enumerate(zip(dimmed, ax.get_yticklabels(), strict=True)):
        if dim:
            label.set_color("#c00000")
            ax.add_patch(Rectangle((0, r * (h + 1) + 0.5), arr.shape[1] - 1.5, h, fill=False, edgecolor="#d62728",
                                   linewidth=2, clip_on=False))
    if title:
        ax.set_title(title, fontsize=10, pad=18 if col_labels else 6)
    return save_figure(fig, path, pad_inches=0.08)


def save_scatter(coords: torch.Tensor, labels: torch.Tensor | None, path: str | Path, *,
                 class_names: list[str] | None = None, title: str = "", xlabel: str = "", ylabel: str = "") -> Path:
    """A scatter plot of ``(N, 2)`` points coloured by integer ``labels`` (with a legend):
    the report's latent map (``figures.latent_scatter``), written to a file."""

    path = Path(path)
    _check_image_suffix(path, (".png", ".jpg", ".jpeg", ".webp", ".svg", ".pdf"))
    fig = latent_scatter(coords.detach().float().cpu().numpy(),
                         None if labels is None else labels.detach().cpu().numpy(),
                         class_names, (xlabel, ylabel), title)
    return save_figure(fig, path)


def save_figure(fig: Figure, path: Path, pad_inches: float = 0.1) -> Path:
    """Write a matplotlib figure atomically; raster figures go through a 256-colour palette,
    which keeps grey images, text and a few class colours intact at a third of the size."""
    import io

    fmt = path.suffix.lstrip(".").lower().replace("jpg", "jpeg")
    with atomic_path(path) as tmp:
        if fmt in ("svg", "pdf"):
            fig.savefig(tmp, format=fmt, bbox_inches="tight", pad_inches=pad_inches, facecolor="white")
            return path
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", pad_inches=pad_inches, facecolor="white")
        img = Image.open(buf).convert("RGB")
        if fmt == "png":
            img = img.quantize(256, method=Image.Quantize.MEDIANCUT)
        img.save(tmp, format=fmt.upper())
    return path
