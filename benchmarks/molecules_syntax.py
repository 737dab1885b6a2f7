"""SMILES decoding with and without the syntax constraint, on one trained SMILES run.

    VAEKIT_DATA_DIR=../shared/data taskset -c 1 python benchmarks/molecules_syntax.py RUN --samples 5000 \
        --ref-limit 5000 --recon 300 --threads 1

For each setting (constraint off, then on), from the same run and seed:

* ``--samples`` prior draws decoded as ``vaekit molecules sample`` does (``sample_file``), timed
  ``--repeats`` times with the two settings interleaved (a change in the machine's load hits
  both alike): molecules/s per repeat and their median;
* the valid share (RDKit parses and sanitizes), unique valid molecules, and why the others
  fail (``failure``: RDKit's own reason);
* the MOSES metrics of the samples, scored as ``benchmarks/molecules.py`` scores them
  (``--ref-limit`` random molecules of MOSES test and test-scaffolds, novelty against the
  canonical MOSES training set; reference statistics come from the cache);
* greedy and beam reconstruction of the first ``--recon`` molecules of the run's test split.

One JSON line per setting. Nothing is written into RUN.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from molecules import rounded, subset  # benchmarks/ is on sys.path when a script here runs

from common import environment

#: RDKit's parse errors, by the words of its message, under the names of the failure table.
PARSE_ERRORS = {"unclosed ring": "ring", "parentheses": "parens", "duplicates bond": "ring_bond",
                "to itself": "ring_bond", "syntax error": "syntax"}
#: RDKit's sanitization problems (``Chem.DetectChemistryProblems``), likewise.
SANITIZE_ERRORS = {"KekulizeException": "kekulize", "AtomKekulizeException": "kekulize",
                   "AtomValenceException": "valence"}


class _Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def failures(lines: list[str]) -> Counter[str]:
    """Why each invalid SMILES of ``lines`` fails: ``kekulize``, ``valence`` (sanitization),
    ``ring`` (a ring-bond label left open), ``ring_bond`` (a ring closure on its own atom or
    doubling a bond), ``parens``, ``syntax`` (e.g. a bond at the end), ``empty`` or ``other``."""
    from rdkit import Chem, rdBase

    from vaekit.data.molecules.rdkit import to_mol

    rdBase.LogToPythonLogger()
    log, messages = logging.getLogger("rdkit"), _Messages()
    handlers, propagate = log.handlers[:], log.propagate
    log.handlers, log.propagate = [messages], False
    kinds: Counter[str] = Counter()
    try:
        for smiles in lines:
            if to_mol(smiles) is not None:
                continue
            messages.lines.clear()
            mol = Chem.MolFromSmiles(smiles, sanitize=False)
            if mol is None:
                text = " ".join(messages.lines)
                kinds[next((k for words, k in PARSE_ERRORS.items() if words in text), "other")] += 1
            elif mol.GetNumAtoms() == 0:
                kinds["empty"] += 1
            else:
                problems = [p.GetType() for p in Chem.DetectChemistryProblems(mol)]
                kinds[SANITIZE_ERRORS.get(problems[0], "other") if problems else "other"] += 1
    finally:
        log.handlers, log.propagate = handlers, propagate
        rdBase.LogToCppStreams()
    return kinds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a seqvae run trained on SMILES tokens")
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3, help="timings per setting, interleaved")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ref-limit", type=int, default=5000, help="reference molecules (0: the full sets)")
    parser.add_argument("--novelty-ref", default="moses:train")
    parser.add_argument("--recon", type=int, default=300, help="test molecules to reconstruct (0: none)")
    parser.add_argument("--beam-width", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n-jobs", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from vaekit.chem.generation import sample_file
    from vaekit.chem.metrics import moses_metrics
    from vaekit.chem.metrics_reference import reference_stats
    from vaekit.chem.metrics_report import reference_of, training_set_of
    from vaekit.chem.reconstruction import run_reconstruction
    from vaekit.data.molecules.smiles_files import read_smiles
    from vaekit.training.runs import open_run

    settings = {"off": False, "on": True}
    rows: dict[str, dict[str, Any]] = {name: {} for name in settings}
    with tempfile.TemporaryDirectory(prefix="vaekit-syntax-") as folder:
        sample_file(args.run, Path(folder) / "warmup.smi", n=min(args.samples, 200), seed=args.seed,
                    progress=False)  # imports, weights and RDKit loaded before any timing
        rates: dict[str, list[float]] = {name: [] for name in settings}
        for _ in range(args.repeats):
            for name, syntax in settings.items():
                done = sample_file(args.run, Path(folder) / f"{name}.smi", n=args.samples, method="sample",
                                   temperature=args.temperature, seed=args.seed, progress=False, syntax=syntax)
                rates[name].append(round(done.per_second, 1))
                rows[name].update(valid=done.valid / done.n, unique=done.unique)
        lines = {name: (Path(folder) / f"{name}.smi").read_text().splitlines() for name in settings}

    if args.ref_limit:
        test = reference_stats(subset(read_smiles("moses:test").smiles, args.ref_limit, args.seed), n_jobs=args.n_jobs)
        scaffolds = reference_stats(subset(read_smiles("moses:test_scaffolds").smiles, args.ref_limit, args.seed + 1),
                                    n_jobs=args.n_jobs)
    else:
        test = reference_of("moses:test", validated=False, n_jobs=args.n_jobs)
        scaffolds = reference_of("moses:test_scaffolds", validated=False, n_jobs=args.n_jobs)
    train_set = training_set_of(args.novelty_ref, n_jobs=args.n_jobs)
    opened = open_run(args.run) if args.recon else None
    for name, syntax in settings.items():
        row = rows[name]
        row.update(failures=dict(failures(lines[name]).most_common()),
                   molecules_per_second={"median": float(np.median(rates[name])), "runs": rates[name]})
        row["metrics"] = rounded(moses_metrics(lines[name], test=test, test_scaffolds=scaffolds, train=train_set,
                                               n_jobs=args.n_jobs))
        if opened is not None:
            row["reconstruction"] = rounded(run_reconstruction(opened, split="test", limit=args.recon,
                                                               beam_width=args.beam_width, syntax=syntax))
        print(json.dumps({"benchmark": "molecules_syntax", "run": str(args.run), "syntax": name,
                          "samples": args.samples, "seed": args.seed, "temperature": args.temperature,
                          "ref_limit": args.ref_limit, **rounded(row), **environment()}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
