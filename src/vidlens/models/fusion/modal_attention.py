"""Modal attention fusion: a learned weight per modality, per video (Taobao's best fusion)."""

from __future__ import annotations

import torch
from torch import nn

from vidlens.models.fusion.base import Fusion
from vidlens.models.registry import FUSIONS


@FUSIONS.register("modal_attention")
class ModalAttentionFusion(Fusion):
    """Projects each modality to ``hidden_dim``, predicts a distribution over modalities from the
    joint vector, and re-weights each modality's projection by it.

    ``h_m = ReLU(W_m x_m)``, ``w = softmax(MLP([h_1; ...; h_M]))`` with absent modalities masked out,
    output ``[M w_1 h_1; ...; M w_M h_M]`` (scaled by M so uniform weights leave the vectors as they
    are). A row where every modality is absent attends over the learned missing embeddings. The
    weights of the last call are kept in ``last_weights_`` (modality -> (B,)) for a modality
    contribution chart.

    Args:
        in_dims: modality name -> vector size.
        hidden_dim: size of each modality's projection.
        attention_hidden: hidden size of the attention MLP.
        dropout: dropout on the projections.
    """

    def __init__(
        self, in_dims: dict[str, int], hidden_dim: int = 128, attention_hidden: int = 64, dropout: float = 0.0
    ):
        super().__init__(in_dims)
        self.hidden_dim = hidden_dim
        self.attention_hidden = attention_hidden
        self.dropout = dropout
        self.project = nn.ModuleDict(
            {
                m: nn.Sequential(nn.Linear(d, hidden_dim), nn.ReLU(), nn.Dropout(dropout))
                for m, d in in_dims.items()
            }
        )
        n = len(in_dims)
        self.attention = nn.Sequential(
            nn.Linear(n * hidden_dim, attention_hidden), nn.ReLU(), nn.Linear(attention_hidden, n)
        )
        self.out_dim = n * hidden_dim
        self.last_weights_: dict[str, torch.Tensor] = {}

    def forward(self, feats: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> torch.Tensor:
        """dict of (B, D_m), dict of (B,) bool -> (B, M * hidden_dim)."""
        filled = self.fill_missing(feats, present)
        hidden = torch.stack(
            [self.project[m](x) for m, x in zip(self.modalities, filled, strict=True)], dim=1
        )  # (B, M, H)
        scores = self.attention(hidden.flatten(1))  # (B, M)
        allowed = torch.stack([present[m] for m in self.modalities], dim=1)
        allowed = allowed | ~allowed.any(dim=1, keepdim=True)
        scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=1) * allowed.to(scores.dtype)
        self.last_weights_ = {m: weights[:, i].detach() for i, m in enumerate(self.modalities)}
        return (hidden * (weights * len(self.modalities)).unsqueeze(-1)).flatten(1)

    def modality_weights(self) -> dict[str, torch.Tensor]:
        """Attention weight of each modality for each sample of the last forward call (rows sum to 1)."""
        return dict(self.last_weights_)
