"""What a finished run holds: `vaekit info`, `vaekit report` and `vaekit evaluate`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from vaekit.cli import options
from vaekit.cli.options import err_console, out_console
from vaekit.errors import VaekitError
from vaekit.evaluation import disentanglement as dis
from vaekit.evaluation.evaluate import evaluate_run, evaluation_table
from vaekit.extras import require_chem
from vaekit.latent.writers import describe_run
from vaekit.report.page import write_report
from vaekit.training import runs

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command(epilog="Example:  vaekit info runs/digits")
def info(run_dir: options.RunDir, json_output: options.Json = False) -> None:
    """Show a run's settings, training curve end points and test figures."""
    description = describe_run(runs.open_run(run_dir))
    if json_output:
        print(json.dumps(description))
        return
    for section, values in description.items():
        out_console.print(f"[bold]{section}[/bold]")
        for k, v in (values.items() if isinstance(values, dict) else [("", values)]):
            shown = f"{v:.3f}" if isinstance(v, float) else v
            out_console.print(f"  {k}: {shown}" if k else f"  {shown}", markup=False)  # SELFIES tokens look like markup


@app.command(epilog="Examples:  vaekit report runs/digits  (then open runs/digits/report.html)  |  "
                    "vaekit report pretrained:mnist-vae -o mnist-vae.html")
def report(
    run_dir: options.RunDir,
    out: Annotated[Optional[Path], options.out("The HTML file (default: report.html in the run).")] = None,
    overwrite: options.Overwrite = False,
    threads: options.Threads = "auto",
) -> None:
    """Write the run's self-contained report.html (written automatically after training)."""
    options.writing(threads, out, overwrite)
    out_console.print(f"wrote {write_report(runs.open_run(run_dir), out=out)}")


@app.command(epilog="Examples:  vaekit evaluate runs/mnist  |  vaekit evaluate runs/mnist --k 5000 --json  |  "
                    "vaekit evaluate runs/digits --split val --limit 500  |  "
                    "vaekit evaluate runs/shapes --disentanglement")
def evaluate(
    run_dir: options.RunDir,
    split: Annotated[str, typer.Option(help="train, val or test.")] = "test",
    k: Annotated[int, typer.Option("--k", help="Importance samples per example for the NLL.")] = 1000,
    limit: Annotated[Optional[int], typer.Option(help="Evaluate only the first N examples of the split.")] = None,
    seed: Annotated[int, options.seed()] = 0,
    device: options.Device = options.DEFAULT_DEVICE,
    threads: options.Threads = "auto",
    json_output: options.Json = False,
    disentanglement: Annotated[bool, typer.Option(
        "--disentanglement", help="Instead: MIG, DCI, beta-VAE and FactorVAE scores on a dataset with factor labels "
                                  f"(shapes), on --limit grid points (default {dis.DEFAULT_POINTS}) drawn with "
                                  "--seed.")] = False,
    reconstruct: Annotated[int, typer.Option(
        help="Molecule runs: encode and decode this many of the split's molecules (greedy and beam) for the "
             "reconstruction figures; 0: none.")] = 1000,
    beam_width: Annotated[int, typer.Option(help="Molecule runs: beam width of the beam reconstruction.")] = 5,
) -> None:
    """Held-out figures (ELBO, importance-sampled NLL, bits/dim, active units, mutual information,
    blur) and a diagnosis of posterior collapse and blur with the flags to try; for a molecule
    run also reconstruction (exact canonical match and mean Tanimoto, greedy and beam)."""
    options.use_threads(threads)
    run = runs.open_run(run_dir)
    if disentanglement:
        with err_console.status(f"scoring the disentanglement of {run_dir}"):
            scores = dis.evaluate_run(run, n=limit or dis.DEFAULT_POINTS, seed=seed, device=device)
        if json_output:
            print(json.dumps(scores))
        else:
            out_console.print(dis.disentanglement_table(run_dir, scores))
        return
    if reconstruct < 0:
        raise VaekitError(f"--reconstruct: expected 0 or more molecules, got {reconstruct}")
    if beam_width < 1:
        raise VaekitError(f"--beam-width: expected at least 1, got {beam_width}")
    with err_console.status(f"evaluating {run_dir} ({split} split, k={k})"):
        metrics = evaluate_run(run, split=split, k=k, limit=limit, seed=seed, device=device)
    if run.model.sequences and reconstruct:
        require_chem("rdkit")
        from vaekit.chem.reconstruction import run_reconstruction

        with err_console.status(f"reconstructing {min(reconstruct, limit or reconstruct)} molecules"):
            metrics.update(run_reconstruction(run, split=split, limit=min(reconstruct, limit or reconstruct),
                                              beam_width=beam_width))
    if json_output:
        print(json.dumps(metrics))
        return
    out_console.print(evaluation_table(run_dir, metrics))
