"""Tensor Fusion Network (Zadeh et al., EMNLP 2017)."""

from __future__ import annotations

import torch
from torch import nn

from vidlens.errors import ConfigError
from vidlens.models.fusion.base import Fusion
from vidlens.models.registry import FUSIONS

_MAX_TENSOR_SIZE = 1 << 20


@FUSIONS.register("tfn")
class TFNFusion(Fusion):
    """Outer product of the modality vectors, each extended with a constant 1, then a linear layer.

    ``z_m = [ReLU(W_m x_m); 1]``, ``t = z_1 ⊗ z_2 ⊗ ... ⊗ z_M`` (all uni-, bi- and tri-modal products),
    output ``ReLU(W vec(t))``. The tensor has ``(proj_dim + 1) ** M`` entries, so each modality is first
    projected to a small ``proj_dim``; Taobao found this lossy projection made TFN trail plain concat.

    Args:
        in_dims: modality name -> vector size.
        proj_dim: size of each modality's projection before the outer product.
        out_dim: output size.
        dropout: dropout on the flattened tensor.

    Raises:
        ConfigError: the outer product would exceed 2**20 entries.
    """

    def __init__(self, in_dims: dict[str, int], proj_dim: int = 8, out_dim: int = 64, dropout: float = 0.0):
        super().__init__(in_dims)
        size = (proj_dim + 1) ** len(in_dims)
        if size > _MAX_TENSOR_SIZE:
            raise ConfigError(
                f"tfn: proj_dim={proj_dim} with {len(in_dims)} modalities gives a {size}-entry tensor; "
                f"lower proj_dim so (proj_dim + 1) ** modalities <= {_MAX_TENSOR_SIZE}"
            )
        self.proj_dim = proj_dim
        self.dropout = dropout
        self.project = nn.ModuleDict({m: nn.Linear(d, proj_dim) for m, d in in_dims.items()})
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(size, out_dim)
        self.out_dim = out_dim

    def forward(self, feats: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> torch.Tensor:
        """dict of (B, D_m), dict of (B,) bool -> (B, out_dim)."""
        tensor = None
        for m, x in zip(self.modalities, self.fill_missing(feats, present), strict=True):
            z = torch.relu(self.project[m](x))
            z = torch.cat([z, torch.ones_like(z[:, :1])], dim=-1)
            tensor = z if tensor is None else (tensor.unsqueeze(-1) * z.unsqueeze(1)).flatten(1)
        assert tensor is not None
        return torch.relu(self.out(self.drop(tensor)))
