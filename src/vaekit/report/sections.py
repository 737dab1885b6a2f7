"""The sections of the run report, one builder each, in the order they appear.

Each builder takes the run (and its dataset where it needs examples), runs the model in
``eval`` mode without gradients (``report.render_report`` arranges both) and returns a
``Section``, or ``None`` when the run has nothing to show for it. The latent sections
call ``vaekit.latent`` (traversal, 2-D map, the run's saved GMM sampler), so the report
and the ``vaekit traverse`` / ``latent-map`` / ``sample`` commands draw the same thing.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vaekit.data.molecules.tokens import get_tokenizer
from vaekit.latent import GMM_FILE, encode_means, gmm_sampler, project_2d, traversal
from vaekit.latent import sample as latent_sample
from vaekit.objectives.schedules import KLSchedule
from vaekit.plotting.figures import array_to_data_uri, figure_to_data_uri, kl_bars, latent_scatter, loss_curves
from vaekit.plotting.pictures import grid
from vaekit.report.pictures import LEVEL_DRAWS, levels_grid
from vaekit.report.template import Section, pixel_image, plot_html
from vaekit.training.diagnosis import COLLAPSED_KL, active_dims

if TYPE_CHECKING:
    from vaekit.data.bundle import Dataset
    from vaekit.training.runs import Run

GRID_COLUMNS = 8
CELL_PX = 48  # target on-screen size of one image cell, reached by an integer nearest-neighbour scale
TRAVERSAL_VALUES = tuple(float(v) for v in np.linspace(-3.0, 3.0, 9))
TRAVERSAL_MAX_DIMS = 10
TRAVERSAL_REFERENCE = 1000  # held-out examples the traversal measures KL on when the run recorded none
LATENT_MAP_MAX_POINTS = 2000
TSNE_MAX_POINTS = 1000  # t-SNE of 1,000 codes: ~3 s on one CPU core
TABLE_ROWS = 5
TABLE_MAX_COLUMNS = 10


def _plot(fig: Any, alt: str, caption: str) -> str:
    """A figure embedded at its natural size (CSS pixels = figure pixels) with its caption."""

    width = round(fig.get_figwidth() * fig.dpi)
    return plot_html(figure_to_data_uri(fig), width, alt, caption)


def _device(run: Run) -> torch.device:
    return next(run.model.parameters()).device


def held_out(data: Dataset) -> tuple[torch.Tensor, torch.Tensor | None, str]:
    """The test split (or validation, or training when a split is missing), its labels and its name:
    the report shows what the model did not train on whenever it can."""
    for split in ("test", "val", "train"):
        x = getattr(data, split, None)
        if x is not None and len(x):
            return x, getattr(data, f"{split}_labels", None), {"val": "validation"}.get(split, split)
    raise ValueError("the dataset has no examples")


def fmt_num(v: float) -> str:
    return f"{v:g}"


# -- loss curves ---------------------------------------------------------------------------
def _beta_curve(run: Run) -> Callable[[np.ndarray], np.ndarray] | None:
    """β as a smooth function of (fractional) epoch, so per-step annealing draws as a ramp,
    not as the staircase of the per-epoch values in metrics.jsonl."""

    tc = run.train_config
    try:
        schedule = KLSchedule.parse(tc.kl_anneal, tc.epochs)
    except Exception:  # an unreadable schedule: fall back to the recorded per-epoch beta
        return None

    def curve(epochs: np.ndarray) -> np.ndarray:
        e = np.floor(epochs) if tc.anneal_per == "epoch" else epochs
        return np.array([tc.beta * schedule.weight(min(float(v), tc.epochs - 1e-9)) for v in e])

    return curve


def curves_section(run: Run) -> Section | None:

    metrics = run.metrics
    if not metrics:
        return None
    fig = loss_curves(metrics, _beta_curve(run), best_epoch=run.summary.get("best_epoch"))
    tc = run.train_config
    beta_note = ("β stays at " + fmt_num(tc.beta) if tc.kl_anneal in ("", "none", "constant")
                 else f"β follows the <b>{escape(tc.kl_anneal)}</b> schedule up to {fmt_num(tc.beta)}")
    last = metrics[-1]
    gap = ""
    if last.get("val_elbo") is not None:
        gap = (f" After epoch {last['epoch']} the validation −ELBO is {last['val_elbo']:.2f} nats "
               f"(train {last['train_elbo']:.2f}).")
    caption = ("<b>Left:</b> reconstruction term −log p(x|z) on the training set (averaged over each epoch) and "
               "the validation set (end of epoch). <b>Right:</b> KL(q(z|x) ‖ p(z)); the dashed green line is the "
               f"effective β on the right axis ({beta_note}). Lower is better for both terms; their sum is the "
               f"negative ELBO.{gap}")
    return Section("curves", "Loss curves", _plot(fig, "training curves", caption))


# -- image sections ------------------------------------------------------------------------
def _grid_image(images: torch.Tensor, nrow: int) -> tuple[str, int]:
    """A ``(N, C, H, W)`` grid (``pictures.grid``) scaled up by an integer factor: its data URI and width."""

    scale = max(1, round(CELL_PX / max(images.shape[-2:])))
    arr = grid(images.detach().float().cpu(), nrow)
    return array_to_data_uri(arr, scale), arr.shape[1] * scale


def _grid_html(images: torch.Tensor, nrow: int, alt: str, cls: str = "px") -> str:
    uri, width = _grid_image(images, nrow)
    return pixel_image(uri, width, alt, cls)


def reconstruction_section(run: Run, data: Dataset) -> Section:
    x, y, split = held_out(data)
    x = x[: 4 * GRID_COLUMNS]
    cond = None if y is None else y[: len(x)]
    recon = run.model.reconstruct(x.to(_device(run)), cond).cpu()
    rows = []
    for start in range(0, len(x), GRID_COLUMNS):
        if rows:
            rows.append('<div class="gap"></div>')
        for label, imgs in (("input", x), ("reconstruction", recon)):
            chunk = imgs[start:start + GRID_COLUMNS]
            rows.append(f'<div class="label">{label}</div>{_grid_html(chunk, GRID_COLUMNS, label)}')
    err = (recon - x).pow(2).mean().item()
    caption = (f"The first {len(x)} {split} images (upper row of each pair) and their reconstructions (lower row): "
               f"the decoder mean at the posterior mean. Mean squared pixel error {err:.4f}.")
    body = f'<figure><div class="rows">{"".join(rows)}</div><figcaption>{caption}</figcaption></figure>'
    return Section("reconstructions", "Reconstructions", body)


def levels_section(run: Run, data: Dataset) -> Section | None:
    """A hierarchy's levels: keep an input's top levels, redraw the ones below."""
    levels = run.model.levels
    if levels < 2:
        return None
    x, y, split = held_out(data)
    x = x[:6].to(_device(run))
    cond = None if y is None else y[: len(x)].to(_device(run))
    columns = LEVEL_DRAWS + 2
    blocks = "".join(
        f'<figure><h3>top {keep} of {levels} levels kept</h3>'
        f'{_grid_html(levels_grid(run.model, x, cond, keep=keep).cpu(), columns, f"top {keep} levels kept")}</figure>'
        for keep in range(1, levels))
    lead = (f"Each row: a {split} image, its reconstruction, then {LEVEL_DRAWS} decodings that keep the image's "
            "top levels (posterior means) and draw the levels below from the prior given them. What stays the "
            "same across a row is what the kept levels encode; what changes, the lower levels.")
    return Section("levels", "What each level controls", f'<div class="pair">{blocks}</div>', lead=lead)


def samples_section(run: Run) -> Section:
    n = GRID_COLUMNS * GRID_COLUMNS
    title = "Learned prior" if run.model.learned_prior else "Prior N(0, I)"  # e.g. a VQ-VAE's PixelCNN over codes
    figures = [(title, latent_sample(run.model, n, seed=0).cpu())]
    # Training saves the sampler; gmm_sampler refits it if the weights changed since (a resumed run).
    if (run.path / GMM_FILE).is_file():
        figures.append(("Gaussian mixture on the codes",
                        latent_sample(run.model, n, sampler=gmm_sampler(run), seed=0).cpu()))
    blocks = "".join(f'<figure><h3>{escape(title)}</h3>{_grid_html(imgs, GRID_COLUMNS, title)}</figure>'
                     for title, imgs in figures)
    lead = (f"Decoder means of {n} latent draws (seed 0). Blurry or mixed shapes show where the prior covers "
            "regions that the encoder never uses.")
    if len(figures) > 1:
        lead += (f" The second grid draws from a Gaussian mixture fitted to the posterior means of the training "
                 f"set (<code>{GMM_FILE}</code>), which keeps samples where the data lie.")
    return Section("samples", "Samples", f'<div class="pair">{blocks}</div>', lead=lead)


def traversal_section(run: Run, data: Dataset, kl: np.ndarray | None) -> Section:
    x_all, y_all, split = held_out(data)
    cond = y_all
    # The run's recorded KL (when it has one) orders and flags the rows, so they agree with the KL chart.
    images, dims, collapsed = traversal(run.model, x_all[:1], values=TRAVERSAL_VALUES, dims=TRAVERSAL_MAX_DIMS,
                                        reference=x_all[:TRAVERSAL_REFERENCE], kl=kl,
                                        cond=None if cond is None else cond[:1],
                                        reference_cond=None if cond is None else cond[:TRAVERSAL_REFERENCE])
    n_values = len(TRAVERSAL_VALUES)
    strips = [_grid_image(images[r].cpu(), n_values) for r in range(len(dims))]
    labels = "".join(f"<span>{v:+g}</span>".replace("-", "−") if v else "<span>0</span>" for v in TRAVERSAL_VALUES)
    head = f'<div></div><div class="head" style="width:{strips[0][1]}px">{labels}</div>'
    rows = []
    for (uri, width), dim, flat in zip(strips, dims, collapsed, strict=True):
        kl_text = f"{kl[dim]:.2f} nats" if kl is not None else ""
        badge = '<span class="badge">collapsed</span>' if flat else ""
        img = pixel_image(uri, width, f"traversal of z{dim}", "px dim" if flat else "px")
        rows.append(f'<div class="label"><b>z{dim}</b> {kl_text}{badge}</div>{img}')
    n_collapsed = sum(collapsed)
    d = run.model.config.latent_dim
    shown = (f"the {len(dims)} dimensions with the most KL" if len(dims) < d
             else "both dimensions" if d == 2 else f"all {d} dimensions")
    caption = (f"Each row decodes the posterior mean of the first {split} image with one latent coordinate set to "
               f"values from −3 to 3 (columns) and the others unchanged; rows show {shown}, largest KL first.")
    if n_collapsed:
        caption += (f" Rows marked <b>collapsed</b> ({n_collapsed}) carry less than {COLLAPSED_KL:g} nats: "
                    "the decoder ignores them, so the image does not change.")
    body = (f'<figure><div class="rows">{head}{"".join(rows)}</div>'
            f"<figcaption>{caption}</figcaption></figure>")
    return Section("traversal", "Latent traversal", body)


# -- table runs ----------------------------------------------------------------------------
def values_section(run: Run, data: Dataset) -> Section:
    x, y, split = held_out(data)
    x = x[:TABLE_ROWS]
    recon = run.model.reconstruct(x.to(_device(run)), None if y is None else y[: len(x)]).cpu()
    flat_x, flat_r = x.reshape(len(x), -1), recon.reshape(len(recon), -1)
    standardizer = run.standardizer
    if standardizer is not None and standardizer.mean.numel() == flat_x.shape[1]:
        flat_x, flat_r = standardizer.inverse_transform(flat_x), standardizer.inverse_transform(flat_r)
        units = "in the data's original units (standardization undone)"
    else:
        units = "as the model sees them"
    names = run.data_info.columns or [f"x{i}" for i in range(flat_x.shape[1])]
    n_cols = min(len(names), TABLE_MAX_COLUMNS, flat_x.shape[1])
    head = "".join(f"<th>{escape(str(c))}</th>" for c in names[:n_cols])
    body = []
    for i in range(len(x)):
        for cls, label, row in (("orig", f"#{i + 1} original", flat_x[i]), ("recon", "reconstructed", flat_r[i])):
            cells = "".join(f"<td>{v:.4g}</td>" for v in row[:n_cols].tolist())
            body.append(f'<tr class="{cls}"><td>{label}</td>{cells}</tr>')
    more = f" Showing the first {n_cols} of {len(names)} columns." if len(names) > n_cols else ""
    err = (flat_r - flat_x).abs().mean(dim=0)[:n_cols]
    err_cells = "".join(f"<td>{v:.3g}</td>" for v in err.tolist())
    table = (f'<div class="values-wrap"><table class="values"><thead><tr><th></th>{head}</tr></thead>'
             f'<tbody>{"".join(body)}<tr class="err orig"><td>mean |error|</td>{err_cells}</tr></tbody></table></div>')
    caption = (f"The first {len(x)} {split} rows and their reconstructions (decoder mean at the posterior mean), "
               f"{units}; the last line is the mean absolute error per column over these rows.{more}")
    return Section("values", "Reconstructed values", f"<figure>{table}<figcaption>{caption}</figcaption></figure>")


# -- sequence runs (molecules) -------------------------------------------------------------
SEQUENCE_ROWS = 8


def _sequence_text(run: Run) -> Callable[[torch.Tensor], str]:
    """Token ids -> text: the SMILES they spell when the chem extra can decode the run's
    tokens, else the tokens joined (the report needs no extra to be written)."""
    info = run.data_info
    vocabulary = list(info.vocabulary or [])
    try:

        detokenize = get_tokenizer(info.tokenizer or "smiles").detokenize
    except Exception:  # no chem extra: show the tokens themselves
        detokenize = "".join

    def text(ids: torch.Tensor) -> str:
        tokens = []
        for i in ids.long().tolist():
            if i == 2:  # eos
                break
            if i >= 3:
                tokens.append(vocabulary[i])
        return detokenize(tokens)

    return text


def sequences_section(run: Run, data: Dataset) -> Section:
    x, _, split = held_out(data)
    x = x[:SEQUENCE_ROWS].to(_device(run))
    text = _sequence_text(run)
    recon = run.model.reconstruct(x).cpu()
    samples = run.model.sample(SEQUENCE_ROWS, generator=torch.Generator().manual_seed(0)).cpu()
    same = 0
    rows = []
    for i in range(len(x)):
        original, rebuilt = text(x[i].cpu()), text(recon[i])
        same += original == rebuilt
        rows.append(f'<tr class="orig"><td>#{i + 1}</td><td><code>{escape(original)}</code></td>'
                    f"<td><code>{escape(rebuilt)}</code></td></tr>")
    drawn = "".join(f"<tr><td>{i + 1}</td><td><code>{escape(text(row))}</code></td><td></td></tr>"
                    for i, row in enumerate(samples))
    table = (f'<div class="values-wrap"><table class="values"><thead><tr><th></th><th>{split} sequence</th>'
             f'<th>greedy reconstruction</th></tr></thead><tbody>{"".join(rows)}'
             f'<tr class="err orig"><td colspan="3">prior samples (greedy decoding of z ~ N(0, I))</td></tr>'
             f"{drawn}</tbody></table></div>")
    caption = (f"The first {len(x)} {split} sequences and their greedy reconstructions from the posterior mean "
               f"({same} of {len(x)} exact), then greedy decodings of prior draws. "
               "<code>vaekit molecules sample</code> draws many and reports their validity.")
    return Section("values", "Sequences", f"<figure>{table}<figcaption>{caption}</figcaption></figure>")


# -- KL per dimension ----------------------------------------------------------------------
def kl_per_dim(run: Run) -> tuple[np.ndarray | None, str]:
    """Mean KL per latent dimension as training measured it (the test set's from summary.json,
    else the last validation epoch's) and where it comes from: the report recomputes nothing."""
    kl = run.summary.get("test", {}).get("kl_per_dim")
    if kl is not None:
        return np.asarray(kl, dtype=float), "test set"
    for m in reversed(run.metrics):
        if m.get("val_kl_per_dim") is not None:
            return np.asarray(m["val_kl_per_dim"], dtype=float), f"validation set, epoch {m['epoch']}"
    return None, ""


def kl_section(kl: np.ndarray | None, where: str, free_bits: float = 0.0) -> Section | None:

    if kl is None or not len(kl):
        return None
    active = active_dims(kl)
    caption = (f'<b><span class="active-units">{active}</span> of {len(kl)} latent dimensions active</b> '
               f"(KL &gt; {COLLAPSED_KL:g} nats, {where}). Bars are sorted by KL on a log scale; grey bars "
               "under the dashed line are collapsed units the model does not use. The total KL is "
               f"{kl.sum():.2f} nats per example.")
    if free_bits > 0:
        caption += (f" The dotted line is the free-bits floor ({free_bits:g} nats): below it the objective does not "
                    "push a dimension's KL down.")
    figure = kl_bars(kl, COLLAPSED_KL, free_bits=free_bits)
    return Section("kl", "KL per latent dimension", _plot(figure, "KL per dimension", caption))


# -- latent map ----------------------------------------------------------------------------
def latent_map_section(run: Run, data: Dataset) -> Section:

    x, labels, split = held_out(data)
    d = run.model.config.latent_dim
    n = TSNE_MAX_POINTS if d > 2 else LATENT_MAP_MAX_POINTS  # t-SNE time grows with the points
    x = x[:n]
    cond = None if labels is None else labels[:n]
    labels = labels[:n].cpu().numpy() if labels is not None else None
    coords, used = project_2d(encode_means(run.model, x, cond), method="auto")
    if used == "tsne":
        axes, how = ("t-SNE 1", "t-SNE 2"), (f"placed by a t-SNE map of their {d}-D posterior means (nearby points "
                                             "have similar codes; distances between clusters mean little)")
    elif used == "pca":  # too few examples for t-SNE
        axes, how = ("PC 1", "PC 2"), f"on the first two principal components of their {d}-D posterior means"
    elif d == 2:
        axes, how = ("z0", "z1"), "at their posterior means in the 2-D latent space"
    else:
        axes, how = ("z0", ""), "at their 1-D posterior means"
    class_names = run.data_info.class_names
    if labels is not None and class_names is None and labels.max(initial=0) < 10:
        class_names = [str(i) for i in range(10)]
    fig = latent_scatter(coords.numpy(), labels, class_names, axes, title=f"{split.capitalize()} set in latent space")
    colour = "coloured by class" if labels is not None else "uncoloured (the data have no labels)"
    caption = f"{len(coords):,} {split} examples {how}, {colour}."
    if labels is not None:
        caption += " Separate clusters mean the encoder keeps the classes apart without ever seeing a label."
    return Section("latent-map", "Latent map", _plot(fig, "latent map", caption))
