"""`vaekit compress` and `vaekit decompress`: thin commands over ``vaekit.compression.commands``.

Registered on the main app by ``vaekit.cli`` (``register(app)``); errors surface through
its ``main`` as one line and exit status 2, like every other command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

console = Console(soft_wrap=True, highlight=False)


def compress(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="A codec run (vaekit train DATA --model codec); "
                                                               "with --lossless a VAE run on binary images.")],
    source: Annotated[Path, typer.Argument(metavar="INPUT", help="An image file, or a folder of images.")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="The .vkc file (or, for a folder, the "
                                                   "output folder; default INPUT-vkc).")] = None,
    lossless: Annotated[bool, typer.Option(help="Bits-back coding of binary images with a VAE: an exact round "
                                                "trip.")] = False,
    seed: Annotated[int, typer.Option(help="--lossless: seed of the initial bits.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace existing output files.")] = False,
) -> None:
    """Compress images to .vkc files with a trained model (a learned lossy codec, or --lossless)."""
    from vaekit.compression.commands import compress_paths

    done = compress_paths(run_dir, source, output, lossless=lossless, seed=seed, overwrite=overwrite)
    where = done.paths[0] if len(done.paths) == 1 else f"{len(done.paths)} files in {done.paths[0].parent}"
    console.print(f"wrote {where}: {done.bytes_out} bytes, {done.bits_per_pixel:.3f} bits per pixel "
                  "(headers included)")


def decompress(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="The run that compressed the files.")],
    source: Annotated[Path, typer.Argument(metavar="INPUT", help="A .vkc file, or a folder of them.")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="The PNG file (or, for a folder, the "
                                                   "output folder; default INPUT-png).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing output files.")] = False,
) -> None:
    """Decompress .vkc files to PNG images."""
    from vaekit.compression.commands import decompress_paths

    done = decompress_paths(run_dir, source, output, overwrite=overwrite)
    where = done.paths[0] if len(done.paths) == 1 else f"{len(done.paths)} files in {done.paths[0].parent}"
    console.print(f"wrote {where}")


def register(app: typer.Typer) -> None:
    """Add both commands to the main ``vaekit`` app."""
    app.command(epilog="Examples:  vaekit compress runs/mnist-codec digit.png -o digit.vkc  |  "
                       "vaekit compress runs/mnist-codec digits/ -o digits-vkc/  |  "
                       "vaekit compress runs/binary-vae page.png --lossless")(compress)
    app.command(epilog="Examples:  vaekit decompress runs/mnist-codec digit.vkc -o digit.png  |  "
                       "vaekit decompress runs/mnist-codec digits-vkc/ -o digits-png/")(decompress)
