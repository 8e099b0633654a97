"""Masked mean pooling over time."""

from __future__ import annotations

import torch

from vidlens.models.aggregators.base import Aggregator, valid_counts
from vidlens.models.registry import AGGREGATORS


@AGGREGATORS.register("mean")
class MeanPooling(Aggregator):
    """Average of the valid steps; zeros for a row with no valid step.

    Args:
        in_dim: feature size D.
    """

    def __init__(self, in_dim: int):
        super().__init__()
        self.in_dim = in_dim
        self.out_dim = in_dim

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T, D), (B, T) bool -> (B, D)."""
        weights = mask.unsqueeze(-1).to(x.dtype)
        return (x * weights).sum(dim=1) / valid_counts(mask).to(x.dtype)
