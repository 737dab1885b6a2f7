"""Per-column standardization for tables, fitted on training rows and saved with the run."""

from __future__ import annotations

from typing import Any

import torch


class Standardizer:
    """z = (x - mean) / std per column; constant columns keep std = 1.

    Stored as plain lists in ``config.json`` (no pickle), so ``vaekit.load`` can
    transform new data exactly as the training data was.
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, columns: list[str] | None = None) -> None:
        self.mean = mean.to(torch.float32)
        self.std = std.to(torch.float32)
        self.columns = columns

    @classmethod
    def fit(cls, x: torch.Tensor, columns: list[str] | None = None) -> Standardizer:
        x64 = x.to(torch.float64)
        mean = x64.mean(dim=0)
        std = x64.std(dim=0, unbiased=False)
        std = torch.where(std > 1e-12, std, torch.ones_like(std))
        return cls(mean, std, columns)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mean) / self.std).to(torch.float32)

    def inverse_transform(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.std + self.mean

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "columns": self.columns}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Standardizer:
        return cls(torch.tensor(d["mean"]), torch.tensor(d["std"]), d.get("columns"))
