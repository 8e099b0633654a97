"""Context gating fusion (Miech et al., 2017), the Youku classifier's fusion step."""

from __future__ import annotations

import torch
from torch import nn

from vidlens.models.fusion.base import Fusion
from vidlens.models.registry import FUSIONS


class ContextGating(nn.Module):
    """``y = x * sigmoid(W x + b)``: re-weights each dimension given the whole vector.

    Args:
        dim: vector size.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.gate = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, dim) -> (B, dim)."""
        return x * torch.sigmoid(self.gate(x))


@FUSIONS.register("context_gating")
class ContextGatingFusion(Fusion):
    """Concatenate modalities, project with a linear layer, then apply context gating.

    Args:
        in_dims: modality name -> vector size.
        out_dim: size of the projected, gated vector.
        dropout: dropout on the concatenated vector.
    """

    def __init__(self, in_dims: dict[str, int], out_dim: int = 256, dropout: float = 0.0):
        super().__init__(in_dims)
        self.dropout = dropout
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Linear(sum(in_dims.values()), out_dim)
        self.gating = ContextGating(out_dim)
        self.out_dim = out_dim

    def forward(self, feats: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> torch.Tensor:
        """dict of (B, D_m), dict of (B,) bool -> (B, out_dim)."""
        joint = self.drop(torch.cat(self.fill_missing(feats, present), dim=-1))
        return self.gating(self.proj(joint))
