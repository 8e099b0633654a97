"""NeXtVLAD: grouped, gated NetVLAD with fewer parameters (Lin et al., ECCV 2018 workshops)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vidlens.errors import ConfigError
from vidlens.models.aggregators.base import Aggregator, zero_empty_rows
from vidlens.models.registry import AGGREGATORS


@AGGREGATORS.register("nextvlad")
class NeXtVLAD(Aggregator):
    """NetVLAD over G low-dimensional groups of an expanded feature, each group gated by attention.

    Each step is expanded to ``expansion * D`` and split into ``groups`` parts of size
    ``d = expansion * D / groups``; part g of step t contributes ``alpha_g(x_t) * a_gk(x_t) * (x_tg - c_k)``
    to cluster k. Output: ``K * d`` (intra-normalised), optionally projected. Used by the Youku
    classifier before context gating and a mixture-of-experts head.

    Args:
        in_dim: feature size D.
        num_clusters: K.
        expansion: widening factor of the first linear layer.
        groups: G; ``expansion * in_dim`` must be divisible by it.
        proj_dim: if set, a linear layer maps the ``K * d`` vector to this size.
    """

    def __init__(
        self,
        in_dim: int,
        num_clusters: int = 8,
        expansion: int = 2,
        groups: int = 4,
        proj_dim: int | None = None,
    ):
        super().__init__()
        if (expansion * in_dim) % groups:
            raise ConfigError(
                f"nextvlad: expansion * in_dim ({expansion} * {in_dim}) must be divisible by groups "
                f"({groups})"
            )
        self.in_dim = in_dim
        self.num_clusters = num_clusters
        self.expansion = expansion
        self.groups = groups
        self.proj_dim = proj_dim
        wide = expansion * in_dim
        self.group_dim = wide // groups
        self.expand = nn.Linear(in_dim, wide)
        self.group_gate = nn.Linear(wide, groups)
        self.assign = nn.Linear(wide, groups * num_clusters)
        self.centroids = nn.Parameter(torch.randn(num_clusters, self.group_dim) * (1.0 / self.group_dim**0.5))
        flat = num_clusters * self.group_dim
        self.proj = nn.Linear(flat, proj_dim) if proj_dim else None
        self.out_dim = proj_dim or flat

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T, D), (B, T) bool -> (B, out_dim)."""
        b, t, _ = x.shape
        wide = self.expand(x)  # (B, T, λD)
        gate = torch.sigmoid(self.group_gate(wide))  # (B, T, G)
        assign = torch.softmax(self.assign(wide).view(b, t, self.groups, self.num_clusters), dim=-1)
        weight = assign * gate.unsqueeze(-1) * mask.view(b, t, 1, 1).to(x.dtype)  # (B, T, G, K)
        parts = wide.view(b, t, self.groups, self.group_dim)
        vlad = (
            torch.einsum("btgk,btgd->bkd", weight, parts)
            - weight.sum(dim=(1, 2)).unsqueeze(-1) * self.centroids
        )
        vlad = F.normalize(vlad, dim=-1).flatten(1)
        if self.proj is not None:
            vlad = zero_empty_rows(self.proj(vlad), mask)  # the bias must not leak into empty rows
        return vlad
