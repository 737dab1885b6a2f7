"""A sequence VAE for token data such as molecules (Bowman et al. 2016; Gómez-Bombarelli et al. 2018).

Encoder: token embeddings -> bidirectional GRU (packed, so padding never enters it) ->
(mu, log sigma^2). Decoder: a GRU whose initial state comes from z and which sees z again
at every step, next to the previous token's embedding (so the decoder cannot simply forget
the latent after the first steps). ``decode(z)`` returns ``SequenceLikelihood``: p(x|z) of
an autoregressive decoder, whose ``log_prob(x)`` runs the decoder on x shifted by one
(teacher forcing) and scores each next token with a masked ``Categorical`` (positions after
eos add nothing); its ``mean`` is the greedy decoding and ``sample()`` an ancestral draw, so
``Model.sample`` / ``reconstruct`` give token ids. ``generate`` adds temperature and beam
search (``models/autoregressive.py``).

Rows are ``[token ids | standardized properties]`` (``vaekit.data.molecules.sequences``): with
``property_names`` an MLP head predicts the properties from z, trained jointly; its loss
(Gaussian NLL with unit variance, missing values left out) enters the objective as the
``Inference.penalty`` and is logged as ``property_mse``. Batches are trimmed to their
longest sequence, so length-bucketed batches (``Dataset.train_order``) cost little padding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from vaekit.data.molecules.tokens import DEFAULT_TOKENS
from vaekit.distributions import Categorical, DiagonalGaussian, Likelihood
from vaekit.errors import VaekitError
from vaekit.models import autoregressive
from vaekit.models.base import Inference, Model, ModelConfig
from vaekit.nn import bidirectional_final_state, recurrent

if TYPE_CHECKING:
    from vaekit.data.bundle import DataInfo

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>")  # ids 0, 1, 2 (vaekit.chem.tokens.Vocabulary)


@dataclass
class SeqVAEConfig(ModelConfig):
    """A sequence VAE's architecture; the vocabulary and property columns come from the data.

    ``input_shape`` is ``(max_length + len(property_names),)``: a row of token ids (bos, the
    tokens, eos, padding) followed by the property targets. ``property_mean`` /
    ``property_std`` undo the targets' standardization (``MoleculeModel.predict_properties``).
    """

    model: ClassVar[str] = "seqvae"
    sequences: ClassVar[bool] = True
    #: Text VAEs collapse without KL annealing and free bits (Bowman et al. 2016; Kingma et al.
    #: 2016): these are the training settings a seqvae run gets unless set.
    #: Its GRUs are most of a step, and bfloat16 runs them much faster to the same loss where
    #: the processor has it natively: precision auto (docs/benchmarks/molecules.md).
    #: Runs on a CPU budget last a few epochs, and under cosine decay a GRU language model
    #: (its gradients clipped at 5) learns faster from twice Adam's usual peak rate.
    #: A molecule VAE is for encoding, moving and decoding molecules, so z must hold them:
    #: under the full KL weight a strong autoregressive decoder leaves z little, and half the
    #: weight (MOSES's VAE anneals it to 0.05 only) lets most held-out molecules come back.
    train_defaults: ClassVar[dict[str, Any]] = {"batch_size": 128, "kl_anneal": "linear:3", "free_bits": 0.1,
                                               "grad_clip": 5.0, "precision": "auto", "lr": 2e-3, "beta": 0.5}
    data_defaults: ClassVar[dict[str, Any]] = {"tokens": DEFAULT_TOKENS}

    input_shape: tuple[int, ...] = (64,)
    latent_dim: int = 64
    vocabulary: list[str] = field(default_factory=list)
    tokenizer: str = DEFAULT_TOKENS
    embedding_dim: int = 64
    encoder_hidden: int = 256
    decoder_hidden: int = 512
    decoder_layers: int = 1
    #: Share of the decoder's input tokens replaced by padding (a zero embedding) in training,
    #: so the decoder must lean on z rather than on the previous tokens (Bowman et al. 2016).
    word_dropout: float = 0.0
    property_names: list[str] = field(default_factory=list)
    property_mean: list[float] = field(default_factory=list)
    property_std: list[float] = field(default_factory=list)
    property_hidden: int = 64
    #: The property loss is per molecule while the reconstruction sums ~40 token terms; chemical_vae
    #: (Gómez-Bombarelli et al. 2018) sets its property loss against a per-token mean
    #: cross-entropy, so a weight of ~0.5 x 40 keeps that balance here (not tuned further).
    property_weight: float = 20.0

    def __post_init__(self) -> None:
        if tuple(self.vocabulary[:3]) != SPECIAL_TOKENS or len(self.vocabulary) < 4:
            raise VaekitError("vocabulary: a seqvae takes its tokens from sequence data (vaekit train moses --model "
                              f"seqvae); got {len(self.vocabulary)} tokens starting {self.vocabulary[:3]}")
        if len(self.input_shape) != 1 or self.max_length < 3:
            raise VaekitError(f"input_shape: a seqvae takes rows of token ids, got {tuple(self.input_shape)}")
        for name in ("latent_dim", "embedding_dim", "encoder_hidden", "decoder_hidden", "decoder_layers",
                     "property_hidden"):
            if getattr(self, name) < 1:
                raise VaekitError(f"{name}: must be at least 1, got {getattr(self, name)}")
        p = len(self.property_names)
        if len(self.property_mean) != p or len(self.property_std) != p:
            raise VaekitError(f"property_mean / property_std: need one value per property ({p})")
        if not 0.0 <= self.word_dropout < 1.0:
            raise VaekitError(f"word_dropout: must be in [0, 1), got {self.word_dropout}")
        if self.property_weight < 0:
            raise VaekitError(f"property_weight: must be non-negative, got {self.property_weight}")

    @property
    def max_length(self) -> int:
        """Token positions per row (bos and eos included); the rest of a row are properties."""
        return int(self.input_shape[0]) - len(self.property_names)

    @classmethod
    def data_options(cls, info: DataInfo) -> dict[str, Any]:
        if info.kind != "sequence" or not info.vocabulary:
            return {}
        return {"vocabulary": list(info.vocabulary), "tokenizer": info.tokenizer or DEFAULT_TOKENS,
                "property_names": list(info.targets or []), "property_mean": list(info.target_mean or []),
                "property_std": list(info.target_std or [])}


class SeqVAE(Model):
    """Bidirectional GRU encoder, z-conditioned GRU decoder, optional property head."""

    config: SeqVAEConfig
    gaussian_posterior: ClassVar[bool] = True
    pad_id, bos_id, eos_id = 0, 1, 2

    def __init__(self, config: SeqVAEConfig) -> None:
        super().__init__(config)
        c = config
        vocab = len(c.vocabulary)
        self.embedding = nn.Embedding(vocab, c.embedding_dim, padding_idx=self.pad_id)
        self.encoder = nn.GRU(c.embedding_dim, c.encoder_hidden, batch_first=True, bidirectional=True)
        self.to_posterior = nn.Linear(2 * c.encoder_hidden, 2 * c.latent_dim)
        self.to_state = nn.Linear(c.latent_dim, c.decoder_layers * c.decoder_hidden)
        self.decoder = nn.GRU(c.embedding_dim + c.latent_dim, c.decoder_hidden, num_layers=c.decoder_layers,
                              batch_first=True)
        self.to_logits = nn.Linear(c.decoder_hidden, vocab)
        self.property_head = None
        if c.property_names:
            self.property_head = nn.Sequential(nn.Linear(c.latent_dim, c.property_hidden), nn.ELU(),
                                               nn.Linear(c.property_hidden, c.property_hidden), nn.ELU(),
                                               nn.Linear(c.property_hidden, len(c.property_names)))

    @property
    def max_length(self) -> int:
        return self.config.max_length

    # -- rows -> tokens ------------------------------------------------------------------
    def tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids ``(..., T)`` of rows ``x``, cut to the longest sequence among them, and
        each sequence's length (bos to the first eos, both included)."""
        device = self.embedding.weight.device
        ids = x[..., :self.max_length].to(device).long()
        is_eos = ids == self.eos_id
        lengths = torch.where(is_eos.any(-1), is_eos.int().argmax(-1) + 1, self.max_length)
        return ids[..., :int(lengths.max())], lengths

    def values_per_example(self, x: torch.Tensor) -> torch.Tensor:
        """The tokens each row's likelihood predicts (after bos, up to and including eos)."""
        return (self.tokens(x)[1] - 1).double().cpu()

    def targets(self, x: torch.Tensor) -> torch.Tensor:
        """The standardized property values of rows ``x`` (NaN where unknown)."""
        return x[..., self.max_length:].to(self.embedding.weight.device).float()

    # -- the protocol --------------------------------------------------------------------
    def encode(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> DiagonalGaussian:
        ids, lengths = self.tokens(x)
        h = bidirectional_final_state(self.encoder, self.embedding(ids), lengths)
        mu, logvar = self.to_posterior(torch.cat([h[0], h[1]], dim=-1)).chunk(2, dim=-1)
        return DiagonalGaussian(mu, logvar)

    def decode(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> SequenceLikelihood:
        return SequenceLikelihood(self, z)

    def infer(self, x: torch.Tensor, cond: torch.Tensor | None = None, *, n: int = 1,
              generator: torch.Generator | None = None) -> Inference:
        """The single-Gaussian inference (as ``Model.infer``), plus the property head's loss as
        the penalty. The head reads the posterior mean, as in Gómez-Bombarelli et al. 2018:
        the sampling noise would hide the property from it early in training, when the
        posterior is still close to the prior."""
        posterior = self.encode(x, cond)
        draws = self.infer_from(posterior, x, cond, n=n, generator=generator)
        if self.property_head is None or self.config.property_weight == 0:
            return draws
        targets = self.targets(x)
        known = ~torch.isnan(targets)
        error = torch.where(known, self.property_head(posterior.mean) - targets.nan_to_num(), 0.0)  # (B, P)
        squared = error.pow(2)
        draws.penalty = self.config.property_weight * 0.5 * squared.sum(-1).mean()
        draws.extras["property_mse"] = (squared.sum() / known.sum().clamp(min=1)).detach()
        return draws

    # -- the decoder, teacher-forced and step by step -------------------------------------
    def _initial_state(self, z: torch.Tensor) -> torch.Tensor:
        c = self.config
        h = torch.tanh(self.to_state(z)).reshape(len(z), c.decoder_layers, c.decoder_hidden)
        return h.transpose(0, 1).contiguous()

    def teacher_forced_logits(self, z: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Logits ``(M, T-1, V)`` of tokens 1..T-1 given the tokens before each, for z ``(M, D)``."""
        previous = ids[:, :-1]
        if self.training and self.config.word_dropout > 0:
            dropped = torch.rand(previous.shape, device=previous.device) < self.config.word_dropout
            dropped[:, 0] = False  # bos stays: it marks the start
            previous = previous.masked_fill(dropped, self.pad_id)
        inputs = self.embedding(previous)
        steps = torch.cat([inputs, z.unsqueeze(1).expand(-1, inputs.shape[1], -1)], dim=-1)
        out, _ = recurrent(self.decoder, steps, self._initial_state(z))
        return self.to_logits(out)

    def start(self, z: torch.Tensor) -> DecoderState:
        """The decoder's state before the first token. The latent's share of the first layer's
        input gates is the same at every step, and a token's share is one of a few rows (one
        per vocabulary entry), so both are computed here once instead of at every step."""
        c = self.config
        w_ih, b_ih = self.decoder.weight_ih_l0, self.decoder.bias_ih_l0
        fixed = torch.nn.functional.linear(z, w_ih[:, c.embedding_dim:], b_ih)
        per_token = torch.nn.functional.linear(self.embedding.weight, w_ih[:, :c.embedding_dim])
        return DecoderState(self._initial_state(z), fixed, per_token)

    def step(self, tokens: torch.Tensor, state: DecoderState) -> tuple[torch.Tensor, DecoderState]:
        """One decoding step. Its arithmetic is in place, so it is for decoding only (no
        gradient flows through it); ``teacher_forced_logits`` is the differentiable path."""
        h = state.h
        hidden = self.config.decoder_hidden
        gates_in = state.per_token.index_select(0, tokens).add_(state.fixed)
        gates_h = torch.addmm(self.decoder.bias_hh_l0, h[0], self.decoder.weight_hh_l0.t())
        # nn.GRU's cell in ATen's order (r and z from both sides, n's hidden side gated by r),
        # in place: at a few hundred rows the elementwise passes cost as much as a product
        rz = gates_h[:, :2 * hidden].add_(gates_in[:, :2 * hidden]).sigmoid_()
        n = gates_in[:, 2 * hidden:].add_(gates_h[:, 2 * hidden:].mul_(rz[:, :hidden])).tanh_()
        out = (h[0] - n).mul_(rz[:, hidden:]).add_(n)
        layers = [out]
        for layer in range(1, self.config.decoder_layers):
            out = torch.gru_cell(out, h[layer], getattr(self.decoder, f"weight_ih_l{layer}"),
                                 getattr(self.decoder, f"weight_hh_l{layer}"),
                                 getattr(self.decoder, f"bias_ih_l{layer}"), getattr(self.decoder, f"bias_hh_l{layer}"))
            layers.append(out)
        h = out.unsqueeze(0) if len(layers) == 1 else torch.stack(layers)
        return self.to_logits(out), DecoderState(h, state.fixed, state.per_token)

    def select(self, state: DecoderState, index: torch.Tensor) -> DecoderState:
        return DecoderState(state.h[:, index], state.fixed[index], state.per_token)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, *, method: str = "greedy", temperature: float = 1.0, beam_width: int = 5,
                 generator: torch.Generator | None = None, grammar: autoregressive.Grammar | None = None
                 ) -> torch.Tensor:
        """Token ids ``(B, max_length)`` decoded from latents ``z`` ``(B, D)``: ``greedy``,
        ``sample`` (softmax at ``temperature``) or ``beam`` (width ``beam_width``);
        ``grammar``: the tokens allowed at each step (``vaekit.models.autoregressive``)."""
        z = z.to(self.embedding.weight.device).float()
        return autoregressive.decode(self, z, method=method, temperature=temperature, beam_width=beam_width,
                                     generator=generator, grammar=grammar)

    def predict_properties(self, z: torch.Tensor) -> torch.Tensor | None:
        """The property head's prediction in the data's units (differentiable in z), or None."""
        if self.property_head is None:
            return None
        c = self.config
        mean = torch.tensor(c.property_mean, dtype=z.dtype, device=z.device)
        std = torch.tensor(c.property_std, dtype=z.dtype, device=z.device)
        return self.property_head(z) * std + mean


@dataclass
class DecoderState:
    """What the step-by-step decoder carries: the GRU's hidden state ``(layers, B, H)``, each
    row's constant input-gate term (from z and the input bias) and the per-token input-gate
    terms ``(V, 3H)`` shared by all rows."""

    h: torch.Tensor
    fixed: torch.Tensor
    per_token: torch.Tensor


class SequenceLikelihood(Likelihood):
    """p(x|z) of the autoregressive decoder for latents ``z`` ``(..., D)``.

    ``log_prob(x)`` is the sum over positions 1..length-1 (eos included, padding not) of log
    p(token | previous tokens, z), one value per latent; rows ``x`` ``(B, W)`` broadcast
    against leading sample dims of z ``(n, B, D)``. ``mean``: greedy decoding (the usual
    stand-in for the mode of a sequence distribution), as rows like the data's (token ids
    as floats, then the predicted properties).
    """

    event_ndim = 1

    def __init__(self, model: SeqVAE, z: torch.Tensor) -> None:
        self.model = model
        self.z = z

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        ids, lengths = self.model.tokens(x)
        batch = self.z.shape[:-1]
        flat_z = self.z.reshape(-1, self.z.shape[-1])
        flat_ids = ids.expand(*batch, ids.shape[-1]).reshape(-1, ids.shape[-1])
        flat_lengths = lengths.expand(batch).reshape(-1)
        logits = self.model.teacher_forced_logits(flat_z, flat_ids)
        positions = torch.arange(1, ids.shape[-1], device=ids.device)
        mask = positions < flat_lengths.unsqueeze(1)
        return Categorical(logits, 1, mask).log_prob(flat_ids[:, 1:]).reshape(batch)

    def _decode(self, **options: Any) -> torch.Tensor:
        """Rows like the data's: decoded token ids, then the property head's (standardized)
        prediction where the model has one."""
        flat = self.z.reshape(-1, self.z.shape[-1])
        rows = self.model.generate(flat, **options).float()
        if self.model.property_head is not None:
            with torch.no_grad():
                rows = torch.cat([rows, self.model.property_head(flat.to(rows.device)).float()], dim=1)
        return rows.reshape(*self.z.shape[:-1], rows.shape[-1])

    @property
    def mean(self) -> torch.Tensor:
        return self._decode(method="greedy")

    def sample(self, *, generator: torch.Generator | None = None) -> torch.Tensor:
        return self._decode(method="sample", generator=generator)
