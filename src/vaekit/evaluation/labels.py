"""Does a conditional model draw the class it is asked for? Judged by a classifier of the run's own labels.

A conditional VAE can learn to ignore its label: when the code z carries the class, the
decoder reads the class from z, and ``sample --label 5`` draws whatever class the prior
draw lands on. ``label_following`` measures it without any outside model: a logistic
regression (scikit-learn) fitted on a few thousand training examples and their labels,
scored on held-out examples (its own accuracy, the ceiling of the check), then asked to
classify samples drawn for every class in turn. ``diagnosis`` flags a run whose samples
are recognised as the asked class clearly less often than the classifier recognises real
held-out examples.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from vaekit.data.bundle import Dataset
from vaekit.latent.inputs import split_examples
from vaekit.models.base import Model
from vaekit.training.diagnosis import Finding, label_ignored

#: Training examples the classifier is fitted on (a seeded subset beyond): a few seconds on one core.
FIT_EXAMPLES = 3000
#: Held-out examples its accuracy is measured on.
HELD_OUT_EXAMPLES = 1000
#: Samples drawn per class (at most ``MAX_SAMPLES`` in all).
SAMPLES_PER_CLASS = 100
MAX_SAMPLES = 2000


def label_following(model: Model, train_x: torch.Tensor, train_labels: torch.Tensor, held_x: torch.Tensor,
                    held_labels: torch.Tensor, *, seed: int = 0) -> dict[str, Any] | None:
    """How often samples of a conditional ``model`` are classified as the label they were drawn for.

    Returns ``label_following`` (the share of prior samples, decoder means, ``SAMPLES_PER_CLASS``
    of every class, that the classifier assigns to the asked class),
    ``label_classifier_accuracy`` (the same classifier's accuracy on ``held_x``: what a model
    that follows its labels perfectly would score) and ``label_samples``. ``None`` for an
    unconditional model, or when the training labels hold fewer than two classes.
    """
    if not model.config.conditional:
        return None
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    generator = torch.Generator().manual_seed(seed)
    fit = _subset(len(train_x), FIT_EXAMPLES, generator)
    x, y = _rows(train_x[fit]), train_labels[fit].long().numpy()
    if len(np.unique(y)) < 2:
        return None
    held = _subset(len(held_x), HELD_OUT_EXAMPLES, generator)
    scaler = StandardScaler().fit(x)
    classifier = LogisticRegression(C=0.1, max_iter=200)
    with warnings.catch_warnings():  # an unconverged fit of a few hundred steps is still a fair judge
        warnings.simplefilter("ignore")
        classifier.fit(scaler.transform(x), y)
    accuracy = float((classifier.predict(scaler.transform(_rows(held_x[held]))) ==
                      held_labels[held].long().numpy()).mean())
    k = model.config.num_classes
    per_class = max(1, min(SAMPLES_PER_CLASS, MAX_SAMPLES // k))
    asked = torch.arange(k).repeat_interleave(per_class)
    asked = asked[np.isin(asked.numpy(), classifier.classes_)]  # a class absent from the fit cannot be judged
    device = next(model.parameters()).device
    draws = torch.Generator(device=device).manual_seed(seed)  # prior draws on the model's device
    was_training = model.training
    model.eval()
    try:
        samples = torch.cat([model.sample(len(chunk), chunk, generator=draws).float().cpu()
                             for chunk in asked.split(500)])
    finally:
        model.train(was_training)
    predicted = classifier.predict(scaler.transform(_rows(samples)))
    return {"label_following": float((predicted == asked.numpy()).mean()),
            "label_classifier_accuracy": accuracy, "label_samples": len(asked)}


def labelled_held_out(bundle: Dataset) -> str | None:
    """The split the label check scores its classifier on: test, else validation, whichever
    first has labels; ``None`` when neither has."""
    return next((s for s in ("test", "val") if getattr(bundle, f"{s}_labels") is not None
                 and len(getattr(bundle, f"{s}_labels"))), None)


def run_label_finding(run: Any, bundle: Dataset, *, seed: int = 0) -> Finding | None:
    """What ``vaekit.train`` warns of once a conditional run is trained: ``label_ignored`` of
    ``label_following`` on its training labels, held out on the test (else validation) split.
    ``None`` when the run follows its labels, is unconditional, or has no labelled split to check."""
    if not run.model.config.conditional:
        return None
    train_x, train_labels = split_examples(bundle, "train")
    held = labelled_held_out(bundle)
    if train_labels is None or held is None:
        return None
    held_x, held_labels = split_examples(bundle, held)
    figures = label_following(run.model, train_x, train_labels, held_x, held_labels, seed=seed)
    return None if figures is None else label_ignored(figures, run.config.get("model"), run.config.get("train"))


def _subset(n: int, most: int, generator: torch.Generator) -> torch.Tensor:
    return torch.arange(n) if n <= most else torch.randperm(n, generator=generator)[:most]


def _rows(x: torch.Tensor) -> np.ndarray:
    return x.detach().float().cpu().flatten(1).numpy()
