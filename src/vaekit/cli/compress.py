"""`vaekit compress` and `vaekit decompress`: thin commands over ``vaekit.compression.commands``.

Registered on the main app by ``vaekit.cli.app``; errors surface through its ``main`` as one
line and exit status 2, like every other command. (The entropy coder, constriction, is an
optional extra that ``vaekit.compression`` imports only when it codes.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vaekit.cli import options
from vaekit.cli.options import out_console as console
from vaekit.compression.commands import compress_paths, decompress_paths

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command(epilog="Examples:  vaekit compress runs/mnist-codec digit.png -o digit.vkc  |  "
                    "vaekit compress runs/mnist-codec digits/ -o digits-vkc/  |  "
                    "vaekit compress runs/binary-vae page.png --lossless")
def compress(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="A codec run (vaekit train DATA --model codec); "
                                                               "with --lossless a VAE run on binary images.")],
    source: Annotated[Path, typer.Argument(metavar="INPUT", help="An image file, or a folder of images.")],
    out: Annotated[Optional[Path], options.out("The .vkc file (or, for a folder, the output folder; default "
                                               "INPUT-vkc).")] = None,
    lossless: Annotated[bool, typer.Option(help="Bits-back coding of binary images with a VAE: an exact round "
                                                "trip.")] = False,
    seed: Annotated[int, options.seed("--lossless: seed of the initial bits.")] = 0,
    overwrite: options.Overwrite = False,
    threads: options.Threads = "auto",
) -> None:
    """Compress images to .vkc files with a trained model (a learned lossy codec, or --lossless)."""
    options.use_threads(threads)
    done = compress_paths(run_dir, source, out, lossless=lossless, seed=seed, overwrite=overwrite)
    console.print(f"wrote {_where(done.paths)}: {done.bytes_out} bytes, {done.bits_per_pixel:.3f} bits per pixel "
                  "(headers included)")


@app.command(epilog="Examples:  vaekit decompress runs/mnist-codec digit.vkc -o digit.png  |  "
                    "vaekit decompress runs/mnist-codec digits-vkc/ -o digits-png/")
def decompress(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="The run that compressed the files.")],
    source: Annotated[Path, typer.Argument(metavar="INPUT", help="A .vkc file, or a folder of them.")],
    out: Annotated[Optional[Path], options.out("The PNG file (or, for a folder, the output folder; default "
                                               "INPUT-png).")] = None,
    overwrite: options.Overwrite = False,
    threads: options.Threads = "auto",
) -> None:
    """Decompress .vkc files to PNG images."""
    options.use_threads(threads)
    done = decompress_paths(run_dir, source, out, overwrite=overwrite)
    console.print(f"wrote {_where(done.paths)}")


def _where(paths: list[Path]) -> str:
    """The one file written, or how many went into which folder."""
    return str(paths[0]) if len(paths) == 1 else f"{len(paths)} files in {paths[0].parent}"
