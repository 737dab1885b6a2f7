"""The ``vaekit`` command line: one module per group of commands over the shared ``options``.

``app`` (``vaekit.cli.app``) gathers ``train``, ``images`` (reconstruct, sample, interpolate,
arithmetic, restyle, traverse, latent-map), ``runs`` (info, report, evaluate), ``anomaly``,
``molecules``, ``compress``, ``serve`` (serve, export) and ``codes`` (encode, decode);
``main`` is the ``vaekit`` entry point.
"""

from vaekit.cli.app import app, main

__all__ = ["app", "main"]
