"""What the evaluation figures say is wrong, and which flags to try.

``diagnose(metrics, config)`` reads the output of ``vaekit.evaluation.evaluate`` and a
run's ``config.json`` dict (optional: without it every remedy is listed) and returns
``Finding``s: posterior collapse (the decoder ignores z), partial collapse (most latent
dimensions unused; the KL held at the free-bits floor; a hierarchy level carrying a small
share of the KL; little mutual information for the KL paid; a conditional model whose
samples do not follow their label, ``evaluation.labels``) and blur (reconstructions
smoother than a one-pixel blur of the inputs). Each finding states what was measured,
with the numbers, and the remedies that apply to this run as exact ``vaekit train`` flags.
``training_findings`` is the subset the trainer can see from an epoch's metrics row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vaekit.models import MODELS
from vaekit.models.observation import REAL_LIKELIHOODS

#: Total KL (nats) below which the posterior has collapsed onto the prior.
COLLAPSE_KL = 0.1
#: Partial collapse when fewer than this share of the latent dimensions are active.
MIN_ACTIVE_SHARE = 0.5
#: Blur cut-off when ``evaluate`` gave no ``sharpness_reference`` (figures saved by an older
#: version): the reconstructions' mean gradient magnitude over the inputs'. With a reference,
#: the cut-off is the data's own: what a 3x3 binomial blur leaves of the inputs' edges.
BLUR_SHARPNESS = 0.6
#: The KL sits at the free-bits floor when it is at most this much above latent_dim x free_bits.
FLOOR_MARGIN = 0.05
#: A hierarchy level is weak when it carries less than this fraction of an even split of
#: the KL over the levels (a quarter: below 1/8 of the KL with two levels, 1/12 with three).
MIN_LEVEL_SHARE = 0.25
#: Low information when I(x;z) is below this share of the most the estimate could show:
#: the KL (I(x;z) <= KL), capped at log n (the estimator's ceiling over n examples).
MIN_MI_SHARE = 0.5
#: A conditional model ignores its label when its samples are classified as the asked class
#: less often than this share of the classifier's accuracy on real held-out examples.
MIN_LABEL_SHARE = 0.8


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
    ``seen`` (what was measured, with numbers), ``remedies`` (each starts with the
    exact ``vaekit train`` flag to try, then why) and ``cause``, which tells partial
    collapses apart (``unused-dimensions``, ``free-bits-floor``, ``weak-level``,
    ``low-information``, ``label-ignored``; empty for the other kinds)."""

    kind: str
    seen: str
    remedies: tuple[str, ...]
    cause: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.seen}. Try: " + "; ".join(self.remedies)


def diagnose(metrics: Mapping[str, Any], config: Mapping[str, Any] | None = None) -> list[Finding]:
    """Findings for ``evaluate``'s ``metrics``; ``config`` is the run's ``config.json`` dict
    (its ``model`` and ``train`` sections decide which remedies apply). Empty when healthy."""
    model = dict((config or {}).get("model") or {})
    train = dict((config or {}).get("train") or {})
    collapse = _collapse(metrics, model, train)
    collapsed = collapse is not None and collapse.kind == "posterior-collapse"
    findings = [collapse] if collapse is not None else []
    if not collapsed:
        findings += _partial(metrics, model, train, with_information=True)
    label = label_ignored(metrics, model, train)
    if label is not None:
        findings.append(label)
    blur = _blur(metrics, model, train, collapsed=collapsed)
    if blur is not None:
        findings.append(blur)
    return findings


def training_findings(row: Mapping[str, Any], config: Mapping[str, Any]) -> list[Finding]:
    """What an epoch's metrics ``row`` shows (``val_kl``, ``val_kl_per_dim``, a hierarchy's
    ``train_kl_group<i>``): total collapse, the KL at the free-bits floor and a weak level,
    the findings the trainer warns of once each. ``config`` as for ``diagnose``."""
    model = dict(config.get("model") or {})
    train = dict(config.get("train") or {})
    kl_per_dim = list(row["val_kl_per_dim"])
    metrics: dict[str, Any] = {"kl": row["val_kl"], "kl_per_dim": kl_per_dim, "active_units": active_dims(kl_per_dim)}
    groups = sorted((int(k.removeprefix("train_kl_group")), v) for k, v in row.items()
                    if k.startswith("train_kl_group") and k.removeprefix("train_kl_group").isdigit())
    if groups:
        metrics["kl_per_group"] = [v for _, v in groups]
    collapse = _collapse(metrics, model, train)
    if collapse is not None and collapse.kind == "posterior-collapse":
        return [collapse]
    return _partial(metrics, model, train, with_information=False)


def _partial(metrics: Mapping[str, Any], model: dict[str, Any], train: dict[str, Any], *,
             with_information: bool) -> list[Finding]:
    """The partial collapses that ``_collapse``'s count of unused dimensions misses."""
    if _has_learned_prior(model):
        return []
    found = [_at_floor(metrics, model, train), _weak_level(metrics, model, train)]
    if with_information:
        found.append(_low_information(metrics, model, train))
    return [f for f in found if f is not None]


def _at_floor(metrics: Mapping[str, Any], model: dict[str, Any], train: dict[str, Any]) -> Finding | None:
    free_bits = float(train.get("free_bits", 0.0))
    kl_per_dim = list(metrics.get("kl_per_dim") or [])
    if free_bits <= 0 or not kl_per_dim:
        return None
    floor, kl = len(kl_per_dim) * free_bits, float(metrics["kl"])
    if kl > (1 + FLOOR_MARGIN) * floor:
        return None
    at = sum(1 for v in kl_per_dim if v <= (1 + FLOOR_MARGIN) * free_bits)
    seen = (f"KL {kl:.3g} nats, at the free-bits floor {len(kl_per_dim)} x {free_bits:g} = {floor:.3g} "
            f"({at} of {len(kl_per_dim)} dimensions at or below {free_bits:g} nats): z carries only the "
            "information the floor exempts from the KL penalty")
    remedies = [f"--free-bits {2 * free_bits:g} (a higher floor lets every dimension carry more information "
                "free of the penalty)"]
    remedies += [r for r in _kl_remedies(train) if not r.startswith("--free-bits")] + _weaker_decoder(model)
    return Finding("partial-collapse", seen, tuple(remedies), "free-bits-floor")


def _weak_level(metrics: Mapping[str, Any], model: dict[str, Any], train: dict[str, Any]) -> Finding | None:
    per_group = [float(v) for v in metrics.get("kl_per_group") or []]
    total = sum(per_group)
    if len(per_group) < 2 or total <= 0:
        return None
    cut = MIN_LEVEL_SHARE / len(per_group)
    weak = [i for i, v in enumerate(per_group) if v < cut * total]
    if not weak:
        return None
    shares = ", ".join(f"{v:.3g} ({v / total:.0%})" for v in per_group)
    seen = (f"KL per hierarchy level (top first) {shares} nats: level(s) {', '.join(str(i) for i in weak)} carry "
            f"under {cut:.0%} of the KL (a quarter of an even share), so the hierarchy is partly unused")
    kept = [str(g) for i, g in enumerate(metrics.get("groups") or model.get("groups") or []) if i not in weak]
    remedies = _kl_remedies(train)
    if kept:
        remedies.append(f"--latent-groups {','.join(kept)} (without the unused level(s))")
    return Finding("partial-collapse", seen, tuple(remedies), "weak-level")


def _low_information(metrics: Mapping[str, Any], model: dict[str, Any], train: dict[str, Any]) -> Finding | None:
    mi, n = metrics.get("mutual_info"), int(metrics.get("n") or 0)
    kl = float(metrics["kl"])
    if mi is None or n < 2 or kl < COLLAPSE_KL:
        return None
    ceiling = min(kl, math.log(n))
    if mi >= MIN_MI_SHARE * ceiling:
        return None
    seen = (f"mutual information I(x;z) {mi:.3g} nats for a KL of {kl:.3g} (under {MIN_MI_SHARE:g} x "
            f"{ceiling:.3g}, the KL capped at log n): most of the KL goes on q(z|x) straying from the prior, "
            "not on telling the inputs apart")
    return Finding("partial-collapse", seen, tuple(_kl_remedies(train) + _weaker_decoder(model)), "low-information")


def label_ignored(metrics: Mapping[str, Any], model: Mapping[str, Any] | None = None,
                  train: Mapping[str, Any] | None = None) -> Finding | None:
    """A conditional model whose samples follow their label clearly less often than real
    examples are classified right (``evaluation.labels.label_following``'s figures in
    ``metrics``; ``model`` and ``train``, the run's config sections, decide the remedies)."""
    following, accuracy = metrics.get("label_following"), metrics.get("label_classifier_accuracy")
    if following is None or accuracy is None or following >= MIN_LABEL_SHARE * accuracy:
        return None
    model = dict(model or {})
    seen = (f"{following:.0%} of samples drawn for a label are classified as that label, against "
            f"{accuracy:.0%} of real held-out examples by the same classifier (a logistic regression on the "
            "run's training labels): the code z carries the class and the decoder ignores the label")
    remedies = []
    if model.get("model", "cvae") == "cvae" and not model.get("center_codes", False):
        remedies.append("--center-codes (the cvae default: each class's codes are centred on the prior's "
                        "mean, so z cannot say the class and the decoder has to read the label)")
    latent_dim = int(model.get("latent_dim", 0))
    if latent_dim > 4:
        remedies.append(f"--latent-dim {max(2, latent_dim // 4)} (a smaller code has less room for the class)")
    epochs = int((train or {}).get("epochs", 0))
    remedies.append((f"--epochs {2 * epochs}" if epochs else "more --epochs") + " (the KL slowly pushes the class "
                    "out of z and onto the label)")
    return Finding("partial-collapse", seen, tuple(remedies), "label-ignored")


def _has_learned_prior(model: dict[str, Any]) -> bool:
    family = MODELS.get(str(model.get("model", "vae")))
    return family is not None and family[0].learned_prior


def _collapse(metrics: Mapping[str, Any], model: dict[str, Any], train: dict[str, Any]) -> Finding | None:
    kl_per_dim = list(metrics.get("kl_per_dim") or [])
    latent_dim = len(kl_per_dim) or int(model.get("latent_dim", 0))
    if latent_dim == 0 or _has_learned_prior(model):
        return None  # discrete codes under a fitted prior: no Gaussian KL to collapse
    kl, active = float(metrics["kl"]), int(metrics["active_units"])
    dead = len(kl_per_dim) - active_dims(kl_per_dim)
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
    return Finding(kind, seen, tuple(remedies), "" if full else "unused-dimensions")


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
    reference = metrics.get("sharpness_reference")
    cut = BLUR_SHARPNESS if reference is None else float(reference)
    if ratio is None or ratio >= cut:
        return None
    seen = (f"reconstructions have {ratio:.2f} of the inputs' edge strength (mean finite-difference gradient "
            + (f"magnitude; below {BLUR_SHARPNESS} is flagged as blur)" if reference is None else
               f"magnitude), less than the inputs keep under a 3x3 binomial blur ({cut:.2f})"))
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
