"""What ``vaekit compress`` and ``vaekit decompress`` do, over files and folders.

One image file -> one ``.vkc`` file; a folder of images -> a folder of ``.vkc`` files (one
per image, same stems), and back. A ``.vkc`` file holding several images (written from
Python) decompresses to ``<stem>_<i>.png``. All inputs are read and coded before the first
output is written, so a bad file in a folder leaves nothing half done.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from vaekit.compression.api import as_model, compress, compress_each, decompress
from vaekit.compression.container import unpack
from vaekit.compression.images import (
    IMAGE_SUFFIXES,
    VKC_SUFFIX,
    check_outputs,
    input_files,
    png_bytes,
    read_image,
    write_files,
)
from vaekit.errors import VaekitError


@dataclass
class Done:
    """Files written and their sizes: ``pixels`` image pixels in ``bytes_out`` bytes of output."""

    paths: list[Path]
    bytes_out: int
    pixels: int

    @property
    def bits_per_pixel(self) -> float:
        return 8 * self.bytes_out / max(self.pixels, 1)


def _refuse_duplicates(files: list[Path], targets: list[Path]) -> None:
    """Two inputs of a folder with the same stem (``a.png``, ``a.jpg``) would write one output."""
    first: dict[Path, Path] = {}
    for f, target in zip(files, targets, strict=True):
        if target in first:
            raise VaekitError(f"{first[target]} and {f} would both be written to {target}: rename one of them")
        first[target] = f


def _outputs(source: Path, files: list[Path], output: Path | None, suffix: str) -> list[Path]:
    if source.is_dir():
        folder = output if output is not None else source.with_name(source.name + "-" + suffix.lstrip("."))
        if folder.exists() and not folder.is_dir():
            raise VaekitError(f"{folder}: exists and is not a folder (a folder input writes a folder)")
        targets = [folder / (f.stem + suffix) for f in files]
        _refuse_duplicates(files, targets)
        return targets
    return [output if output is not None else source.with_suffix(suffix)]


def compress_paths(run: str | Path, source: Path, output: Path | None = None, *, lossless: bool = False,
                   seed: int = 0, overwrite: bool = False) -> Done:
    """Compress an image file, or every image of a folder, to ``.vkc`` files."""
    model = as_model(run)
    files = input_files(source, IMAGE_SUFFIXES, "image")
    targets = _outputs(source, files, output, VKC_SUFFIX)
    check_outputs(targets, overwrite)
    shape = tuple(int(v) for v in model.config.input_shape)
    images = torch.stack([read_image(f, shape) for f in files])
    if lossless:
        blobs = [compress(model, images[i:i + 1], lossless=True, seed=seed) for i in range(len(images))]
    else:
        blobs = compress_each(model, images)
    outputs = dict(zip(targets, blobs, strict=True))
    write_files(outputs)
    return Done(paths=targets, bytes_out=sum(map(len, blobs)), pixels=images[0].numel() * len(images))


def decompress_paths(run: str | Path, source: Path, output: Path | None = None, *, overwrite: bool = False) -> Done:
    """Decompress a ``.vkc`` file, or every one of a folder, to PNG files. The outputs are
    named from the files' headers (how many images each holds) and checked before any
    decoding, so a refused command has done no work and changed nothing."""
    model = as_model(run)
    files = input_files(source, (VKC_SUFFIX,), "vkc")
    targets = _outputs(source, files, output, ".png")
    blobs = [f.read_bytes() for f in files]
    names = [_image_names(target, unpack(data, str(f))[0].count) for f, data, target in zip(files, blobs, targets,
                                                                                             strict=True)]
    _refuse_duplicates([f for f, group in zip(files, names, strict=True) for _ in group],
                       [path for group in names for path in group])
    check_outputs([path for group in names for path in group], overwrite)
    outputs: dict[Path, bytes] = {}
    pixels = 0
    for f, data, group in zip(files, blobs, names, strict=True):
        images = decompress(model, data, name=str(f))
        pixels += images[0].numel() * len(images) if len(images) else 0
        outputs.update({path: png_bytes(im) for path, im in zip(group, images, strict=True)})
    write_files(outputs)
    return Done(paths=list(outputs), bytes_out=sum(map(len, outputs.values())), pixels=pixels)


def _image_names(target: Path, count: int) -> list[Path]:
    """The PNG files of a ``.vkc`` file of ``count`` images: ``target`` for one, else
    ``<stem>_<i>.png``."""
    return [target] if count == 1 else [target.with_name(f"{target.stem}_{i}.png") for i in range(count)]
