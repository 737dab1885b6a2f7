"""`vaekit molecules sample | evaluate | interpolate | optimize`: thin commands over ``vaekit.chem``.

Registered on the main app in ``vaekit.cli.app``; errors surface through its ``main`` as one
line and exit status 2, like every other command. Each command imports ``vaekit.chem``
inside its body: RDKit is the optional chem extra, and ``vaekit --help`` must work without it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from vaekit.cli import options
from vaekit.cli.options import err_console
from vaekit.cli.options import out_console as console
from vaekit.errors import VaekitError
from vaekit.sharing import resolve_run_path
from vaekit.training.runs import new_output_paths

app = typer.Typer(
    name="molecules",
    help="Molecules: sample a sequence-VAE run, score SMILES with the MOSES metrics, interpolate between "
         "molecules and optimise properties in the latent space (needs pip install 'vaekit\\[chem]').\n\n"
         "Example: vaekit train moses --model seqvae --epochs 5 --out runs/moses && "
         "vaekit molecules sample runs/moses -n 30000 -o gen.smi && vaekit molecules evaluate gen.smi --ref moses",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command(epilog="Examples:  vaekit molecules evaluate gen.smi --ref moses  |  "
                    "vaekit molecules evaluate gen.smi --ref moses --limit 1000 --json  |  "
                    "vaekit molecules evaluate gen.csv --ref my_actives.smi --train my_train.csv")
def evaluate(
    generated: Annotated[str, typer.Argument(metavar="GEN", help="Generated SMILES: .smi/.txt (one per line) or "
                                                                 ".csv/.tsv with a SMILES column, optionally .gz.")],
    ref: Annotated[str, typer.Option(help="moses (MOSES test + scaffold test, train for novelty) or a reference "
                                          "SMILES file / named set, scored as /Test.")] = "moses",
    train: Annotated[str, typer.Option(help="Training set for Novelty: auto (MOSES train with --ref moses, else "
                                            "none), none, or a SMILES file / named set.")] = "auto",
    limit: Annotated[Optional[int], typer.Option(help="Score only the first N generated SMILES.")] = None,
    n_jobs: Annotated[int, typer.Option(help="Worker processes for the RDKit work.")] = 1,
    device: options.Device = options.DEFAULT_DEVICE,
    threads: options.Threads = "auto",
    json_output: Annotated[bool, typer.Option("--json", help="Print the metrics as one JSON object.")] = False,
) -> None:
    """Score generated molecules with the MOSES metrics (validity, uniqueness, novelty, FCD, SNN, Frag, Scaf, ...).

    Reference statistics (ChemNet activations, fingerprints, fragment and scaffold counts, the
    canonical training set) are computed on first use and cached, keyed by each reference file's
    checksum: the first run against MOSES (2 x 176k reference molecules, 1.6M training molecules)
    takes about an hour on one CPU core, most of it ChemNet; --n-jobs and a GPU shorten it. Later
    runs score only the generated molecules.
    """
    from vaekit.extras import require_chem

    options.use_threads(threads)
    require_chem("rdkit")
    require_chem("fcd")
    from vaekit.chem.metrics_reference import reporting_progress
    from vaekit.chem.metrics_report import describe_metric, evaluate_file

    with _molecule_progress() as report, reporting_progress(report):
        result = evaluate_file(generated, ref=ref, train=train, limit=limit, n_jobs=n_jobs,
                               device=options.device_or_none(device))  # None: its own auto
    if json_output:
        print(json.dumps(result.to_dict()))
        return
    table = Table("metric", "value", "better", "meaning", title=f"MOSES metrics of {result.generated} "
                  f"({result.scored} SMILES)")
    for key, value in result.metrics.items():
        better, meaning = describe_metric(key)
        table.add_row(key, "n/a" if value != value else f"{value:.4f}", better, meaning)
    console.print(table)
    console.print("references: " + ", ".join(f"{k} = {v}" for k, v in result.references.items()))
    for note in result.notes:
        console.print(f"note: {note}")


@app.command(epilog="Examples:  vaekit molecules sample runs/moses -n 30000 -o gen.smi  |  "
                    "vaekit molecules sample runs/moses -n 1000 -o greedy.smi --method greedy  |  "
                    "vaekit molecules sample runs/zinc -n 500 -o cool.smi --temperature 0.7 --seed 3  |  "
                    "vaekit molecules sample runs/moses -n 30000 -o gmm.smi --sampler gmm")
def sample(
    run: Annotated[Path, typer.Argument(metavar="RUN", help="A sequence-VAE run directory.")],
    n: Annotated[int, typer.Option("-n", help="How many molecules.")] = 1000,
    out: Annotated[Optional[Path], options.out("SMILES file to write (one per line; canonical when valid, the raw "
                                               "string otherwise); default RUN/samples.smi, or samples-2.smi, ... "
                                               "beside an existing one (nothing is replaced).")] = None,
    method: Annotated[str, typer.Option(help="sample (ancestral, at --temperature), greedy or beam.")] = "sample",
    temperature: Annotated[float, typer.Option(help="method sample: softmax temperature of the decoder.")] = 1.0,
    seed: Annotated[int, options.seed("Random seed (same seed, same molecules).")] = 0,
    sampler: Annotated[str, typer.Option(help="prior (z ~ N(0, I)), gmm (a mixture fitted to the training "
                                              "molecules' codes) or diffusion (a flow-matching model of them); "
                                              "each fitted on first use (minutes) and saved in the run.")] = "prior",
    batch_size: Annotated[int, typer.Option(help="Latents decoded at once.")] = 500,
    grammar: Annotated[Optional[bool], typer.Option(help="Hold decoding to the tokens' grammar (every ring bond "
                                                         "and branch closed, no atom over its valence) or not; "
                                                         "default: held for selfies tokens only (with smiles, it "
                                                         "turns failing strings into unusual molecules).")
                   ] = None,
    quiet: Annotated[bool, typer.Option(help="No progress line.")] = False,
    overwrite: options.Overwrite = False,
    threads: options.Threads = "auto",
) -> None:
    """Decode latent draws into molecules, showing the valid fraction as it goes; prints molecules/s."""
    from vaekit.chem.generation import sample_file

    options.writing(threads, out, overwrite)
    if out is None:
        out = _default_output(run, "samples.smi")
    done = sample_file(run, out, n=n, method=method, temperature=temperature, seed=seed, batch_size=batch_size,
                       sampler=sampler, grammar=grammar, progress=not quiet)
    console.print(f"{done.valid} of {done.n} valid ({done.valid / done.n:.1%}), {done.unique} unique; "
                  f"{done.per_second:.0f} molecules/s; wrote {done.path}")


@app.command(epilog="Examples:  vaekit molecules interpolate runs/zinc 'CCO' 'c1ccccc1O' -o path.png  |  "
                    "vaekit molecules interpolate runs/zinc 'CC(=O)Oc1ccccc1C(=O)O' 'CC(=O)Nc1ccc(O)cc1' "
                    "--steps 12 --method lerp --json")
def interpolate(
    run: Annotated[Path, typer.Argument(metavar="RUN", help="A sequence-VAE run directory.")],
    smiles_a: Annotated[str, typer.Argument(metavar="SMILES_A", help="Start molecule.")],
    smiles_b: Annotated[str, typer.Argument(metavar="SMILES_B", help="End molecule.")],
    steps: Annotated[int, typer.Option(help="Points on the path, both ends included.")] = 8,
    method: Annotated[str, typer.Option(help="slerp (along the prior's shell) or lerp (straight line).")] = "slerp",
    out: Annotated[Optional[Path], options.out("PNG grid to write (default RUN/interpolation.png, or "
                                               "interpolation-2.png, ... beside an existing one).")] = None,
    per_row: Annotated[int, typer.Option(help="Molecules per row of the grid.")] = 5,
    json_output: Annotated[bool, typer.Option("--json", help="Print the path as one JSON object.")] = False,
    overwrite: options.Overwrite = False,
    threads: options.Threads = "auto",
) -> None:
    """Decode the latent path between two molecules; draw it with Tanimoto similarities to both ends."""
    from vaekit.chem.generation import MoleculeModel
    from vaekit.chem.interpolation import interpolate as walk
    from vaekit.chem.interpolation import save_grid

    options.writing(threads, out, overwrite)
    if out is None:  # in the run, replacing nothing there; a read-only run is refused before any work
        out = _default_output(run, "interpolation.png")
    model = MoleculeModel.load(run)
    result = walk(model, smiles_a, smiles_b, steps=steps, method=method)
    path = save_grid(result, out, per_row=per_row)
    if json_output:
        print(json.dumps({**result.to_dict(), "image": str(path)}))
        return
    table = Table("step", "t", "sim A", "sim B", title=escape(f"{method} from {result.start} to {result.end}"))
    table.add_column("SMILES", overflow="fold")
    for i, step in enumerate(result.steps):
        if step.smiles is None:
            table.add_row(str(i), f"{step.t:.2f}", "", "", "(invalid)")
        else:
            table.add_row(str(i), f"{step.t:.2f}", f"{step.similarity_a:.2f}", f"{step.similarity_b:.2f}",
                          escape(step.smiles))
    console.print(table)
    console.print(escape(f"{result.valid} of {steps} steps valid; wrote {path}"))


@app.command(epilog="Examples:  vaekit molecules optimize runs/zinc --objective plogp --budget 500  |  "
                    "vaekit molecules optimize runs/zinc --objective qed --method gradient --seeds seeds.smi "
                    "--top 20 -o top.csv  |  vaekit molecules optimize runs/zinc --objective plogp --seeds lead.smi "
                    "--min-similarity 0.4  |  "
                    "vaekit molecules optimize runs/assay --objective pIC50 --method bo --json")
def optimize(
    run: Annotated[Path, typer.Argument(metavar="RUN", help="A sequence-VAE run directory.")],
    objective: Annotated[str, typer.Option(help="qed, logp, sas (minimised), plogp (JT-VAE's penalized logP) or a "
                                                "column the run's property head predicts.")],
    budget: Annotated[int, typer.Option(help="Decoded molecules the search may score.")] = 100,
    method: Annotated[str, typer.Option(help="cmaes (CMA-ES over z), bo (Bayesian optimisation, expected "
                                             "improvement) or gradient (ascent on the property head).")] = "cmaes",
    seeds: Annotated[Optional[str], typer.Option(help="Molecules to start from: .smi/.csv file or a named set "
                                                      "(default: prior draws).")] = None,
    max_seeds: Annotated[int, typer.Option(help="Use at most this many seeds (the first ones).")] = 100,
    min_similarity: Annotated[float, typer.Option(min=0.0, max=1.0, help="Keep only molecules at least this similar "
                                                  "(Tanimoto, Morgan r=2) to their nearest seed; the search treats "
                                                  "the others as failures. Needs --seeds; 0: no constraint.")] = 0.0,
    top: Annotated[int, typer.Option(help="How many of the best molecules to report.")] = 10,
    out: Annotated[Optional[Path], options.out("Write the top molecules to this CSV.")] = None,
    step_size: Annotated[float, typer.Option(help="gradient: length of one step in latent units.")] = 0.5,
    sigma: Annotated[float, typer.Option(help="cmaes: initial step size; bo: spread of local candidates.")] = 0.5,
    seed: Annotated[int, options.seed("Random seed (same seed, same molecules).")] = 0,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")] = False,
    overwrite: options.Overwrite = False,
    threads: options.Threads = "auto",
) -> None:
    """Search the latent space for molecules with a better property, scored by RDKit on each decoded molecule."""
    from vaekit.chem.generation import MoleculeModel
    from vaekit.chem.optimize import METHODS, write_csv
    from vaekit.chem.optimize import optimize as search
    from vaekit.data.molecules.smiles_files import read_smiles, validate

    options.use_threads(threads)
    if method not in METHODS:
        raise VaekitError(f"--method: expected {', '.join(METHODS)}, got '{method}'")
    if out is not None and out.suffix.lower() != ".csv":
        raise VaekitError(f"--out: expected a .csv file, got '{out}'")
    if min_similarity > 0 and seeds is None:
        raise VaekitError(f"--min-similarity {min_similarity}: needs --seeds (similarity is measured to the nearest "
                          "seed)")
    options.new_files(out, overwrite)
    seed_smiles = None
    if seeds is not None:
        seed_smiles, _, report = validate(read_smiles(seeds))
        if report and not json_output:
            console.print(escape(f"warning: {report}; they are left out"))
        if len(seed_smiles) > max_seeds and not json_output:
            console.print(f"using the first {max_seeds} of {len(seed_smiles)} seeds (--max-seeds)")
        seed_smiles = seed_smiles[:max_seeds]
    model = MoleculeModel.load(run)
    result = search(model, objective, budget=budget, seeds=seed_smiles, method=method, top=top, seed=seed,
                    step_size=step_size, sigma=sigma, min_similarity=min_similarity)
    if out is not None:
        write_csv(result, out)
    if json_output:
        print(json.dumps(result.to_dict()))
        return
    predicted = result.objective not in ("qed", "logp", "sas", "plogp")   # a head column: its prediction first
    headers = [f"{result.objective} (predicted)"] * predicted + ["QED", "logP", "SAS", "pLogP", "sim to seed"]
    table = Table("#", *headers, title=f"top molecules by {result.objective} ({method}; RDKit values)")
    table.add_column("SMILES", overflow="fold")
    for rank, c in enumerate(result.candidates, 1):
        p = c.properties
        table.add_row(str(rank), *[f"{c.value:.3f}"] * predicted, f"{p['qed']:.3f}", f"{p['logp']:.2f}",
                      f"{p['sas']:.2f}", f"{p['plogp']:.2f}", "" if c.similarity is None else f"{c.similarity:.2f}",
                      escape(c.smiles) + (" (seed)" if c.is_seed else ""))
    console.print(table)
    best_seed = result.best_seed_value
    constrained = f", {result.feasible} with similarity >= {min_similarity:g}" if min_similarity > 0 else ""
    console.print(f"{result.evaluations} molecules decoded ({result.valid} valid, {result.unique} unique{constrained})"
                  + ("" if best_seed is None else f"; best seed {result.objective} {best_seed:.3f}")
                  + ("" if out is None else f"; wrote {out}"))


def _default_output(run: Path, name: str) -> Path:
    """Where a command writes when the user gave no --out: in the run, never over a file there."""
    return new_output_paths(resolve_run_path(run), name)[0]


@contextmanager
def _molecule_progress() -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar per pass over molecules (what it does, how many, time left), under a
    line saying that reference statistics are cached: the first run on MOSES takes minutes."""
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        bar.add_task("scoring (reference statistics are cached after the first run)", total=None)
        tasks: dict[tuple[str, int], TaskID] = {}

        def report(what: str, done: int, total: int) -> None:
            key = (what, total)
            if key not in tasks or bar.tasks[tasks[key]].finished:
                tasks[key] = bar.add_task(what, total=total)
            bar.update(tasks[key], completed=done)

        yield report
