"""Held-out evaluation: ELBO, importance-sampled NLL, active units, mutual information, blur.

``evaluate(model, x)`` returns the figures as plain numbers (JSON-ready);
``evaluate_run(run)`` does the same for a run directory's split and adds the diagnosis
from ``vaekit.training.diagnosis``. Everything is computed batch by batch with float64
accumulation; the importance-sampled likelihood dominates the cost (``k`` decoder passes
per example).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from vaekit.errors import VaekitError
from vaekit.evaluation.labels import label_following, labelled_held_out
from vaekit.latent.inputs import model_labels, split_examples
from vaekit.models.base import Model
from vaekit.plotting.pictures import is_image_run
from vaekit.training.devices import resolve_device
from vaekit.training.diagnosis import diagnose

#: A latent dimension is active when the variance over the data of its posterior mean
#: exceeds this (Burda et al. 2015).
ACTIVE_UNIT_THRESHOLD = 0.01
#: Importance samples of one batch are drawn in chunks of at most this many input values
#: (rows x input size): 8 MB per input-sized float32 tensor, which keeps the decoder's
#: matrices in cache (2,500 rows were ~20% faster than 10,000 on MNIST) and memory small.
CHUNK_VALUES = 2_000_000
#: Reparameterized samples per example for the reconstruction term of the ELBO.
RECON_SAMPLES = 10
#: The aggregate posterior of the mutual-information estimate is a mixture over at most
#: this many examples (a seeded subset beyond).
MI_MAX_EXAMPLES = 10_000
SPLITS = ("train", "val", "test")
#: The keys ``evaluation_table`` lays out itself; any other number is a family's own figure.
TABLE_KEYS = {"elbo", "recon", "kl", "nll", "bits_per_dim", "kl_per_dim", "active_units", "mutual_info", "k", "n",
              "recon_mse", "sharpness_ratio", "sharpness_reference", "split", "findings", "label_following",
              "label_classifier_accuracy", "label_samples"}


def evaluate(model: Model, x: torch.Tensor, *, k: int = 1000, batch_size: int = 100, seed: int = 0,
             cond: torch.Tensor | None = None) -> dict[str, Any]:
    """Evaluate ``model`` on the examples ``x``; every figure is in nats per example.

    - ``elbo``: the negative ELBO, ``recon + kl``. A single-sample ELBO is noisy, so the
      KL is the closed form and ``recon`` (``-E_q log p(x|z)``) is averaged over
      ``RECON_SAMPLES`` (10) reparameterized samples per example.
    - ``nll``: ``-log p(x)`` by importance sampling with ``k`` samples from q(z|x)
      (``model.log_likelihood``, float64 log-mean-exp). It is an upper bound on the true
      NLL that tightens as ``k`` grows; with ``k=1`` it equals ``elbo`` in expectation.
    - ``bits_per_dim``: ``nll / (ln 2 * values per example)``, with the values the
      likelihood scores (``model.values_per_example``: pixels or columns; for sequences the
      tokens each row predicts, so bits per token, padding not counted).
    - ``kl_per_dim``: the closed-form KL of each latent dimension (list).
    - ``active_units``: dimensions u with ``Var_x(E_q[z_u|x]) > 0.01`` (Burda et al. 2015).
      This and ``mutual_info`` are left out for a point-mass posterior (``model.point_posterior``).
    - ``mutual_info``: I(x; z) under q, ``E_x E_q(z|x)[log q(z|x) - log q(z)]``, the
      estimator of He et al. 2019 ("lagging inference networks", ``calc_mi``) with the
      aggregate posterior q(z) taken as the mixture of q(z|x_j) over all evaluated
      examples (up to 10,000, a seeded subset beyond) rather than one minibatch, and with
      the sampled ``log q(z_i|x_i)`` in place of the closed-form entropy (so it is exactly 0
      when q(z|x) ignores x). It cannot exceed ``log n``.
    - images only: ``recon_mse`` (mean squared error per value of the reconstruction, the
      decoder mean at the posterior mean) and ``sharpness_ratio`` (mean finite-difference
      gradient magnitude of the reconstructions over that of the inputs; below 1 means
      blurrier than the data) and ``sharpness_reference``, the same ratio for the inputs
      under a 3x3 binomial blur (``binomial_blur``): the data's own scale of a one-pixel
      blur, which ``diagnose`` flags reconstructions below.
    - ``k`` and ``n`` (examples).

    ``cond``: the examples' labels, required by a conditional model (whose figures are then
    those of p(x|y): the NLL is -log p(x|y), the KL that of q(z|x, y)).

    Runs on the model's device, ``batch_size`` examples at a time; the importance samples
    are drawn in chunks so that memory stays bounded whatever ``k`` is. Reproducible for
    a given ``seed`` and device.
    """
    if k < 1:
        raise VaekitError(f"k: expected at least 1 importance sample, got {k}")
    if batch_size < 1:
        raise VaekitError(f"batch_size: expected at least 1, got {batch_size}")
    n = len(x)
    if n == 0:
        raise VaekitError("evaluate: no examples to evaluate")
    shape = tuple(model.config.input_shape)
    values = math.prod(shape)
    image = is_image_run(shape)
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    chunk = max(1, min(k, CHUNK_VALUES // (min(batch_size, n) * values)))

    was_training = model.training
    model.eval()
    try:
        sums = {"recon": 0.0, "nll": 0.0, "mse": 0.0, "grad_x": 0.0, "grad_r": 0.0, "grad_b": 0.0, "values": 0.0}
        kl_sum = torch.zeros((), dtype=torch.float64)
        means, logvars = [], []
        for start in range(0, n, batch_size):
            xb = x[start:start + batch_size].to(device)
            cb = cond[start:start + batch_size].to(device) if cond is not None else None
            posterior = model.encode(xb, cb)
            means.append(posterior.mean.double().cpu())
            logvars.append(posterior.logvar.double().cpu())
            draws = model.infer(xb, cb, n=RECON_SAMPLES, generator=generator)
            kl_sum = kl_sum + draws.kl_by_dim.double().sum(0).cpu()
            sums["recon"] -= draws.log_px_z.double().mean(0).sum().item()
            ll = model.log_likelihood(xb, cb, k=k, chunk=chunk, generator=generator)
            sums["nll"] -= ll.double().sum().item()
            sums["values"] += model.values_per_example(xb).sum().item()
            if image:
                r = model.decode(posterior.mode(), cb).mean
                sums["mse"] += (r - xb).double().pow(2).mean(dim=tuple(range(1, r.dim()))).sum().item()
                sums["grad_x"] += gradient_magnitude(xb).sum().item()
                sums["grad_r"] += gradient_magnitude(r).sum().item()
                sums["grad_b"] += gradient_magnitude(binomial_blur(xb)).sum().item()
        mean, logvar = torch.cat(means), torch.cat(logvars)
        kl_per_dim = kl_sum / n
        recon, kl, nll = sums["recon"] / n, kl_per_dim.sum().item(), sums["nll"] / n
        out: dict[str, Any] = {
            "elbo": recon + kl,
            "recon": recon,
            "kl": kl,
            "nll": nll,
            "bits_per_dim": sums["nll"] / (math.log(2) * sums["values"]),
            "kl_per_dim": kl_per_dim.tolist(),
            "k": k,
            "n": n,
        }
        if not model.point_posterior:  # both measure how q(z|x) spreads; a point mass has no spread
            out["active_units"] = active_units(mean)
            out["mutual_info"] = mutual_information(mean, logvar, seed=seed)
        out.update(model.held_out_figures(x, cond))
        if image:
            out["recon_mse"] = sums["mse"] / n
            sharp = sums["grad_x"] > 0
            out["sharpness_ratio"] = sums["grad_r"] / sums["grad_x"] if sharp else None
            out["sharpness_reference"] = sums["grad_b"] / sums["grad_x"] if sharp else None
        return out
    finally:
        model.train(was_training)


def active_units(posterior_means: torch.Tensor, threshold: float = ACTIVE_UNIT_THRESHOLD) -> int:
    """How many dimensions have ``Var_x(E_q[z_u|x]) > threshold`` (rows = examples)."""
    if len(posterior_means) < 2:
        return 0
    variance = posterior_means.double().flatten(1).var(dim=0, unbiased=False)
    return int((variance > threshold).sum())


def mutual_information(mean: torch.Tensor, logvar: torch.Tensor, *, seed: int = 0,
                       max_examples: int = MI_MAX_EXAMPLES) -> float:
    """I(x; z) under q from the posterior parameters of n examples (rows), in nats.

    ``mean_i [log q(z_i|x_i) - log (1/n) sum_j q(z_i|x_j)]`` with one ``z_i ~ q(z|x_i)``
    per example, in float64. The n x n log densities are formed from three matrix
    products, a block of rows at a time.
    """
    generator = torch.Generator().manual_seed(seed)
    mean, logvar = mean.double().flatten(1).cpu(), logvar.double().flatten(1).cpu()
    if len(mean) > max_examples:
        keep = torch.randperm(len(mean), generator=generator)[:max_examples]
        mean, logvar = mean[keep], logvar[keep]
    n, d = mean.shape
    if n < 2:
        return 0.0
    var = logvar.exp()
    z = mean + var.sqrt() * torch.randn(mean.shape, dtype=torch.float64, generator=generator)
    inv_var = 1.0 / var
    # log q(z_i|x_j) = const_j - 0.5 * sum_d (z_id - mu_jd)^2 / var_jd, expanded into products.
    const = -0.5 * (d * math.log(2 * math.pi) + logvar.sum(1) + (mean.pow(2) * inv_var).sum(1))
    total = 0.0
    for start in range(0, n, 1024):
        zb = z[start:start + 1024]
        log_q = const + zb @ (mean * inv_var).T - 0.5 * zb.pow(2) @ inv_var.T
        rows = torch.arange(len(zb))
        own = log_q[rows, rows + start]
        total += (own - (torch.logsumexp(log_q, dim=1) - math.log(n))).sum().item()
    return total / n


def gradient_magnitude(images: torch.Tensor) -> torch.Tensor:
    """Mean finite-difference gradient magnitude of each image (N, C, H, W) -> (N,), float64."""
    t = images.double()
    dx = t[..., :-1, 1:] - t[..., :-1, :-1]
    dy = t[..., 1:, :-1] - t[..., :-1, :-1]
    return (dx.pow(2) + dy.pow(2)).sqrt().flatten(1).mean(1)


def binomial_blur(images: torch.Tensor) -> torch.Tensor:
    """Each channel of ``images`` (N, C, H, W) smoothed by the 3x3 binomial kernel
    ([1, 2, 1] / 4 in each direction, edges replicated): the smallest blur there is."""
    kernel = torch.tensor([1.0, 2.0, 1.0], dtype=images.dtype, device=images.device) / 4
    channels = images.shape[1]
    padded = torch.nn.functional.pad(images, (1, 1, 1, 1), mode="replicate")
    return torch.nn.functional.conv2d(padded, torch.outer(kernel, kernel).expand(channels, 1, 3, 3),
                                      groups=channels)


def evaluate_run(run: Any, *, split: str = "test", k: int = 1000, limit: int | None = None, seed: int = 0,
                 batch_size: int = 100, device: str = "cpu") -> dict[str, Any]:
    """``evaluate`` on a run's split (the first ``limit`` examples) on ``device`` (auto, cpu,
    cuda), plus ``split`` and the diagnosis, one line per finding, under ``findings``.

    A conditional run with labelled training data also gets ``label_following`` and
    ``label_classifier_accuracy`` (``vaekit.evaluation.labels``: do its samples follow their
    label, by a classifier fitted on the training labels and scored on this split, or the
    test (else validation) split when this is the training split)."""

    if split not in SPLITS:
        raise VaekitError(f"--split: expected one of {', '.join(SPLITS)}, got '{split}'")
    if limit is not None and limit < 1:
        raise VaekitError(f"--limit: expected at least 1, got {limit}")
    if k < 1:
        raise VaekitError(f"--k: expected at least 1, got {k}")

    bundle = run.load_data()
    x, labels = split_examples(bundle, split)
    if len(x) == 0:
        raise VaekitError(f"dataset '{bundle.info.name}' has an empty '{split}' split")
    cond = model_labels(run, labels, bundle, split)  # a conditional model's p(x|y), given the true labels
    if limit is not None:
        x = x[:limit]
        cond = None if cond is None else cond[:limit]
    metrics = evaluate(run.model.to(resolve_device(device)), x, k=k, batch_size=batch_size, seed=seed, cond=cond)
    metrics["split"] = split
    if run.model.config.conditional:
        train_x, train_labels = split_examples(bundle, "train")
        held_x, held_labels = x, cond
        if split == "train":  # the classifier is scored on a held-out labelled split, if there is one
            held = labelled_held_out(bundle)
            held_x, held_labels = split_examples(bundle, held) if held else (x, None)
        if train_labels is not None and held_labels is not None and len(held_x):
            metrics.update(label_following(run.model, train_x, train_labels, held_x, held_labels, seed=seed) or {})
    metrics["findings"] = [str(f) for f in diagnose(metrics, run.config)]
    return metrics


def evaluation_table(run_dir: Any, metrics: dict[str, Any]) -> Any:
    """A rich renderable of ``evaluate_run``'s figures and findings, for the terminal."""
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    n, k = metrics["n"], metrics["k"]
    kl_per_dim = metrics["kl_per_dim"]
    table = Table(title=f"{run_dir}: {metrics.get('split', '')} split, {n} examples", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("", style="dim")
    table.add_row("-ELBO", f"{metrics['elbo']:.2f}", f"nats per example (recon + KL; recon over {RECON_SAMPLES} "
                  "draws of z, where `vaekit info` shows training's one-draw figure)")
    table.add_row("  reconstruction", f"{metrics['recon']:.2f}", f"nats, mean of {RECON_SAMPLES} samples of z")
    table.add_row("  KL", f"{metrics['kl']:.2f}", "nats, closed form")
    table.add_row("NLL", f"{metrics['nll']:.2f}", f"nats, importance-sampled with k={k}")
    table.add_row("bits per dim", f"{metrics['bits_per_dim']:.4f}", "NLL / (ln 2 x values per example)")
    if "active_units" in metrics:
        table.add_row("active units", f"{metrics['active_units']} / {len(kl_per_dim)}",
                      escape("Var_x E[z|x] > 0.01"))
    if "mutual_info" in metrics:
        saturated = metrics["mutual_info"] > 0.95 * math.log(n)
        table.add_row("mutual information", f"{metrics['mutual_info']:.2f}",
                      f"nats, I(x;z) under q (at most log n = {math.log(n):.2f}"
                      + ("; at the bound, so the true value may be larger)" if saturated else ")"))
    if "sharpness_ratio" in metrics:
        table.add_row("reconstruction MSE", f"{metrics['recon_mse']:.4f}", "per value, at the posterior mean")
        ratio = metrics["sharpness_ratio"]
        table.add_row("sharpness", "n/a" if ratio is None else f"{ratio:.2f}",
                      "reconstructions' edge strength / inputs' (< 1: blurrier)")
        reference = metrics.get("sharpness_reference")
        table.add_row("  blur reference", "n/a" if reference is None else f"{reference:.2f}",
                      "the inputs' own under a 3x3 binomial blur (below it: blur)")
    if "label_following" in metrics:
        table.add_row("label following", f"{metrics['label_following']:.1%}",
                      f"of {metrics['label_samples']} samples classified as their label, against "
                      f"{metrics['label_classifier_accuracy']:.1%} of real examples (logistic regression on the "
                      "training labels)")
    for key, value in metrics.items():  # a family's own figures (held_out_figures)
        if key not in TABLE_KEYS and isinstance(value, (int, float)) and not isinstance(value, bool):
            table.add_row(key.replace("_", " "), f"{value:.4g}", "")
        elif key not in TABLE_KEYS and isinstance(value, list) and key.startswith("kl_per_group"):
            table.add_row("KL per group", "", "top first, " + ", ".join(f"{v:.2f}" for v in value))
    ranked = sorted(range(len(kl_per_dim)), key=lambda d: -kl_per_dim[d])
    shown = ", ".join(f"{d}: {kl_per_dim[d]:.2f}" for d in ranked[:8]) + (", ..." if len(ranked) > 8 else "")
    table.add_row("KL per dim", "", f"largest first, {shown}")
    findings = metrics.get("findings") or []
    lines = [Text("diagnosis: ", style="bold") + Text("no collapse, partial collapse or blur found" if not findings
                                                      else f"{len(findings)} finding(s)")]
    lines += [Text(f"- {f}") for f in findings]
    return Group(table, *lines)
