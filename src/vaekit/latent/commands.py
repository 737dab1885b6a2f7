"""What the latent commands write: one function per command, from a run and its flags to files.

Each function loads only the data it needs, calls the tools of ``vaekit.latent`` and
draws the result with ``vaekit.plotting.pictures``, so the CLI is a few lines per command and a
notebook gets the same files with the same call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vaekit.errors import VaekitError
from vaekit.latent import inputs
from vaekit.latent.conditional import require_conditional, restyle
from vaekit.latent.dimensions import traversal
from vaekit.latent.encoding import encode_means, mean_kl_per_dim
from vaekit.latent.maps import manifold_grid, project_2d
from vaekit.latent.paths import decode_path, interpolate, label_path
from vaekit.latent.sampling import check_sampler, run_sampler, sample
from vaekit.latent.vectors import analogy, apply_vector, attribute_vector, class_vector, load_vector, save_vector
from vaekit.plotting.pictures import is_image_run, save_gif, save_grid, save_labeled_grid, save_scatter, save_strip
from vaekit.training.diagnosis import COLLAPSED_KL
from vaekit.training.runs import Run

MANIFOLD_FILE = "manifold.png"
#: Examples the KL order of a traversal is measured on.
KL_REFERENCE = 2000


def _output(run: Run, output: Path | None, default: str, *beside: str) -> Path:
    """``output``, else ``default`` in the run under a name that replaces nothing there (nor do
    the files written ``beside`` it: ``Run.new_output_paths``)."""
    return Path(output) if output else run.new_output_paths(default, *beside)[0]


def write_samples(run: Run, *, n: int = 64, output: Path | None = None, temperature: float = 1.0, seed: int = 0,
                  sampler: str = "prior", components: int | None = None, binarize: bool = False,
                  label: str | int | None = None, steps: int | None = None) -> Path:
    """Decoded draws from the prior, the run's GMM sampler or its diffusion sampler (each fitted
    and saved on first use; ``steps``: the diffusion sampler's integration steps):
    a PNG grid for images, a CSV in original units for tables. A conditional run draws class
    ``label`` (an index or a class name); without one it draws the classes in turn, one
    class per column."""
    from vaekit.latent.writers import write_table

    check_sampler(sampler, components=components, steps=steps)
    if run.model.sequences:
        raise VaekitError(f"{run.path} models sequences (molecules): use vaekit molecules sample {run.path} "
                          f"-n {n} -o gen.smi")
    config = run.model.config
    if label is not None:
        require_conditional(run.model, "--label")
        cond: int | None = config.class_index(label)
    else:
        cond = None
    chosen = run_sampler(run, sampler, components=components, steps=steps)
    images = sample(run.model, n, sampler=chosen, temperature=temperature, seed=seed, binarize=binarize, cond=cond)
    is_image = is_image_run(run.data_info.shape)
    path = _output(run, output, "samples.png" if is_image else "samples.csv")
    if is_image:
        per_class = config.conditional and cond is None and config.num_classes <= 16
        nrow = config.num_classes if per_class else max(1, math.ceil(math.sqrt(n)))
        return save_grid(images, path, nrow=min(n, nrow))
    return write_table(run, images, path)


def write_restyle(run: Run, *, examples: str | None = None, n: int = 8, split: str = "test", seed: int = 0,
                  temperature: float = 1.0, output: Path | None = None) -> Path:
    """Conditional "style transfer" grid of a conditional run: each row is one code z, decoded
    with every class (columns). The codes are those of ``examples`` (comma-separated indices
    into ``split``, each encoded with its own label; its input is shown in the first column)
    or, without ``examples``, ``n`` prior draws (``seed``, ``temperature``)."""
    inputs.require_images(run, "restyle")
    require_conditional(run.model, "vaekit restyle")
    model, config = run.model, run.model.config
    if n < 1:
        raise VaekitError(f"-n: expected at least 1, got {n}")
    classes = [config.class_name(k) for k in range(config.num_classes)]
    if examples is not None:
        bundle = run.load_data()
        x, labels = inputs.split_examples(bundle, split)
        labels = inputs.model_labels(run, labels, bundle, split)
        assert labels is not None
        items = [v for v in examples.replace(" ", "").split(",") if v]
        if not items:
            raise VaekitError(f"--from: expected comma-separated indices like 0,1,2, got '{examples}'")
        chosen = torch.tensor([inputs.parse_index(v, len(x), split, "--from") for v in items])
        z = encode_means(model, x[chosen], labels[chosen])
        grid_images = torch.cat([x[chosen][:, None], restyle(model, z).to(x.dtype)], dim=1)
        row_labels = [f"{split} {i} ({config.class_name(int(labels[i]))})"
                      for i in chosen.tolist()]
        col_labels = ["input", *classes]
        title = "Each row: one example's code z, decoded with every label"
    else:
        z = model.prior_sample(n, temperature=temperature, generator=torch.Generator().manual_seed(seed))
        grid_images = restyle(model, z.cpu())
        row_labels = [f"z{i}" for i in range(n)]
        col_labels = classes
        title = "Each row: one prior draw z, decoded with every label"
    return save_labeled_grid(grid_images, _output(run, output, "restyle.png"), row_labels=row_labels,
                             col_labels=col_labels, title=title)


def write_interpolation(run: Run, *, start: str | None = None, end: str | None = None,
                        from_class: str | None = None, to_class: str | None = None, split: str = "test",
                        steps: int = 10, method: str = "slerp", output: Path | None = None) -> list[Path]:
    """A strip PNG (and the same path with .gif) of the decoded path between two examples
    (indices into ``split`` or image files) or between two classes' mean codes."""
    inputs.require_images(run, "interpolate")
    path = _output(run, output, "interpolation.png", "interpolation.gif")
    if path.suffix.lower() != ".png":
        raise VaekitError(f"{path}: expected an output file ending in .png (the .gif is written beside it)")
    by_example, by_class = (start, end) != (None, None), (from_class, to_class) != (None, None)
    if by_example == by_class or None in ((start, end) if by_example else (from_class, to_class)):
        raise VaekitError("interpolate: give --from and --to (indices or image files), "
                          "or --from-class and --to-class")
    conditional = run.model.config.conditional
    if by_class:
        bundle = run.load_data()
        x, labels = inputs.split_examples(bundle, split)
        labels = inputs.require_labels(labels, bundle, split, "--from-class")
        ends = [inputs.parse_class(v, bundle, labels, flag) for v, flag in
                ((from_class, "--from-class"), (to_class, "--to-class"))]
        means = [encode_means(run.model, x[labels == k], labels[labels == k] if conditional else None).mean(0)
                 for k in ends]
        frames = decode_path(run.model, means[0], means[1], steps=steps, method=method,
                             cond=label_path(run.model, ends[0], ends[1], steps))
    else:
        chosen = [_example(run, v, split, flag) for v, flag in ((start, "--from"), (end, "--to"))]
        cond = torch.stack([c for _, c in chosen]) if conditional else None
        frames = interpolate(run.model, chosen[0][0], chosen[1][0], steps=steps, method=method, cond=cond)
    return [save_strip(frames, path), save_gif(frames, path.with_suffix(".gif"))]


def _example(run: Run, value: str, split: str, flag: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(1, *shape)`` and its label (``None`` when unlabelled): example ``value`` of ``split``
    if it is an index, else the image file (refused for a conditional run: no label)."""
    if not inputs.is_index(value):
        inputs.require_unconditional_files(run, flag)
        return inputs.load_image_file(run, value, flag), None
    bundle = run.load_data()
    x, labels = inputs.split_examples(bundle, split)
    i = inputs.parse_index(value, len(x), split, flag)
    labels = inputs.model_labels(run, labels, bundle, split)
    return x[i][None], None if labels is None else labels[i]


@dataclass
class Arithmetic:
    """What ``write_arithmetic`` did: the files, the vector's name if it was saved, and the
    grid drawn, ``(rows, columns, *shape)``: one row per input, the input then one column per
    alpha (the analogy: one row, A, B, C and the result)."""

    paths: list[Path]
    saved_as: str | None = None
    vectors_file: Path | None = None
    grid: torch.Tensor | None = None


#: Longest row label of a grid of the user's images (longer file names keep their end).
ROW_LABEL_CHARS = 24


def _row_label(name: str) -> str:
    return name if len(name) <= ROW_LABEL_CHARS else "…" + name[-(ROW_LABEL_CHARS - 1):]


def write_arithmetic(run: Run, *, target_class: str | None = None, with_dir: str | None = None,
                     without_dir: str | None = None, vector: str | None = None, analogy_of: str | None = None,
                     alphas: str | Sequence[float] = "-2,-1,0,1,2", name: str | None = None, n: int | None = None,
                     split: str | None = None, images: str | Path | Sequence[str | Path] | torch.Tensor | None = None,
                     output: Path | None = None) -> Arithmetic:
    """Latent arithmetic as a labelled grid: inputs (rows) moved along an attribute vector
    by each alpha (columns, after the input itself), or one analogy [A, B, C, decode(zA - zB + zC)].

    The vector comes from labels (``target_class`` vs the rest, on the training split),
    from two image folders (``with_dir`` minus ``without_dir``) or from a saved ``vector``;
    a new vector is saved under ``name`` (default ``class-<k>`` or ``with-<folder>``).
    The inputs are the first ``n`` examples of ``split`` (8 of test by default) or, instead,
    ``images``: image files and folders (read like ``interpolate --from file.png``: brought
    to the run's shape and scaling; a conditional run refuses them, they carry no label),
    or a tensor ``(N, *shape)`` already in the run's shape.
    """
    inputs.require_images(run, "arithmetic")
    modes = [target_class is not None, with_dir is not None or without_dir is not None, vector is not None,
             analogy_of is not None]
    if sum(modes) != 1:
        raise VaekitError("arithmetic: give exactly one of --class K, --with DIR --without DIR, --vector NAME "
                          "or --analogy A,B,C")
    own = images is not None
    if own and (n is not None or split is not None):
        raise VaekitError("arithmetic: --input and -n/--split are alternatives (your images, or the first N "
                          "examples of a split); give one")
    if own and analogy_of is not None:
        raise VaekitError("arithmetic: --analogy takes indices into --split, not --input")
    n = 8 if n is None else n
    split = "test" if split is None else split
    if n < 1:
        raise VaekitError(f"-n: expected at least 1, got {n}")
    path = _output(run, output, "arithmetic.png")
    alpha_values = [] if analogy_of is not None else inputs.parse_floats(
        alphas if isinstance(alphas, str) else ",".join(map(str, alphas)), "--alpha")
    row_labels = None
    if images is not None:  # the user's images: no split is loaded unless the vector needs the training labels
        chosen, names = _own_images(run, images)
        chosen_cond, row_labels = None, None if names is None else [_row_label(v) for v in names]
    bundle = run.load_data() if not own or target_class is not None else None
    if not own:
        assert bundle is not None
        x, labels = inputs.split_examples(bundle, split)
        cond = inputs.model_labels(run, labels, bundle, split)
        if analogy_of is not None:
            a, b, c = inputs.parse_indices(analogy_of, 3, len(x), split, "--analogy")
            triple = None if cond is None else (cond[a:a + 1], cond[b:b + 1], cond[c:c + 1])
            result = analogy(run.model, x[a], x[b], x[c], triple)
            grid_images = torch.stack([x[a], x[b], x[c], result[0]])[None]
            save_labeled_grid(grid_images, path, col_labels=[f"A ({a})", f"B ({b})", f"C ({c})", "A − B + C"],
                              title="Analogy: decode(z_A − z_B + z_C)")
            return Arithmetic([path], grid=grid_images)
        chosen, chosen_cond = x[:n], None if cond is None else cond[:n]
    saved_as = None
    if target_class is not None:
        assert bundle is not None
        train_x, train_labels = inputs.split_examples(bundle, "train")
        train_labels = inputs.require_labels(train_labels, bundle, "train", "--class")
        k = inputs.parse_class(target_class, bundle, train_labels, "--class")
        direction = class_vector(run.model, train_x, train_labels, k)
        if not own and labels is not None:  # show the vector on inputs of other classes
            chosen = x[labels != k][:n]
            chosen_cond = None if cond is None else cond[labels != k][:n]
        saved_as = name or f"class-{inputs.class_name(bundle, k)}"
        title = f"Adding α × the '{inputs.class_name(bundle, k)}' vector (class mean − rest)"
    elif vector is not None:
        direction = load_vector(run, vector)
        title = f"Adding α × the saved vector '{vector}'"
    else:
        if with_dir is None or without_dir is None:
            raise VaekitError("arithmetic: --with DIR and --without DIR go together")
        inputs.require_unconditional_files(run, "--with/--without")
        direction = attribute_vector(run.model, inputs.load_image_folder(run, with_dir, "--with"),
                                     inputs.load_image_folder(run, without_dir, "--without"))
        saved_as = name or f"with-{Path(with_dir).expanduser().resolve().name}"
        title = f"Adding α × the '{saved_as}' vector"
    moved = apply_vector(run.model, chosen, direction, alpha_values, chosen_cond)
    grid_images = torch.cat([chosen[:, None].to(moved.dtype), moved], dim=1)
    save_labeled_grid(grid_images, path, row_labels=row_labels,
                      col_labels=["input"] + [f"α={a:g}" for a in alpha_values], title=title)
    vectors_file = save_vector(run, saved_as, direction) if saved_as else None
    return Arithmetic([path], saved_as, vectors_file, grid_images)


def _image_values(images: str | Path | Sequence[str | Path]) -> list[str]:
    return [str(images)] if isinstance(images, (str, Path)) else [str(v) for v in images]


def _own_images(run: Run, images: str | Path | Sequence[str | Path] | torch.Tensor
                ) -> tuple[torch.Tensor, list[str] | None]:
    """The user's inputs ``(N, *shape)`` and their names: a tensor as it is (checked, no names),
    files and folders read."""
    if isinstance(images, torch.Tensor):
        inputs.require_unconditional_files(run, "images")
        shape = tuple(run.data_info.shape)
        x = images[None] if tuple(images.shape) == shape else images
        if tuple(x.shape[1:]) != shape or len(x) == 0:
            raise VaekitError(f"images: expected a tensor of shape (N, {', '.join(map(str, shape))}), "
                              f"got {tuple(images.shape)}")
        return x.float(), None
    return inputs.load_images(run, _image_values(images), "--input")


@dataclass
class Traversal:
    """What ``write_traversal`` did: the file, the rows' dimensions, and every collapsed dimension."""

    path: Path
    dims: list[int]
    collapsed: list[int] = field(default_factory=list)
    latent_dim: int = 0


def write_traversal(run: Run, *, index: int = 0, split: str = "test", dims: int | None = 10, span: float = 3.0,
                    steps: int = 9, output: Path | None = None) -> Traversal:
    """Rows of single-dimension sweeps from one example's code, ordered by mean KL (measured
    on up to 2000 examples of ``split``); collapsed rows are dimmed and framed in red."""
    inputs.require_images(run, "traverse")
    if steps < 2 or span <= 0:
        raise VaekitError(f"traverse: expected --steps >= 2 and --range > 0, got {steps} and {span}")
    bundle = run.load_data()
    x, labels = inputs.split_examples(bundle, split)
    cond = inputs.model_labels(run, labels, bundle, split)
    i = inputs.parse_index(str(index), len(x), split, "--index")
    picked = inputs.subset(len(x), KL_REFERENCE)
    values = torch.linspace(-span, span, steps)
    # measured once: orders the rows and labels them
    kl = mean_kl_per_dim(run.model, x[picked], None if cond is None else cond[picked]).tolist()
    images, rows, collapsed = traversal(run.model, x[i:i + 1], values=values, dims=dims, kl=kl,
                                        cond=None if cond is None else cond[i:i + 1])
    labels = [f"z{d}  {kl[d]:.{2 if kl[d] >= 0.1 else 3}f} nats" + ("  collapsed" if c else "")
              for d, c in zip(rows, collapsed, strict=True)]
    title = f"Traversals of {split} example {i}: rows by KL, red = collapsed (< {COLLAPSED_KL} nats)"
    path = save_labeled_grid(images, _output(run, output, "traversal.png"), row_labels=labels,
                             col_labels=[f"{v:.1f}" for v in values.tolist()], dimmed_rows=collapsed, title=title)
    return Traversal(path, rows, [d for d in range(len(kl)) if kl[d] < COLLAPSED_KL], len(kl))


METHOD_AXES = {"latent": ("z0", "z1"), "pca": ("principal component 1", "principal component 2"),
               "tsne": ("t-SNE 1", "t-SNE 2")}


def write_latent_map(run: Run, *, split: str = "test", method: str = "auto", n: int = 2000, seed: int = 0,
                     output: Path | None = None) -> list[Path]:
    """A scatter map of the codes of up to ``n`` examples of ``split``, coloured by class;
    with a 2-D latent space of images also ``manifold.png`` (decoded latent grid) beside it
    (without ``output``: ``latent_map-2.png`` and ``manifold-2.png`` where those names are taken)."""
    if n < 5:
        raise VaekitError(f"-n: expected at least 5 points, got {n}")
    path, manifold = (Path(output), Path(output).with_name(MANIFOLD_FILE)) if output else \
        run.new_output_paths("latent_map.png", MANIFOLD_FILE)
    bundle = run.load_data()
    x, labels = inputs.split_examples(bundle, split)
    chosen = inputs.subset(len(x), n, seed)
    cond = inputs.model_labels(run, labels, bundle, split)
    coords, used = project_2d(encode_means(run.model, x[chosen], None if cond is None else cond[chosen]),
                              method=method, seed=seed)
    d = run.model.config.latent_dim
    how = {"latent": f"{d}-D latent", "pca": f"PCA of the {d}-D latent", "tsne": f"t-SNE of the {d}-D latent"}[used]
    title = f"{bundle.info.name}: posterior means of {len(chosen)} {split} examples ({how})"
    xlabel, ylabel = METHOD_AXES[used] if d > 1 else ("z0", "(a 1-D latent: no second axis)")
    written = [save_scatter(coords, None if labels is None else labels[chosen], path,
                            class_names=bundle.info.class_names, title=title, xlabel=xlabel, ylabel=ylabel)]
    if d == 2 and is_image_run(run.data_info.shape):
        written.append(save_grid(manifold_grid(run.model), manifold, nrow=15, min_size=512))
    return written
