"""The MOSES protocol at equal compute: vaekit's sequence VAE beside a plain CharRNN, same data, same budget.

    VAEKIT_DATA_DIR=../shared/data taskset -c 1 python benchmarks/molecules.py --minutes 15 --samples 2000 \\
        --ref-limit 5000 --threads 1
    VAEKIT_DATA_DIR=../shared/data python benchmarks/molecules.py --minutes 120 --samples 30000 \\
        --threads 1 --parallel   # the full budget: two hours on two cores, one each
    VAEKIT_DATA_DIR=../shared/data python benchmarks/molecules.py --minutes 1 --samples 300 \\
        --ref-limit 1000 --also beta=0.05     # a smoke run with one more vaekit variant: figures meaningless
    VAEKIT_DATA_DIR=../shared/data taskset -c 0 python benchmarks/molecules.py --minutes 20 --no-charrnn \\
        --tokens smiles --samples 5000 --ref-limit 5000 --recon 300 --threads 1 --set decoder_layers=2
                                          # one lead at a short budget, sized by its own calibration
    python benchmarks/molecules.py --sampling-speed RUN --samples 5000 --speed-threads 1 2 --repeats 3

Contenders, trained one after the other in this process on the same machine:

* ``vaekit``: ``--model seqvae`` with its defaults (its default tokens unless ``--tokens``;
  ``--set KEY=VALUE,...`` changes train / model settings, e.g. ``decoder_layers=2``, for the
  calibration too, so the budget is sized with the model it buys; ``--also KEY=VALUE,...``
  adds a variant on top of those, trained on the same molecules, e.g. ``beta=0.05`` for
  MOSES's final KL weight). vaekit trains whole epochs, so the budget is
  met by size: a calibration run (``--calibrate`` molecules, one epoch, not counted) measures
  training molecules/s, and ``--limit`` (molecules drawn with a fixed seed from MOSES train,
  10% of them for validation) is set so that ``--epochs`` epochs take ``--minutes``.
* ``charrnn`` (``benchmarks/charrnn.py``): a 2 x 512 LSTM language model over the same
  token rows (the vaekit run's own training split and vocabulary), trained for exactly the
  wall-clock seconds the first vaekit contender's epochs took.

``--parallel`` trains the two at the same time instead, each pinned to a core of its own
(the first two cores this process may use; vaekit's calibration on its core too), so a
budget takes its wall-clock once rather than twice and a change in the machine's load hits
both alike. The CharRNN then trains for ``--minutes`` (vaekit's epochs are sized to take
that long, so its row's ``train_minutes`` says how close they came). Each contender has
one core: ``--minutes 120 --parallel`` is two hours on the two cores, one core each.

Wall-clock here is the machine's: on a shared core it buys less than on an idle one, which
is why each row also gives training molecules/s and CPU seconds (the CharRNN's training loop's;
vaekit's whole ``vaekit.train`` call, data, validation, test ELBO and sampler fit included). Each
contender samples ``--samples`` molecules (temperature ``--temperature``); they are scored
with ``vaekit.chem.metrics`` against MOSES test and test-scaffolds (``--ref-limit``: random
subsets, quicker but biasing FCD upward and SNN/Frag/Scaf downward) with novelty against
the canonical MOSES training set. Reference statistics are cached (``vaekit molecules
evaluate``'s cache), so only the first run pays for them. A vaekit row adds reconstruction
of ``--recon`` held-out MOSES test molecules (exact canonical match and mean Tanimoto, greedy
and beam). ``--samplers``: each vaekit contender samples from its prior (z ~ N(0, I)), from the
mixture fitted to its training codes after training and from a flow-matching model of those
codes (``--sampler gmm`` / ``diffusion`` of ``vaekit molecules sample``), a row each, the
same model and seed. One JSON line per contender and
sampler; runs and generated files stay in ``--out`` (a new or empty folder).
Each contender's training figures also go to ``--out``'s ``trained.jsonl`` as soon as it has
trained, so a run stopped before scoring keeps them.

``--sampling-speed RUN`` skips all of the above and times only what ``vaekit molecules
sample RUN`` does (prior draws decoded and turned into canonical SMILES, the file written)
for an existing seqvae run, at each of ``--speed-threads`` torch thread counts, the counts
interleaved ``--repeats`` times so that a change in the machine's load hits every count
alike. One JSON line: molecules/s per repeat and their median for each count, a digest of
the molecules written (one digest when every count and repeat wrote the same), the load
average before and after, the machine, and milliseconds per molecule of each stage (decoder,
tokens -> SMILES, RDKit canonical SMILES) at the first thread count.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import tempfile
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from charrnn import charrnn_contender
from vaekit.data.molecules.tokens import DEFAULT_TOKENS, TOKENIZERS

from common import environment  # benchmarks/ is on sys.path when a script here runs

#: MOSES's own models (MOSES README, metrics table).
MOSES_VAE = {"valid": 0.977, "unique@10k": 0.998, "FCD/Test": 0.099, "SNN/Test": 0.626, "Frag/Test": 0.999,
             "Scaf/Test": 0.939, "IntDiv": 0.856, "Filters": 0.997, "Novelty": 0.695}
MOSES_CHARRNN = {"valid": 0.975, "unique@10k": 0.999, "FCD/Test": 0.073, "SNN/Test": 0.601, "Frag/Test": 1.000,
                 "Scaf/Test": 0.924, "IntDiv": 0.856, "Filters": 0.994, "Novelty": 0.842}
#: Each sampler's samples file in a vaekit contender's run folder.
GENERATED = {"prior": "generated.smi", "gmm": "generated_gmm.smi", "diffusion": "generated_diffusion.smi"}
#: The targets at the 2-hour, 2-core budget (30,000 samples, full references).
GOALS = {"valid": 0.99, "unique@10k": 0.998, "Novelty": 0.90, "FCD/Test": 1.0, "Filters": 0.95,
         "exact_beam": 0.60}


def subset(smiles: list[str], n: int | None, seed: int) -> list[str]:
    """``n`` random molecules (all when ``n`` is None or larger than the set), fixed by ``seed``."""
    if n is None or n >= len(smiles):
        return list(smiles)
    return [smiles[i] for i in np.random.default_rng(seed).choice(len(smiles), size=n, replace=False)]


def parse_settings(text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``beta=0.05,decoder_hidden=256`` -> (train settings, model settings), by the field's home."""
    from vaekit.training.config import TrainConfig

    train_fields = {f.name: f for f in fields(TrainConfig)}
    train, model = {}, {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"error: --set / --also: expected KEY=VALUE, got '{item}'")
        try:
            parsed: Any = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        (train if key.strip() in train_fields else model)[key.strip()] = parsed
    return train, model


def rounded(metrics: dict[str, float]) -> dict[str, float | None]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else round(v, 4) if isinstance(v, float) else v)
            for k, v in metrics.items()}


def sampling_speed(run: Path, *, samples: int, threads: list[int], repeats: int, temperature: float,
                   seed: int) -> dict[str, Any]:
    """Molecules/s of ``sample_file`` on ``run`` per torch thread count, interleaved repeats."""
    import hashlib
    import os

    from vaekit.chem.generation import sample_file

    load_before = os.getloadavg()
    rates: dict[int, list[float]] = {t: [] for t in threads}
    valid: dict[int, int] = {}
    digests: set[str] = set()  # one digest: every count and repeat wrote the same molecules
    with tempfile.TemporaryDirectory(prefix="vaekit-sampling-") as folder:
        torch.set_num_threads(threads[0])
        sample_file(run, Path(folder) / "warmup.smi", n=min(samples, 200), temperature=temperature, seed=seed,
                    progress=False)  # imports, weights and RDKit loaded before any timing
        for _ in range(repeats):
            for t in threads:
                torch.set_num_threads(t)
                done = sample_file(run, Path(folder) / f"threads{t}.smi", n=samples, temperature=temperature,
                                   seed=seed, progress=False)
                rates[t].append(round(done.per_second, 1))
                valid[t] = done.valid
                digests.add(hashlib.sha256(done.path.read_bytes()).hexdigest()[:16])
    torch.set_num_threads(threads[0])
    split = sampling_split(run, samples=samples, temperature=temperature, seed=seed)
    return {**environment(), "torch_threads": threads, "benchmark": "molecules_sampling", "run": str(run),
            "samples": samples, "temperature": temperature, "seed": seed, "repeats": repeats,
            "molecules_per_second": {str(t): {"median": float(np.median(r)), "runs": r} for t, r in rates.items()},
            "valid": {str(t): v for t, v in valid.items()}, "molecules_sha256": sorted(digests),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "ms_per_molecule": {"threads": threads[0], **split}}


def sampling_split(run: Path, *, samples: int, temperature: float, seed: int, batch_size: int = 500
                   ) -> dict[str, float]:
    """Where sampling's time goes, per molecule: the decoder (prior draw and token ids), the
    tokens -> SMILES step (SELFIES decoding) and RDKit's canonical SMILES, timed apart in
    ``sample_file``'s batches."""
    from vaekit.chem.generation import MoleculeModel
    from vaekit.data.molecules.rdkit import canonical

    molecules = MoleculeModel.load(run)
    model, generator = molecules.model, torch.Generator().manual_seed(seed)
    seconds = {"decoder": 0.0, "tokens_to_smiles": 0.0, "canonical": 0.0}
    done = 0
    while done < samples:
        m = min(batch_size, samples - done)
        began = time.perf_counter()
        ids = model.generate(model.prior_sample(m, generator=generator), method="sample", temperature=temperature,
                             generator=generator, grammar=molecules.grammar).tolist()
        decoded = time.perf_counter()
        raw = [molecules.tokenizer.detokenize(molecules.vocabulary.decode(row)) for row in ids]
        spelled = time.perf_counter()
        for smiles in raw:
            canonical(smiles)
        seconds["decoder"] += decoded - began
        seconds["tokens_to_smiles"] += spelled - decoded
        seconds["canonical"] += time.perf_counter() - spelled
        done += m
    return {k: round(v * 1000 / samples, 3) for k, v in seconds.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=120.0, help="training budget of each contender")
    parser.add_argument("--epochs", type=int, default=3, help="vaekit epochs within the budget")
    parser.add_argument("--limit", type=int, default=None, help="MOSES training molecules for vaekit (default: "
                                                                 "what --minutes allows, by calibration)")
    parser.add_argument("--calibrate", type=int, default=2000, help="molecules of the calibration epoch")
    parser.add_argument("--tokens", choices=TOKENIZERS, default=DEFAULT_TOKENS,
                        help="the token kind of both contenders (default: %(default)s, the sequence VAE's)")
    parser.add_argument("--precision", choices=["float32", "bfloat16"], default=None,
                        help="vaekit's training precision, its calibration included, so that the budget buys "
                             "what that precision trains (default: the sequence VAE's, auto)")
    parser.add_argument("--set", dest="settings", default="", metavar="KEY=VALUE,...",
                        help="settings of the vaekit contender, its calibration included (e.g. decoder_layers=2)")
    parser.add_argument("--also", action="append", default=[], metavar="KEY=VALUE,...",
                        help="another vaekit contender with these train/model settings (repeatable)")
    parser.add_argument("--no-charrnn", action="store_true", help="leave the CharRNN out")
    parser.add_argument("--parallel", action="store_true",
                        help="train the CharRNN at the same time as vaekit, each pinned to a core of its own, for "
                             "--minutes (see the docstring)")
    parser.add_argument("--samples", type=int, default=30000)
    parser.add_argument("--samplers", nargs="+", choices=list(GENERATED), default=list(GENERATED),
                        help="where each vaekit contender's latent draws come from; a row each (see the docstring)")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--grammar", action=argparse.BooleanOptionalAction, default=None,
                        help="both contenders sample held to the tokens' grammar, or not (default: as vaekit "
                             "molecules sample, held for selfies tokens only)")
    parser.add_argument("--recon", type=int, default=1000, help="held-out molecules to reconstruct (0: none)")
    parser.add_argument("--beam-width", type=int, default=5)
    parser.add_argument("--ref-limit", type=int, default=None, help="reference molecules (default: the full sets)")
    parser.add_argument("--novelty-ref", default="moses:train", help="training set for Novelty (a named set or "
                                                                      "SMILES file; smoke tests pass a small one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--n-jobs", type=int, default=1, help="worker processes for the RDKit features")
    parser.add_argument("--out", type=Path, help="folder for the runs and generated files (default: a temporary one)")
    parser.add_argument("--sampling-speed", type=Path, metavar="RUN",
                        help="only time sampling of this seqvae run (--samples molecules; see the docstring)")
    parser.add_argument("--speed-threads", type=int, nargs="+", default=[1, 2], help="--sampling-speed: torch "
                                                                                      "thread counts to time")
    parser.add_argument("--repeats", type=int, default=3, help="--sampling-speed: timings per thread count")
    args = parser.parse_args(argv)
    if args.sampling_speed is not None:
        if args.repeats < 1 or args.samples < 1 or min(args.speed_threads) < 1:
            parser.error("--repeats, --samples and --speed-threads must be positive")
        print(json.dumps(sampling_speed(args.sampling_speed, samples=args.samples, threads=args.speed_threads,
                                        repeats=args.repeats, temperature=args.temperature, seed=args.seed)),
              flush=True)
        return 0
    if args.minutes <= 0 or args.epochs < 1 or args.samples < 1:
        parser.error("--minutes, --epochs and --samples must be positive")
    if args.out is not None and args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        parser.error(f"--out {args.out}: expected a new or empty folder (the benchmark writes its runs there)")
    cores = sorted(os.sched_getaffinity(0))
    parallel = args.parallel and not args.no_charrnn
    if parallel and len(cores) < 2:
        parser.error(f"--parallel: needs two cores, this process may use {len(cores)}")
    if parallel:  # vaekit on the first core from the calibration on; the CharRNN gets the second
        os.sched_setaffinity(0, {cores[0]})
    if args.threads:
        torch.set_num_threads(args.threads)
    own_train, own_model = parse_settings(args.settings)
    variants = [("vaekit", own_train, own_model)]
    for text in args.also:  # each variant builds on --set
        train, model = parse_settings(text)
        variants.append((f"vaekit {text}", {**own_train, **train}, {**own_model, **model}))

    import vaekit
    from vaekit.chem.generation import sample_file
    from vaekit.chem.metrics import moses_metrics
    from vaekit.chem.metrics_reference import reference_stats
    from vaekit.chem.metrics_report import reference_of, training_set_of
    from vaekit.chem.reconstruction import run_reconstruction
    from vaekit.data.molecules.smiles_files import read_smiles
    from vaekit.training.runs import open_run

    folder = args.out or Path(tempfile.mkdtemp(prefix="vaekit-moses-"))
    folder.mkdir(parents=True, exist_ok=True)
    budget = args.minutes * 60
    base_train = {"seed": args.seed, **({"threads": args.threads} if args.threads else {}),
                  **({"precision": args.precision} if args.precision else {})}

    # -- the size vaekit's epochs must have to fill the budget -------------------------------
    calibration = None
    limit = args.limit
    if limit is None:
        cal = vaekit.train({"source": "moses", "tokens": args.tokens, "limit": args.calibrate},
                           {"model": "seqvae", **own_model}, {**base_train, **own_train, "epochs": 1},
                           folder / "calibration",
                           progress=False)
        rate = cal.summary["train_examples"] / cal.summary["seconds_total"]
        limit = max(args.calibrate, int(rate * budget / args.epochs / 0.9))
        calibration = {"molecules": args.calibrate, "train_molecules_per_second": round(rate, 1)}

    references = "full MOSES test / test_scaffolds" if args.ref_limit is None \
        else f"{args.ref_limit} random molecules of each reference (biased: see the docstring)"
    common = {"benchmark": "molecules_moses", "budget_minutes": args.minutes, "samples": args.samples,
              "temperature": args.temperature, "tokens": args.tokens, "references": references,
              "novelty_against": args.novelty_ref, "seed": args.seed}
    data_settings = {"source": "moses", "tokens": args.tokens, "limit": limit}
    charrnn_generated = str(folder / "charrnn.smi")
    trained_log, log_lock = folder / "trained.jsonl", threading.Lock()

    def log_trained(row: dict[str, Any]) -> None:
        """Append a contender's training figures, before any scoring (a stopped run keeps them)."""
        with log_lock, open(trained_log, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    def log_charrnn(done: Future) -> None:
        if done.exception() is None:  # a failure is raised by .result() below
            log_trained({"contender": "charrnn", **done.result()})

    parallel_charrnn = None
    if parallel:  # the CharRNN on the second core for the planned budget, vaekit on the first
        pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        parallel_charrnn = pool.submit(charrnn_contender, data_settings, budget, charrnn_generated,
                                       samples=args.samples, temperature=args.temperature, seed=args.seed,
                                       threads=args.threads, core=cores[1], grammar=args.grammar)
        parallel_charrnn.add_done_callback(log_charrnn)
        pool.shutdown(wait=False)  # the result is collected after vaekit's contenders
    rows = []
    first_run = None
    first_seconds = None
    for name, train_settings, model_settings in variants:
        model = {"model": "seqvae", **model_settings}
        train = {**base_train, "epochs": args.epochs, **train_settings}
        out = folder / name.replace(" ", "_").replace(",", "_").replace("=", "-")
        cpu = time.process_time()
        run = vaekit.train(data_settings, model, train, out, progress=False)
        cpu = time.process_time() - cpu  # the whole call: data, epochs, validation, test ELBO, GMM fit
        seconds = run.summary["seconds_total"]
        sampled = {sampler: sample_file(out, out / GENERATED[sampler], n=args.samples, temperature=args.temperature,
                                        seed=args.seed, sampler=sampler, grammar=args.grammar, progress=False)
                   for sampler in args.samplers}
        row = {**common, "contender": name}
        if args.recon:
            began = time.perf_counter()
            opened = open_run(out)
            row["reconstruction"] = rounded(run_reconstruction(opened, split="test", limit=args.recon,
                                                               beam_width=args.beam_width))
            row["reconstruction_minutes"] = round((time.perf_counter() - began) / 60, 2)
        n_train = run.summary["train_examples"]
        row.update({
            "train_minutes": round(seconds / 60, 2), "train_call_cpu_seconds": round(cpu, 1),
            "train_molecules": n_train, "epochs": args.epochs,
            "train_molecules_per_second": round(n_train * args.epochs / seconds, 1),
            "test_elbo": round(run.summary["test"]["elbo"], 3), "test_kl": round(run.summary["test"]["kl"], 3),
            "config": {"data": data_settings, "model": model, "train": train}, "calibration": calibration,
        })
        if first_run is None:
            first_run, first_seconds = run, seconds
            row.update({"moses_vae": MOSES_VAE, "goals": GOALS, **environment()})
        log_trained(row)
        for sampler, result in sampled.items():  # one row per sampler: the same model, its own samples
            rows.append({**row, "sampler": sampler, "grammar": "default" if args.grammar is None else args.grammar,
                         "sampling_molecules_per_second": round(result.per_second, 1), "generated": str(result.path)})

    if not args.no_charrnn:
        row = parallel_charrnn.result() if parallel_charrnn else charrnn_contender(
            data_settings, first_seconds, charrnn_generated, samples=args.samples, temperature=args.temperature,
            seed=args.seed, threads=args.threads, grammar=args.grammar)
        if not parallel:
            log_trained({"contender": "charrnn", **row})
        if row.pop("vocabulary") != list(first_run.data_info.vocabulary):
            raise SystemExit("error: the CharRNN did not train on the vaekit run's vocabulary")
        rows.append({**common, "contender": "charrnn", **row, "moses_charrnn": MOSES_CHARRNN})
    if parallel:
        os.sched_setaffinity(0, cores)  # scoring may use every core again (--n-jobs)

    # -- the references, once for every contender, after training (the same conditions for each)
    started = time.perf_counter()
    if args.ref_limit is None:  # the same cache entries as vaekit molecules evaluate --ref moses
        test = reference_of("moses:test", validated=False, n_jobs=args.n_jobs)
        scaffolds = reference_of("moses:test_scaffolds", validated=False, n_jobs=args.n_jobs)
    else:
        test = reference_stats(subset(read_smiles("moses:test").smiles, args.ref_limit, args.seed),
                               n_jobs=args.n_jobs)
        scaffolds = reference_stats(subset(read_smiles("moses:test_scaffolds").smiles, args.ref_limit,
                                           args.seed + 1), n_jobs=args.n_jobs)
    train_set = training_set_of(args.novelty_ref, n_jobs=args.n_jobs)
    reference_minutes = round((time.perf_counter() - started) / 60, 2)

    def score(path: Path) -> dict[str, Any]:
        began = time.perf_counter()
        metrics = moses_metrics(read_smiles(path).smiles, test=test, test_scaffolds=scaffolds, train=train_set,
                                n_jobs=args.n_jobs)
        return {"metrics": rounded(metrics), "metric_minutes": round((time.perf_counter() - began) / 60, 2)}

    for row in rows:
        row.update({**score(Path(row["generated"])), "reference_minutes": reference_minutes})
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
