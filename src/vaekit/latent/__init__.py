"""Latent-space tools: sampling, interpolation, arithmetic, traversals and maps.

Everything works on a trained model through the model protocol (``encode`` ->
posterior with ``.mean``, ``decode`` -> likelihood with ``.mean``), on posterior means,
so it serves every model family and gives the same picture every time::

    from vaekit import latent
    run = vaekit.open_run("runs/mnist")
    images = latent.sample(run.model, 64, sampler=latent.gmm_sampler(run))
    path = latent.interpolate(run.model, x[3], x[17], steps=10)
    smile = latent.attribute_vector(run.model, with_smile, without_smile)
    rows, dims, collapsed = latent.traversal(run.model, x[:1], reference=x)

One job per module: ``encoding`` (batched encode/decode), ``gmm`` (mixture sampler), ``diffusion`` (a flow-matching
sampler over the codes),
``sampling``, ``paths`` (lerp/slerp), ``vectors`` (attribute arithmetic),
``dimensions`` (KL order, traversals), ``maps`` (2-D maps), ``inputs`` and ``outputs``
(what the CLI commands read and write), ``conditional`` (a conditional model's codes
decoded as every class). Every tool takes the examples' labels (``cond``) for a
conditional model; the run-level writers in ``outputs`` pass a split's labels themselves.
"""

from vaekit.latent.conditional import restyle, restyle_examples
from vaekit.latent.diffusion import DIFFUSION_FILE, DiffusionSampler, diffusion_sampler, fit_diffusion_sampler
from vaekit.latent.dimensions import kl_order, traversal
from vaekit.latent.encoding import decode_means, encode_means
from vaekit.latent.gmm import GMM_FILE, GMMSampler, fit_gmm_sampler, gmm_sampler
from vaekit.latent.maps import latent_map, manifold_grid, project_2d
from vaekit.latent.paths import decode_path, interpolate, label_path, latent_path, lerp, slerp
from vaekit.latent.sampling import SAMPLERS, run_sampler, sample
from vaekit.latent.vectors import (
    VECTORS_FILE,
    analogy,
    apply_vector,
    attribute_vector,
    class_vector,
    load_vector,
    save_vector,
    saved_vector_names,
)
from vaekit.training.diagnosis import COLLAPSED_KL, active_dims

__all__ = [
    "COLLAPSED_KL",
    "DIFFUSION_FILE",
    "GMM_FILE",
    "SAMPLERS",
    "VECTORS_FILE",
    "DiffusionSampler",
    "GMMSampler",
    "active_dims",
    "analogy",
    "apply_vector",
    "attribute_vector",
    "class_vector",
    "decode_means",
    "decode_path",
    "diffusion_sampler",
    "encode_means",
    "fit_diffusion_sampler",
    "fit_gmm_sampler",
    "gmm_sampler",
    "interpolate",
    "kl_order",
    "label_path",
    "latent_map",
    "latent_path",
    "lerp",
    "load_vector",
    "manifold_grid",
    "project_2d",
    "restyle",
    "restyle_examples",
    "run_sampler",
    "sample",
    "save_vector",
    "saved_vector_names",
    "slerp",
    "traversal",
]
