"""The commands that draw a run's latent space: reconstruct, sample, interpolate, arithmetic,
restyle, traverse and latent-map; thin commands over ``vaekit.latent``."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Optional

import typer

from vaekit.cli import options
from vaekit.cli.options import err_console, out_console
from vaekit.latent.commands import (
    MANIFOLD_FILE,
    write_arithmetic,
    write_interpolation,
    write_latent_map,
    write_restyle,
    write_samples,
    write_traversal,
)
from vaekit.latent.sampling import preparing
from vaekit.latent.writers import write_reconstructions
from vaekit.plotting.pictures import is_image_run
from vaekit.training import runs
from vaekit.training.diagnosis import COLLAPSED_KL

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

SPLIT_HELP = "train, val or test."
Split = Annotated[str, typer.Option(help=SPLIT_HELP)]
PNG = "PNG file."


@app.command(epilog="Example:  vaekit reconstruct runs/digits -n 32 -o recon.png")
def reconstruct(
    run_dir: options.RunDir,
    n: Annotated[int, typer.Option("-n", help="How many examples.")] = 32,
    split: Split = "test",
    out: Annotated[Optional[Path], options.out("PNG (images) or CSV (tables).")] = None,
    overwrite: options.Overwrite = False,
    threads: options.Threads = "auto",
) -> None:
    """Reconstruct held-out examples: a grid of inputs over reconstructions, or a CSV for tables."""
    options.writing(threads, out, overwrite)
    path, error = write_reconstructions(runs.open_run(run_dir), n=n, split=split, output=out)
    out_console.print(f"mean squared reconstruction error on {n} {split} examples: {error:.4f}")
    out_console.print(f"wrote {path}")


@app.command(epilog="Examples:  vaekit sample runs/digits -n 64 -o samples.png --temperature 0.8 --seed 0  |  "
                    "vaekit sample runs/mnist --sampler gmm --components 10 --binarize  |  "
                    "vaekit sample runs/mnist --sampler diffusion --steps 16  |  "
                    "vaekit sample runs/mnist-cvae --label 5 -n 64")
def sample(
    run_dir: options.RunDir,
    n: Annotated[int, typer.Option("-n", help="How many samples.")] = 64,
    out: Annotated[Optional[Path], options.out("PNG (images) or CSV (tables).")] = None,
    temperature: Annotated[float, typer.Option(help="Scale of the sampler's standard deviation.")] = 1.0,
    seed: Annotated[int, options.seed()] = 0,
    sampler: Annotated[str, typer.Option(help="prior (N(0, I)); gmm (mixture fitted to the training codes); "
                                              "diffusion (a flow-matching model of the training codes, "
                                              "latent diffusion). gmm and diffusion are fitted and saved in the "
                                              "run on first use.")] = "prior",
    steps: Annotated[Optional[int], typer.Option(help="--sampler diffusion: integration steps (default 32; "
                                                      "fewer is faster, coarser).")] = None,
    components: Annotated[Optional[int], typer.Option(help="GMM components (default: the saved fit, or 10).")
                          ] = None,
    binarize: Annotated[bool, typer.Option(help="Bernoulli draws (binary images) instead of mean images.")] = False,
    label: Annotated[Optional[str], typer.Option(help="Conditional runs (cvae): draw this class, by index or "
                                                      "name (default: every class in turn, one per column).")
                     ] = None,
    overwrite: options.Overwrite = False,
    threads: options.Threads = "auto",
) -> None:
    """Decode random draws from the prior, or from a mixture or a flow model fitted to the training codes."""
    options.writing(threads, out, overwrite)
    with err_console.status(preparing(sampler)) if sampler != "prior" else nullcontext():
        path = write_samples(runs.open_run(run_dir), n=n, output=out, temperature=temperature, seed=seed,
                             sampler=sampler, components=components, binarize=binarize, label=label, steps=steps)
    out_console.print(f"wrote {path}")


@app.command(epilog="Examples:  vaekit interpolate runs/mnist --from 3 --to 17 --steps 10  |  "
                    "vaekit interpolate runs/mnist --from a.png --to b.png --method lerp  |  "
                    "vaekit interpolate runs/mnist --from-class 3 --to-class 8 -o interp.png")
def interpolate(
    run_dir: options.RunDir,
    start: Annotated[Optional[str], typer.Option("--from", help="Index into --split, or an image file.")] = None,
    end: Annotated[Optional[str], typer.Option("--to", help="Index into --split, or an image file.")] = None,
    from_class: Annotated[Optional[str], typer.Option(help="Start at this class's mean code.")] = None,
    to_class: Annotated[Optional[str], typer.Option(help="End at this class's mean code.")] = None,
    split: Split = "test",
    steps: Annotated[int, typer.Option(help="Images along the path, both ends included.")] = 10,
    method: Annotated[str, typer.Option(help="slerp (great circle) or lerp (straight line).")] = "slerp",
    out: Annotated[Optional[Path], options.out("PNG strip; a .gif is written beside it.")] = None,
    overwrite: options.Overwrite = False,
    threads: options.Threads = "auto",
) -> None:
    """Decode the path between two examples' codes (or two classes' mean codes): a strip and a GIF."""
    options.writing(threads, out, overwrite, *([out.with_suffix(".gif")] if out is not None else []))
    for path in write_interpolation(runs.open_run(run_dir), start=start, end=end, from_class=from_class,
                                    to_class=to_class, split=split, steps=steps, method=method, output=out):
        out_console.print(f"wrote {path}")


@app.command(epilog="Examples:  vaekit arithmetic runs/mnist --class 1 --alpha -2,-1,0,1,2  |  "
                    "vaekit arithmetic runs/faces --with smiling/ --without neutral/ --name smile  |  "
                    "vaekit arithmetic runs/faces --vector smile --input me.png --input photos/  |  "
                    "vaekit arithmetic runs/mnist --analogy 3,17,42")
def arithmetic(
    run_dir: options.RunDir,
    target_class: Annotated[Optional[str], typer.Option("--class", help="Vector: this class's mean code minus "
                                                                       "the rest's (training labels).")] = None,
    with_dir: Annotated[Optional[str], typer.Option("--with", help="Vector: folder of images with the attribute...")
                        ] = None,
    without_dir: Annotated[Optional[str], typer.Option("--without", help="...minus a folder without it.")] = None,
    vector: Annotated[Optional[str], typer.Option(help="Vector: one saved before, by name.")] = None,
    analogy: Annotated[Optional[str], typer.Option(help="Three indices A,B,C: show decode(zA - zB + zC).")] = None,
    alpha: Annotated[str, typer.Option(help="Multiples of the vector to add, comma-separated.")] = "-2,-1,0,1,2",
    name: Annotated[Optional[str], typer.Option(help="Save the vector under this name.")] = None,
    n: Annotated[Optional[int], typer.Option("-n", help="How many inputs (rows) from --split (default 8).")
                 ] = None,
    split: Annotated[Optional[str], typer.Option(help="Split the inputs come from (default test): " + SPLIT_HELP)
                     ] = None,
    images: Annotated[Optional[list[str]], typer.Option(
        "--input", metavar="<file|dir>", help="Instead of -n/--split: your own image file or folder of images "
                                              "(repeat for more), one row per image; brought to the run's shape."
    )] = None,
    out: Annotated[Optional[Path], options.out(PNG)] = None,
    overwrite: options.Overwrite = False,
    threads: options.Threads = "auto",
) -> None:
    """Move inputs along an attribute vector (rows = inputs, columns = alphas), or solve an analogy."""
    options.writing(threads, out, overwrite)
    done = write_arithmetic(runs.open_run(run_dir), target_class=target_class, with_dir=with_dir,
                            without_dir=without_dir, vector=vector, analogy_of=analogy, alphas=alpha, name=name,
                            n=n, split=split, images=images or None, output=out)
    if done.saved_as:
        out_console.print(f"saved vector '{done.saved_as}' in {done.vectors_file}")
    for path in done.paths:
        out_console.print(f"wrote {path}")


@app.command(epilog="Examples:  vaekit restyle runs/mnist-cvae --from 0,1,2,3  |  vaekit restyle runs/mnist-cvae "
                    "-n 8 --seed 1 -o restyle.png")
def restyle(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="A conditional run directory (--model cvae).")],
    examples: Annotated[Optional[str], typer.Option("--from", help="Comma-separated indices into --split: each "
                                                    "example's code, encoded with its own label.")] = None,
    n: Annotated[int, typer.Option("-n", help="Without --from: how many prior draws (rows).")] = 8,
    split: Split = "test",
    seed: Annotated[int, options.seed("Random seed of the prior draws.")] = 0,
    temperature: Annotated[float, typer.Option(help="Scale of the prior draws.")] = 1.0,
    out: Annotated[Optional[Path], options.out(PNG)] = None,
    overwrite: options.Overwrite = False,
    threads: options.Threads = "auto",
) -> None:
    """Conditional style transfer: keep each code z, change the label across every class (rows = codes,
    columns = classes)."""
    options.writing(threads, out, overwrite)
    path = write_restyle(runs.open_run(run_dir), examples=examples, n=n, split=split, seed=seed,
                         temperature=temperature, output=out)
    out_console.print(f"wrote {path}")


@app.command(epilog="Example:  vaekit traverse runs/mnist --index 0 --dims 10 --range 3 --steps 9 -o traverse.png")
def traverse(
    run_dir: options.RunDir,
    index: Annotated[int, typer.Option(help="Example of --split to start from.")] = 0,
    split: Split = "test",
    dims: Annotated[int, typer.Option(help="How many dimensions (rows), most used (highest KL) first.")] = 10,
    span: Annotated[float, typer.Option("--range", help="Sweep each dimension from -RANGE to +RANGE.")] = 3.0,
    steps: Annotated[int, typer.Option(help="Values per dimension (columns).")] = 9,
    out: Annotated[Optional[Path], options.out(PNG)] = None,
    overwrite: options.Overwrite = False,
    threads: options.Threads = "auto",
) -> None:
    """Sweep one latent dimension at a time; collapsed (unused) dimensions are marked in red."""
    options.writing(threads, out, overwrite)
    done = write_traversal(runs.open_run(run_dir), index=index, split=split, dims=dims, span=span, steps=steps,
                           output=out)
    shown = [d for d in done.dims if d in done.collapsed]
    out_console.print(f"collapsed dimensions (KL < {COLLAPSED_KL} nats): {len(done.collapsed)} of {done.latent_dim}"
                      + (f": {', '.join(map(str, done.collapsed))}" if done.collapsed else "")
                      + (f" (shown: {', '.join(map(str, shown))})" if shown else ""))
    out_console.print(f"wrote {done.path}")


@app.command("latent-map", epilog="Example:  vaekit latent-map runs/mnist --split test --method tsne -o latent_map.png")
def latent_map(
    run_dir: options.RunDir,
    split: Split = "test",
    method: Annotated[str, typer.Option(help="auto (the latent itself if 2-D, else t-SNE up to 5000 points, "
                                             "else PCA), pca or tsne.")] = "auto",
    n: Annotated[int, typer.Option("-n", help="At most this many examples (a seeded random subset).")] = 2000,
    seed: Annotated[int, options.seed("Random seed (subset, t-SNE).")] = 0,
    out: Annotated[Optional[Path], options.out("PNG file; with a 2-D latent space manifold.png is written "
                                               "beside it.")] = None,
    overwrite: options.Overwrite = False,
    threads: options.Threads = "auto",
) -> None:
    """Scatter the codes of a split in 2-D, coloured by class (tables too)."""
    run = runs.open_run(run_dir)
    manifold = out is not None and run.model.config.latent_dim == 2 and is_image_run(run.data_info.shape)
    options.writing(threads, out, overwrite, *([out.with_name(MANIFOLD_FILE)] if manifold else []))
    for path in write_latent_map(run, split=split, method=method, n=n, seed=seed, output=out):
        out_console.print(f"wrote {path}")
