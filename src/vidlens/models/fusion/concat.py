"""Concatenation fusion: the strong simple baseline of the Taobao comparison."""

from __future__ import annotations

import torch
from torch import nn

from vidlens.models.fusion.base import Fusion
from vidlens.models.registry import FUSIONS


@FUSIONS.register("concat")
class ConcatFusion(Fusion):
    """Concatenates the modality vectors (missing ones replaced by learned embeddings).

    Args:
        in_dims: modality name -> vector size.
        dropout: dropout on the concatenated vector.
    """

    def __init__(self, in_dims: dict[str, int], dropout: float = 0.0):
        super().__init__(in_dims)
        self.dropout = dropout
        self.drop = nn.Dropout(dropout)
        self.out_dim = sum(in_dims.values())

    def forward(self, feats: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> torch.Tensor:
        """dict of (B, D_m), dict of (B,) bool -> (B, sum D_m)."""
        return self.drop(torch.cat(self.fill_missing(feats, present), dim=-1))
