"""Loading data for vaekit: named datasets and user files, split and shaped for training.

``load("mnist")``, ``load("photos/", image_size=32)``, ``load(DataConfig(...))`` all return
a ``Dataset`` (float32 tensors, int64 labels, a filled ``DataInfo``). The same
``DataConfig`` always rebuilds the same splits, so a run stores only its config.
``load_for_model`` brings new data into the shape and scaling of a trained run.
"""

from vaekit.data import registry
from vaekit.data.bundle import DataInfo, Dataset
from vaekit.data.config import DataConfig
from vaekit.data.loading import load, load_for_model
from vaekit.data.registry import known_datasets
from vaekit.data.standardize import Standardizer

__all__ = ["DataConfig", "DataInfo", "Dataset", "Standardizer", "known_datasets", "load", "load_for_model", "registry"]
