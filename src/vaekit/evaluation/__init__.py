"""Held-out evaluation of a model or a run (bounds, likelihood, latent usage, blur) and
disentanglement metrics (MIG, DCI, FactorVAE score) against known generative factors."""

from vaekit.evaluation.disentanglement import dci, mig
from vaekit.evaluation.evaluate import evaluate, evaluate_run

__all__ = ["dci", "evaluate", "evaluate_run", "mig"]
