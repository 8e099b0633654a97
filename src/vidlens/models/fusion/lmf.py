"""Low-rank Multimodal Fusion (Liu et al., ACL 2018)."""

from __future__ import annotations

import torch
from torch import nn

from vidlens.models.fusion.base import Fusion
from vidlens.models.registry import FUSIONS


@FUSIONS.register("lmf")
class LMFFusion(Fusion):
    """TFN's outer-product-then-linear map with the weight tensor factorised to rank ``r``.

    ``z_m = [x_m; 1]``, output ``sum_i w_i prod_m (z_m W_m^(i)) + b`` with ``W_m^(i)`` of shape
    ``(D_m + 1, out_dim)``: the cost grows linearly, not exponentially, with the number of modalities.

    Args:
        in_dims: modality name -> vector size.
        out_dim: output size.
        rank: number of rank-1 factors r.
    """

    def __init__(self, in_dims: dict[str, int], out_dim: int = 64, rank: int = 4):
        super().__init__(in_dims)
        self.rank = rank
        self.factors = nn.ParameterDict()
        for m, d in in_dims.items():
            factor = torch.empty(rank, d + 1, out_dim)
            nn.init.xavier_normal_(factor)
            self.factors[m] = nn.Parameter(factor)
        self.rank_weights = nn.Parameter(torch.full((rank,), 1.0 / rank))
        self.bias = nn.Parameter(torch.zeros(out_dim))
        self.out_dim = out_dim

    def forward(self, feats: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> torch.Tensor:
        """dict of (B, D_m), dict of (B,) bool -> (B, out_dim)."""
        product = None
        for m, x in zip(self.modalities, self.fill_missing(feats, present), strict=True):
            z = torch.cat([x, torch.ones_like(x[:, :1])], dim=-1)
            term = torch.einsum("bd,rdo->rbo", z, self.factors[m])
            product = term if product is None else product * term
        assert product is not None
        return torch.einsum("r,rbo->bo", self.rank_weights, product) + self.bias
