"""Request and response models: what the endpoints accept and return, and so the OpenAPI document.

Floats are finite (``allow_inf_nan=False``): Python's JSON parser accepts ``NaN`` and
``Infinity``, which would otherwise reach the model and come back as a meaningless image.
Sizes have upper bounds so that one request cannot ask for unbounded work.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
#: Latent values a user may set: far outside the prior's range, but finite and bounded.
LatentValue = Annotated[float, Field(allow_inf_nan=False, ge=-1e4, le=1e4)]
Label = Annotated[int, Field(ge=0, le=1_000_000, description="Class index, for conditional runs only.")]
ImageFormat = Literal["png", "base64"]
Split = Literal["train", "val", "test"]

MAX_LATENT_DIM = 4096
MAX_ROW = 1_000_000
MAX_SAMPLES = 256
MAX_STEPS = 64


class ErrorBody(BaseModel):
    """Every 4xx (and the rare 5xx) answer."""

    error: str = Field(description="One line: what was wrong and what was expected.")
    detail: list[dict[str, Any]] | None = Field(None, description="The fields that failed validation (422).")


class RunSummary(BaseModel):
    name: str
    kind: Literal["model", "anomaly"] = Field(description="'anomaly' for a detector of `vaekit anomaly fit`.")
    family: str = Field(description="Model family: vae, cvae, hvae, vqvae...")
    latent_dim: int
    input_shape: list[int]
    image: bool = Field(description="Whether examples are images (C, H, W) with 1 or 3 channels.")
    conditional: bool
    class_names: list[str] | None = None
    num_classes: int | None = None
    metrics: dict[str, Any] = Field(description="summary.json (test ELBO, epochs...) and the last epoch's metrics.")
    config: dict[str, Any] = Field(description="The run's config.json.")


class RunDetail(RunSummary):
    kl_per_dim: list[float] | None = Field(description="Mean KL per latent dimension (nats), if known.")
    dims_by_kl: list[int] = Field(description="Latent dimensions, most used (highest KL) first.")
    threshold: float | None = Field(None, description="An anomaly run's threshold on its score.")
    score_name: str | None = Field(None, description="An anomaly run's score: recon, elbo, nll, knn, resid or a sum "
                                                     "such as recon+knn.")
    has_data: bool = Field(description="Whether the run's dataset can be read (dataset indices, the latent map).")
    has_diffusion: bool = Field(False, description="Whether the run has a fitted latent diffusion sampler.")


class Posterior(BaseModel):
    mean: list[float]
    logvar: list[float]


class RowRequest(BaseModel):
    x: Annotated[list[FiniteFloat], Field(min_length=1, max_length=MAX_ROW)] = Field(
        description="One example, flattened (C*H*W values for an image run, one row for a table run).")
    label: Label | None = None


class DecodeRequest(BaseModel):
    z: Annotated[list[LatentValue], Field(min_length=1, max_length=MAX_LATENT_DIM)] = Field(
        description="A latent vector of the run's latent_dim.")
    label: Label | None = None
    format: Literal["png", "base64", "values"] = Field("png", description="png: image/png bytes; base64: JSON "
                                                                          "with a base64 PNG; values: the numbers.")


class ImageData(BaseModel):
    image: str = Field(description="PNG, base64-encoded.")
    width: int
    height: int


class Values(BaseModel):
    values: list[float]
    shape: list[int]


class SampleRequest(BaseModel):
    n: Annotated[int, Field(ge=1, le=MAX_SAMPLES)] = 16
    sampler: Literal["prior", "gmm", "diffusion"] = Field(
        "prior", description="gmm: a Gaussian mixture over the training codes (fitted on first use if missing); "
                             "diffusion: the run's latent flow model (fitted beforehand by `vaekit sample RUN "
                             "--sampler diffusion`, else 409).")
    temperature: Annotated[float, Field(gt=0, le=10, allow_inf_nan=False)] = 1.0
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    label: Label | None = None
    nrow: Annotated[int, Field(ge=1, le=MAX_SAMPLES)] | None = None
    format: ImageFormat = "png"


class InterpolateIndices(BaseModel):
    a: Annotated[int, Field(ge=0)] = Field(description="Index of the first example in the split.")
    b: Annotated[int, Field(ge=0)] = Field(description="Index of the second example in the split.")
    split: Split = "test"
    steps: Annotated[int, Field(ge=2, le=MAX_STEPS)] = 10
    method: Literal["slerp", "lerp"] = "slerp"
    format: ImageFormat = "png"


class TraversalRequest(BaseModel):
    dim: Annotated[int, Field(ge=0, le=MAX_LATENT_DIM)]
    z: Annotated[list[LatentValue], Field(min_length=1, max_length=MAX_LATENT_DIM)] | None = Field(
        None, description="Start code; default: the code of example `index`, else the prior mean (zeros).")
    index: Annotated[int, Field(ge=0)] | None = None
    split: Split = "test"
    low: Annotated[float, Field(ge=-100, le=100, allow_inf_nan=False)] = -3.0
    high: Annotated[float, Field(ge=-100, le=100, allow_inf_nan=False)] = 3.0
    steps: Annotated[int, Field(ge=2, le=MAX_STEPS)] = 9
    label: Label | None = None
    format: ImageFormat = "png"


class MapPoints(BaseModel):
    method: str = Field(description="latent (2-D codes as they are), pca or tsne.")
    split: str
    indices: list[int]
    points: list[list[float]] = Field(description="(x, y) per example.")
    labels: list[int] | None
    codes: list[list[float]] = Field(description="Each example's latent code (posterior mean).")


class AnomalyScore(BaseModel):
    score: float = Field(description="Higher = more anomalous.")
    threshold: float
    anomaly: bool
    score_name: str
