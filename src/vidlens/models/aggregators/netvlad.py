"""NetVLAD: learnable soft-assignment VLAD pooling (Arandjelović et al., CVPR 2016)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vidlens.models.aggregators.base import Aggregator, zero_empty_rows
from vidlens.models.registry import AGGREGATORS


@AGGREGATORS.register("netvlad")
class NetVLAD(Aggregator):
    """Sum of residuals to K learned cluster centres, weighted by a soft assignment of each step.

    ``V[k] = sum_t a_k(x_t) (x_t - c_k)``, ``a(x_t) = softmax(W x_t + b)``; each ``V[k]`` is L2-normalised
    (intra-normalisation), then the flattened ``K * D`` vector, which is optionally projected.
    The Taobao classifier pools frame and audio sequences this way.

    Args:
        in_dim: feature size D.
        num_clusters: K.
        proj_dim: if set, a linear layer maps the ``K * D`` vector to this size.
    """

    def __init__(self, in_dim: int, num_clusters: int = 8, proj_dim: int | None = None):
        super().__init__()
        self.in_dim = in_dim
        self.num_clusters = num_clusters
        self.proj_dim = proj_dim
        self.assign = nn.Linear(in_dim, num_clusters)
        self.centroids = nn.Parameter(torch.randn(num_clusters, in_dim) * (1.0 / in_dim**0.5))
        self.proj = nn.Linear(num_clusters * in_dim, proj_dim) if proj_dim else None
        self.out_dim = proj_dim or num_clusters * in_dim

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T, D), (B, T) bool -> (B, out_dim)."""
        assign = torch.softmax(self.assign(x), dim=-1) * mask.unsqueeze(-1).to(x.dtype)  # (B, T, K)
        vlad = torch.einsum("btk,btd->bkd", assign, x) - assign.sum(dim=1).unsqueeze(-1) * self.centroids
        vlad = F.normalize(vlad, dim=-1).flatten(1)
        vlad = F.normalize(vlad, dim=-1)
        if self.proj is not None:
            vlad = zero_empty_rows(self.proj(vlad), mask)  # the bias must not leak into empty rows
        return vlad
