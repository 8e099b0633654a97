"""Masked max pooling over time."""

from __future__ import annotations

import torch

from vidlens.models.aggregators.base import Aggregator
from vidlens.models.registry import AGGREGATORS


@AGGREGATORS.register("max")
class MaxPooling(Aggregator):
    """Element-wise maximum over the valid steps; zeros for a row with no valid step.

    Args:
        in_dim: feature size D.
    """

    def __init__(self, in_dim: int):
        super().__init__()
        self.in_dim = in_dim
        self.out_dim = in_dim

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T, D), (B, T) bool -> (B, D)."""
        # A finite fill value (not -inf) keeps gradients clean for rows that are entirely masked.
        filled = x.masked_fill(~mask.unsqueeze(-1), torch.finfo(x.dtype).min)
        pooled = filled.max(dim=1).values
        has_any = mask.any(dim=1, keepdim=True)
        return torch.where(has_any, pooled, torch.zeros_like(pooled))
