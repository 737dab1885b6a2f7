"""A trained sequence-VAE run as a molecule model: SMILES in, latents out, and back.

``MoleculeModel`` is what the molecule tools (sampling, interpolation, optimisation) use:
it owns the run's tokenizer and vocabulary, so callers deal in SMILES strings and latent
tensors only. Decoding goes through the model's ``generate`` (greedy, sampled with a
temperature, or beam search: ``vaekit.models.autoregressive``), held to the grammar of
its tokens where that is asked for or the default (``vaekit.data.molecules.grammar``:
SMILES, no ring bond left open and no atom over its valence; SELFIES, never the empty
molecule), and RDKit, and every decoded molecule is returned as canonical SMILES, or
``None`` where the tokens do not spell a valid molecule.

``sample_file`` is ``vaekit molecules sample``: prior draws decoded in batches, the valid
fraction shown as it goes, the file written atomically at the end.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from vaekit.atomic import atomic_write_text
from vaekit.data.molecules.grammar import grammar_for
from vaekit.data.molecules.sequences import encode_rows
from vaekit.data.molecules.tokens import Vocabulary, get_tokenizer
from vaekit.errors import VaekitError
from vaekit.latent.sampling import check_sampler, preparing, run_sampler
from vaekit.models.base import Model
from vaekit.training.runs import load, open_run

#: Line written for a generated sequence that decodes to no molecule at all (RDKit cannot
#: parse it, so a metrics tool counts it as invalid rather than skipping an empty line).
EMPTY_MOLECULE = "<empty>"
#: Molecules encoded or decoded per forward pass (bounds memory for long lists).
CHUNK = 1024


class MoleculeModel:
    """A trained sequence VAE, ready to encode SMILES and decode latents into molecules."""

    model: Model
    latent_dim: int
    property_names: list[str]

    def __init__(self, model: Model, *, grammar: bool | None = None) -> None:
        """``grammar``: hold decoding to the tokens' grammar (True), decode from the model alone
        (False), or None: held for SELFIES only
        (``vaekit.data.molecules.grammar.HELD_BY_DEFAULT``)."""
        if not model.sequences:
            raise VaekitError(f"model '{model.config.model}' is not a sequence VAE; molecule tools need a run of "
                              "vaekit train ... --model seqvae")
        self.model = model.eval()
        config = model.config
        self.latent_dim = config.latent_dim
        self.property_names = list(config.property_names)
        self.vocabulary = Vocabulary(list(config.vocabulary), config.tokenizer)
        self.tokenizer = get_tokenizer(config.tokenizer)
        self.grammar = grammar_for(config.tokenizer, self.vocabulary.tokens, model.max_length, use=grammar)

    @classmethod
    def load(cls, run_dir: str | Path) -> MoleculeModel:
        """The best weights of a ``--model seqvae`` run (or a directory written by ``model.save``)."""

        return cls(load(run_dir))

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def rows(self, smiles: Sequence[str]) -> torch.Tensor:
        """The model's input rows for ``smiles`` (canonicalised, tokenised, padded)."""

        c = self.model.config
        return encode_rows(smiles, self.tokenizer, self.vocabulary, c.max_length, len(c.property_names))

    @torch.no_grad()
    def encode(self, smiles: Sequence[str]) -> torch.Tensor:
        """Posterior means ``(N, latent_dim)``; an invalid SMILES or unknown token is a VaekitError."""
        if not len(smiles):
            return torch.zeros(0, self.latent_dim, device=self.device)
        rows = self.rows(smiles)  # every molecule checked before any is encoded
        return torch.cat([self.model.encode(rows[i:i + CHUNK].to(self.device)).mean
                          for i in range(0, len(rows), CHUNK)])

    def decode_strings(self, z: torch.Tensor, *, method: str = "greedy", temperature: float = 1.0,
                       beam_width: int = 5, generator: torch.Generator | None = None) -> list[str]:
        """The raw decoded strings (SMILES as the tokens spell them, not yet checked)."""
        out = []
        for i in range(0, len(z), CHUNK):
            ids = self.model.generate(z[i:i + CHUNK], method=method, temperature=temperature, beam_width=beam_width,
                                      generator=generator, grammar=self.grammar)
            out += [self.tokenizer.detokenize(self.vocabulary.decode(row)) for row in ids.tolist()]
        return out

    def decode(self, z: torch.Tensor, *, method: str = "greedy", temperature: float = 1.0,
               beam_width: int = 5, generator: torch.Generator | None = None) -> list[str | None]:
        """Canonical SMILES of the molecules decoded from ``z`` ``(N, latent_dim)``; None where invalid."""
        from vaekit.data.molecules.rdkit import canonical

        return [canonical(s) for s in self.decode_strings(z, method=method, temperature=temperature,
                                                          beam_width=beam_width, generator=generator)]

    def sample(self, n: int, *, temperature: float = 1.0, method: str = "sample",
               generator: torch.Generator | None = None) -> list[str | None]:
        """Decode ``n`` draws z ~ N(0, I); ``temperature`` scales the decoder's softmax (``sample``)."""
        z = self.model.prior_sample(n, generator=generator)
        return self.decode(z, method=method, temperature=temperature, generator=generator)

    def predict_properties(self, z: torch.Tensor) -> torch.Tensor | None:
        """The property head's prediction ``(N, len(property_names))`` in the data's units,
        differentiable in z; None when the run has no property head."""
        return self.model.predict_properties(z.to(self.device))


@dataclass
class SampleResult:
    path: Path
    n: int
    valid: int
    unique: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.n / self.seconds if self.seconds > 0 else float("inf")


def sample_file(run_dir: str | Path, output: str | Path, *, n: int, method: str = "sample", temperature: float = 1.0,
                seed: int = 0, batch_size: int = 500, sampler: str = "prior", grammar: bool | None = None,
                progress: bool = True) -> SampleResult:
    """Decode ``n`` latent draws of a run into ``output`` (one SMILES per line: canonical when
    valid, the raw string otherwise, so validity can be scored from the file).

    ``sampler``: ``prior`` (z ~ N(0, I)), ``gmm`` (a mixture fitted to the training set's
    posterior means, ``vaekit.latent.gmm``) or ``diffusion`` (a flow-matching model of them,
    ``vaekit.latent.diffusion``): the last two draw from where the encoder actually puts
    molecules, which a VAE whose aggregate posterior does not fill the prior decodes better.
    Each is fitted and saved in the run on first use. ``grammar``: ``MoleculeModel``'s."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from vaekit.data.molecules.rdkit import canonical

    output = Path(output)
    if n < 1:
        raise VaekitError(f"-n: expected at least 1 molecule, got {n}")
    if batch_size < 1:
        raise VaekitError(f"--batch-size: expected at least 1, got {batch_size}")
    check_sampler(sampler)
    if output.is_dir():
        raise VaekitError(f"{output}: is a folder; expected a file name such as gen.smi")
    if not output.parent.is_dir():
        raise VaekitError(f"{output}: the folder {output.parent} does not exist")
    run = open_run(run_dir)  # the model and, for a fitted sampler, its training codes: loaded once
    molecules = MoleculeModel(run.model, grammar=grammar)
    generator = torch.Generator(device=molecules.device).manual_seed(seed)
    with Console(stderr=True).status(preparing(sampler)) if progress and sampler != "prior" else nullcontext():
        chosen = run_sampler(run, sampler)
    codes = None if isinstance(chosen, str) else chosen.sample(n, seed=seed).to(molecules.device)
    lines: list[str] = []
    distinct: set[str] = set()
    valid = 0
    bar = Progress(TextColumn("sampling"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("valid {task.fields[valid]:.1%}"), TimeElapsedColumn(), disable=not progress,
                   transient=True)
    started = time.perf_counter()
    with bar:
        task = bar.add_task("sample", total=n, valid=0.0)
        while len(lines) < n:
            m = min(batch_size, n - len(lines))
            z = molecules.model.prior_sample(m, generator=generator) if codes is None else \
                codes[len(lines):len(lines) + m]
            for raw in molecules.decode_strings(z, method=method, temperature=temperature, generator=generator):
                smiles = canonical(raw)
                if smiles is not None:
                    valid += 1
                    distinct.add(smiles)
                lines.append(smiles if smiles is not None else (raw or EMPTY_MOLECULE))
            bar.update(task, completed=len(lines), valid=valid / len(lines))
    seconds = time.perf_counter() - started
    atomic_write_text(output, "\n".join(lines) + "\n")
    return SampleResult(output, n, valid, len(distinct), seconds)
