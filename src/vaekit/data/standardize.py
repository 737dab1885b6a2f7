"""Per-column standardization for tables, fitted on training rows and saved with the run."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

#: The interquartile range of a standard normal: IQR / 1.349 estimates the std of normal data.
NORMAL_IQR = 1.349


class Standardizer:
    """z = (x - mean) / std per column; constant columns keep std = 1.

    ``mean`` and ``std`` are the centre and scale: the column means and stds, or with
    ``fit(..., robust=True)`` the medians and the smaller of IQR / 1.349 and the std, which
    the tail of a skewed column or the anomalies mixed into it do not inflate. Stored as
    plain lists in ``config.json`` (no pickle), so ``vaekit.load`` can transform new data
    exactly as the training data was.
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, columns: list[str] | None = None) -> None:
        self.mean = mean.to(torch.float32)
        self.std = std.to(torch.float32)
        self.columns = columns

    @classmethod
    def fit(cls, x: torch.Tensor, columns: list[str] | None = None, *, robust: bool = False) -> Standardizer:
        """Centre and scale of each column of ``x``. ``robust``: the median, and IQR / 1.349 where
        that is below the std (a long tail or anomalies inflate the std), else the std (a column
        spread evenly or in two clusters, whose IQR overstates its spread; or one that is mostly
        one value, whose IQR is 0); 1 for a constant column."""
        x64 = x.to(torch.float64)
        std = x64.std(dim=0, unbiased=False)
        if robust:
            # numpy: torch.quantile refuses inputs of more than 2**24 values
            quartiles = np.quantile(x64.detach().cpu().numpy(), [0.25, 0.5, 0.75], axis=0)
            low, center, high = torch.from_numpy(quartiles)
            iqr_std = (high - low) / NORMAL_IQR
            std = torch.where(iqr_std > 1e-12, torch.minimum(iqr_std, std), std)
        else:
            center = x64.mean(dim=0)
        std = torch.where(std > 1e-12, std, torch.ones_like(std))
        return cls(center, std, columns)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mean) / self.std).to(torch.float32)

    def inverse_transform(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.std + self.mean

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "columns": self.columns}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Standardizer:
        return cls(torch.tensor(d["mean"]), torch.tensor(d["std"]), d.get("columns"))
