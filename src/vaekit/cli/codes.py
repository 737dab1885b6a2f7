"""`vaekit encode` and `vaekit decode`: latent codes as features, and codes back to data.

The file formats and the work live in ``vaekit.latent.codes``; these are the commands.
Registered on the main app in ``vaekit.cli.app``; errors surface as one line through its ``main``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vaekit.cli import options
from vaekit.cli.options import out_console as console
from vaekit.latent.codes import check_suffix, decode_codes, encode_data, read_codes, sidecars, write_codes
from vaekit.training import runs

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command(epilog="Examples:  vaekit encode runs/mnist mnist --split test -o codes.parquet  |  "
                    "vaekit encode runs/mnist digits_folder/ -o codes.csv --logvar  |  "
                    "vaekit encode runs/table new_rows.csv -o codes.npy  |  "
                    "vaekit encode runs/mnist mnist --sample --seed 1 -o draws.csv")
def encode(
    run_dir: options.RunDir,
    data: Annotated[str, typer.Argument(help="A dataset name (with --split), an image folder, .npy/.npz, .csv or "
                                             ".parquet, read like the run's data.")],
    out: Annotated[Path, options.out("codes.csv, codes.parquet or codes.npy (ids and labels in codes.ids.csv "
                                     "beside it).")],
    split: Annotated[Optional[str], typer.Option(help="Named datasets: train, val or test (default test).")] = None,
    logvar: Annotated[bool, typer.Option("--logvar", help="Add the posterior log-variances.")] = False,
    sample: Annotated[bool, typer.Option("--sample", help="Write posterior draws instead of means.")] = False,
    seed: Annotated[int, options.seed("Random seed of --sample.")] = 0,
    overwrite: options.Overwrite = False,
    threads: options.Threads = "auto",
) -> None:
    """Write the latent code (encoder mean) of every example: features for a classifier or a search index."""
    options.writing(threads, out, overwrite, *(sidecars(out) if check_suffix(out, "-o") == ".npy" else []))
    run = runs.open_run(run_dir)
    codes = encode_data(run, data, split=split, logvar=logvar, sample=sample, seed=seed)
    for path in write_codes(codes, out):
        console.print(f"wrote {path}")
    what = "posterior draws" if sample else "encoder means"
    console.print(f"{len(codes.ids)} codes of {codes.codes.shape[1]} dimensions ({what})"
                  + (", with labels" if codes.labels is not None else ""))


@app.command(epilog="Examples:  vaekit decode runs/mnist codes.npy -o images/  |  "
                    "vaekit decode runs/table codes.csv -o rows.csv")
def decode(
    run_dir: options.RunDir,
    codes_file: Annotated[Path, typer.Argument(metavar="CODES", help="codes.npy, codes.csv or codes.parquet "
                                                                     "(as vaekit encode writes them).")],
    out: Annotated[Path, options.out("Image runs: a folder for one PNG per code; table runs: a .csv file.")],
    overwrite: Annotated[bool, typer.Option(help="Write into a folder that is not empty (replacing files of the "
                                                 "same names), or replace the .csv file.")] = False,
    threads: options.Threads = "auto",
) -> None:
    """Turn latent codes back into images (one PNG per row, named by id) or table rows (CSV)."""
    options.use_threads(threads)
    run = runs.open_run(run_dir)
    codes = read_codes(codes_file, run.model.config.latent_dim)
    paths = decode_codes(run, codes, out, overwrite=overwrite)
    if len(paths) == 1:
        console.print(f"wrote {paths[0]}")
    else:
        console.print(f"wrote {len(paths)} images to {out}")
