"""The equal-compute peer of benchmarks/molecules.py: a plain token-level LSTM language model (CharRNN).

MOSES's strongest baseline (Segler et al. 2018; MOSES's CharRNN is a 3 x 768 LSTM trained on
a GPU for many epochs) reduced to what fits the same CPU budget as vaekit's sequence VAE:
the same training rows (vaekit's token ids: bos, tokens, eos, padding), the same tokenizer
and vocabulary, trained for a wall-clock budget rather than a number of epochs, with Adam
and a cosine learning rate over the budget's elapsed fraction. It samples with vaekit's own
decoding (``vaekit.models.autoregressive.decode``: the same temperature, the same rule that
a SELFIES string starts with an atom), so the two contenders differ only in the model.

Kept in benchmarks/ on purpose: it is a yardstick for vaekit's molecule model, not a feature.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class CharRNNConfig:
    embedding_dim: int = 64
    hidden: int = 512
    layers: int = 2
    dropout: float = 0.2
    batch_size: int = 128
    lr: float = 1e-3
    grad_clip: float = 5.0


class CharRNN(nn.Module):
    """An LSTM over token ids that predicts the next token; a ``StepDecoder`` for vaekit's decoding."""

    pad_id, bos_id, eos_id = 0, 1, 2

    def __init__(self, vocab: int, max_length: int, config: CharRNNConfig) -> None:
        super().__init__()
        self.config = config
        self.max_length = max_length
        self.embedding = nn.Embedding(vocab, config.embedding_dim, padding_idx=self.pad_id)
        self.lstm = nn.LSTM(config.embedding_dim, config.hidden, num_layers=config.layers, batch_first=True,
                            dropout=config.dropout if config.layers > 1 else 0.0)
        self.to_logits = nn.Linear(config.hidden, vocab)

    def nll(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed negative log-likelihood of tokens 1.. (eos included, padding not) and the token count."""
        out, _ = self.lstm(self.embedding(ids[:, :-1]))
        logits = self.to_logits(out)
        target = ids[:, 1:]
        mask = target != self.pad_id
        losses = nn.functional.cross_entropy(logits.transpose(1, 2), target, reduction="none")
        return (losses * mask).sum(), mask.sum()

    # -- vaekit.models.autoregressive.StepDecoder ------------------------------------------
    def start(self, z: torch.Tensor) -> None:
        return None

    def step(self, tokens: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None
             ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        out, state = self.lstm(self.embedding(tokens).unsqueeze(1), state)
        return self.to_logits(out[:, 0]), state

    def select(self, state: tuple[torch.Tensor, torch.Tensor], index: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        return state[0][:, index], state[1][:, index]


def _trimmed(rows: torch.Tensor) -> torch.Tensor:
    """Token ids of a batch of rows, cut after the longest sequence's eos."""
    ids = rows.long()
    length = int(((ids != CharRNN.pad_id).sum(1)).max())
    return ids[:, :length]


def _batches(lengths: torch.Tensor, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A shuffled epoch of batches of similar length (buckets of 50 batches sorted by length),
    the same bucketing vaekit's trainer uses for sequences."""
    perm = torch.randperm(len(lengths), generator=generator)
    bucket = batch_size * 50
    batches = []
    for s in range(0, len(perm), bucket):
        part = perm[s:s + bucket]
        part = part[torch.sort(lengths[part], stable=True).indices]
        batches += list(part.split(batch_size))
    order = torch.randperm(len(batches), generator=generator)
    return [batches[i] for i in order]


def train_charrnn(train: torch.Tensor, val: torch.Tensor | None, *, vocab: int, max_length: int, seconds: float,
                  config: CharRNNConfig | None = None, seed: int = 0) -> tuple[CharRNN, dict]:
    """Train on the token rows ``train`` ``(N, max_length)`` for ``seconds`` of wall-clock time
    (the step that crosses the budget is the last); returns the model and its figures."""
    config = config or CharRNNConfig()
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = CharRNN(vocab, max_length, config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    ids = train[:, :max_length].long()
    lengths = (ids != CharRNN.pad_id).sum(1)
    started = time.perf_counter()
    cpu_started = time.process_time()
    steps = seen = 0
    total_nll = total_tokens = 0.0
    model.train()
    done = False
    while not done:
        for batch in _batches(lengths, config.batch_size, generator):
            elapsed = time.perf_counter() - started
            if elapsed >= seconds:
                done = True
                break
            for group in optimizer.param_groups:  # cosine over the budget's elapsed fraction
                group["lr"] = config.lr * 0.5 * (1 + math.cos(math.pi * min(elapsed / seconds, 1.0)))
            nll, tokens = model.nll(_trimmed(ids[batch]))
            loss = nll / len(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            steps += 1
            seen += len(batch)
            total_nll += float(nll.detach())
            total_tokens += float(tokens)
    train_seconds = time.perf_counter() - started
    figures = {"train_seconds": round(train_seconds, 1),
               "train_cpu_seconds": round(time.process_time() - cpu_started, 1),
               "steps": steps, "molecules_seen": seen, "epochs": round(seen / len(ids), 3),
               "train_molecules_per_second": round(seen / train_seconds, 1),
               "train_nll_per_token": round(total_nll / max(total_tokens, 1.0), 4),
               "parameters": sum(p.numel() for p in model.parameters())}
    model.eval()
    if val is not None and len(val):
        with torch.no_grad():
            nll = tokens = 0.0
            for i in range(0, len(val), 1024):
                a, b = model.nll(_trimmed(val[i:i + 1024, :max_length]))
                nll, tokens = nll + float(a), tokens + float(b)
        figures["val_nll_per_molecule"] = round(nll / len(val), 4)
        figures["val_nll_per_token"] = round(nll / tokens, 4)
    return model, figures


@torch.no_grad()
def sample_charrnn(model: CharRNN, n: int, *, tokenizer, vocabulary, temperature: float = 1.0, seed: int = 0,
                   batch_size: int = 500, grammar: bool | None = None) -> tuple[list[str], float]:
    """``n`` sampled molecules (canonical SMILES, or the raw string / ``<empty>`` when invalid,
    as ``vaekit molecules sample`` writes them) and molecules per second."""
    from vaekit.chem.generation import EMPTY_MOLECULE
    from vaekit.data.molecules.grammar import grammar_for
    from vaekit.data.molecules.rdkit import canonical
    from vaekit.models.autoregressive import decode

    rules = grammar_for(tokenizer.name, vocabulary.tokens, model.max_length, use=grammar)  # as vaekit's
    generator = torch.Generator().manual_seed(seed)
    lines: list[str] = []
    started = time.perf_counter()
    while len(lines) < n:
        m = min(batch_size, n - len(lines))
        ids = decode(model, torch.zeros(m, 0), method="sample", temperature=temperature, generator=generator,
                     grammar=rules)
        for row in ids.tolist():
            raw = tokenizer.detokenize(vocabulary.decode(row))
            smiles = canonical(raw)
            lines.append(smiles if smiles is not None else (raw or EMPTY_MOLECULE))
    return lines, n / (time.perf_counter() - started)


def charrnn_contender(data: dict, seconds: float, generated: str, *, samples: int, temperature: float = 1.0,
                      seed: int = 0, threads: int | None = None, core: int | None = None, grammar: bool | None = None
                      ) -> dict:
    """The CharRNN's part of the benchmark, runnable in a process of its own: load the training
    split that ``vaekit.train`` makes of the data settings ``data`` (the split depends only on
    them), train for ``seconds``, write ``samples`` molecules to ``generated``; returns the
    row's figures and the vocabulary, so that the caller can check it is the vaekit run's.
    ``core``: pin this process to that CPU first (``--parallel``); ``grammar``: sample held to the
    tokens' grammar or not, as vaekit's samples (None: its default for the tokens)."""
    import os

    if core is not None:
        os.sched_setaffinity(0, {core})
    if threads:
        torch.set_num_threads(threads)
    import vaekit
    from vaekit.atomic import atomic_write_text
    from vaekit.data.molecules.tokens import Vocabulary, get_tokenizer

    bundle = vaekit.data.load(**data)
    info = bundle.info
    vocabulary = Vocabulary(list(info.vocabulary), info.tokenizer)
    config = CharRNNConfig()
    model, figures = train_charrnn(bundle.train, bundle.val, vocab=len(vocabulary), max_length=info.shape[0],
                                   seconds=seconds, config=config, seed=seed)
    lines, per_second = sample_charrnn(model, samples, tokenizer=get_tokenizer(info.tokenizer),
                                       vocabulary=vocabulary, temperature=temperature, seed=seed, grammar=grammar)
    atomic_write_text(generated, "\n".join(lines) + "\n")
    return {"train_minutes": round(figures["train_seconds"] / 60, 2), "train_molecules": len(bundle.train),
            **figures, "sampling_molecules_per_second": round(per_second, 1),
            "config": {"data": "the vaekit run's training split and vocabulary", "model": vars(config)},
            "generated": str(generated), "vocabulary": list(info.vocabulary)}
