"""What the evaluation figures say is wrong, and which flags to try.

``diagnose(metrics, config)`` reads the output of ``vaekit.evaluation.evaluate`` and a
run's ``config.json`` dict (optional: without it every remedy is listed) and returns
``Finding``s: posterior collapse (the decoder ignores z), partial collapse (most latent
dimensions unused) and blur (reconstructions much smoother than the inputs). Each
finding states what was measured, with the numbers, and the remedies that apply to this
run as exact ``vaekit train`` flags.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vaekit.models import MODELS
from vaekit.models.observation import REAL_LIKELIHOODS

#: Total KL (nats) below which the posterior has collapsed onto the prior.
COLLAPSE_KL = 0.1
#: Partial collapse when fewer than this share of the latent dimensions are active.
MIN_ACTIVE_SHARE = 0.5
#: Blur when the reconstructions' mean gradient magnitude is below this share of the
#: inputs'. Decoder means are smoother than data by nature (~0.6-0.7 for good digit
#: models; the average image scores ~0.5 on 8x8 digits and lower on larger images).
BLUR_SHARPNESS = 0.6


#: Mean KL (nats) below which a dimension counts as collapsed: it carries no information,
#: and the report, the trainer and ``vaekit traverse`` all flag it by this one cut-off.
COLLAPSED_KL = 0.01


def active_dims(kl_per_dim) -> int:
    """How many latent dimensions carry at least ``COLLAPSED_KL`` nats: the complement of the
    dimensions ``traversal`` marks collapsed. The one count the report, trainer and CLI use."""
    return sum(float(v) >= COLLAPSED_KL for v in kl_per_dim)


@dataclass(frozen=True)
class Finding:
    """One problem: ``kind`` (``posterior-collapse``, ``partial-collapse`` or ``blur``),
    ``seen`` (what was measured, with numbers) and ``remedies`` (each starts with the
    exact ``vaekit train`` flag to try, then why)."""

    kind: str
    seen: str
    remedies: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.kind}: {self.seen}. Try: " + "; ".join(self.remedies)


def diagnose(metrics: Mapping[str, Any], config: Mapping[str, Any] | None = None) -> list[Finding]:
    """Findings for ``evaluate``'s ``metrics``; ``config`` is the run's ``config.json`` dict
    (its ``model`` and ``train`` sections decide which remedies apply). Empty when healthy."""
    model = dict((config or {}).get("model") or {})
    train = dict((config or {}).get("train") or {})
    findings = []
    collapse = _collapse(metrics, model, train)
    if collapse is not None:
        findings.append(collapse)
    blur = _blur(metrics, model, train, collapsed=collapse is not None and collapse.kind == "posterior-collapse")
    if blur is not None:
        findings.append(blur)
    return findings


def _has_learned_prior(model: dict[str, Any]) -> bool:
    family = MODELS.get(str(model.get("model", "vae")))
    return family is not None and family[0].learned_prior


def _collapse(metrics: Mapping[str, Any], model: dict[str, Any], train: dict[str, Any]) -> Finding | None:
    kl_per_dim = list(metrics.get("kl_per_dim") or [])
    latent_dim = len(kl_per_dim) or int(model.get("latent_dim", 0))
    if latent_dim == 0 or _has_learned_prior(model):
        return None  # discrete codes under a fitted prior: no Gaussian KL to collapse
    kl, active = float(metrics["kl"]), int(metrics["active_units"])
    dead = sum(1 for v in kl_per_dim if v < COLLAPSED_KL)
    numbers = (f"{active} of {latent_dim} latent dimensions active (Var_x E[z|x] > 0.01), {dead} with KL "
               f"< {COLLAPSED_KL} nats, KL {kl:.3g} nats in all")
    if "mutual_info" in metrics:
        numbers += f", mutual information I(x;z) {metrics['mutual_info']:.3g} nats"
    full = kl < COLLAPSE_KL or active == 0
    partial = active < MIN_ACTIVE_SHARE * latent_dim or dead > (1 - MIN_ACTIVE_SHARE) * latent_dim
    if full:
        kind, seen = "posterior-collapse", f"{numbers}: q(z|x) is the prior and the decoder ignores z"
    elif partial:
        kind, seen = "partial-collapse", f"{numbers}: most dimensions are unused"
    else:
        return None
    remedies = _kl_remedies(train) + _weaker_decoder(model)
    if not full:
        remedies.append(f"--latent-dim {max(active, 1)} (if the unused dimensions are not wanted: the same "
                        "information in fewer dimensions)")
    return Finding(kind, seen, tuple(remedies))


def _kl_remedies(train: dict[str, Any]) -> list[str]:
    remedies = []
    anneal = str(train.get("kl_anneal", "none"))
    if anneal == "none":
        remedies.append("--kl-anneal linear:10 (raise the KL weight from 0 over 10 epochs, so the decoder "
                        "learns to use z before the KL pushes q(z|x) onto the prior)")
    elif not anneal.startswith("cyclical"):
        remedies.append("--kl-anneal cyclical:4 (repeat the KL warm-up four times, Fu et al. 2019)")
    if float(train.get("free_bits", 0.0)) < 0.5 and train.get("objective", "elbo") == "elbo":
        remedies.append("--free-bits 0.5 (no KL penalty on a dimension below 0.5 nats, so no dimension is "
                        "pushed all the way onto the prior)")
    beta = float(train.get("beta", 1.0))
    if beta > 1:
        remedies.append(f"--beta 1 (beta {beta:g} weighs the KL {beta:g} times; 1 is the plain ELBO)")
    elif beta > 0.5:
        remedies.append("--beta 0.5 (a lighter KL weight)")
    return remedies


def _weaker_decoder(model: dict[str, Any]) -> list[str]:
    if "decoder_hidden" in model:  # a sequence VAE: its decoder's size is its own setting
        return [f"decoder_hidden: {max(8, int(model['decoder_hidden']) // 2)} in a --config file (a weaker "
                "autoregressive decoder has to rely on z; Bowman et al. 2016)"]
    hidden = [int(h) for h in model.get("hidden") or [512, 256]]
    smaller = ",".join(str(max(8, h // 2)) for h in hidden)
    text = f"--hidden {smaller}"
    if len(hidden) > 1:
        text += f" or fewer layers, --hidden {hidden[0]}"
    return [text + " (a weaker decoder has to rely on z; --hidden sizes the encoder and decoder alike)"]


def _blur(metrics: Mapping[str, Any], model: dict[str, Any], train: dict[str, Any], *, collapsed: bool
          ) -> Finding | None:
    ratio = metrics.get("sharpness_ratio")
    if ratio is None or ratio >= BLUR_SHARPNESS:
        return None
    seen = (f"reconstructions have {ratio:.2f} of the inputs' edge strength (mean finite-difference gradient "
            f"magnitude; below {BLUR_SHARPNESS} is flagged as blur)")
    if metrics.get("recon_mse") is not None:
        seen += f", reconstruction MSE {metrics['recon_mse']:.4g} per value"
    if collapsed:
        return Finding("blur", seen, ("fix the posterior collapse first: a decoder that ignores z can only draw "
                                      "the average example",))
    remedies = []
    kl_per_dim = list(metrics.get("kl_per_dim") or [])
    latent_dim = len(kl_per_dim) or int(model.get("latent_dim", 0))
    if latent_dim and int(metrics.get("active_units", latent_dim)) >= MIN_ACTIVE_SHARE * latent_dim:
        remedies.append(f"--latent-dim {2 * latent_dim} (room for more detail: the dimensions there are, are "
                        "in use)")
    beta = float(train.get("beta", 1.0))
    if beta > 0.5:
        remedies.append(f"--beta {1 if beta > 1 else 0.5} (less pull toward the prior keeps more detail in z)")
    if model.get("likelihood") in REAL_LIKELIHOODS and not (model.get("learn_obs_std") or model.get("heteroscedastic")):
        remedies.append("--learn-obs-std (a fixed output std weighs the reconstruction against the KL "
                        "arbitrarily; learning it sharpens the fit)")
    if model.get("arch", "mlp") == "conv":
        remedies.append("--conv-channels 64,128 (more decoder capacity)")
    else:
        if sum(int(h) for h in model.get("hidden") or [512, 256]) < 1536:
            remedies.append("--hidden 1024,512 (more decoder capacity)")
        remedies.append("--arch conv (convolutional networks suit images)")
    return Finding("blur", seen, tuple(remedies))
