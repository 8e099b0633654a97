"""The torch network behind the trained rankers (kept apart so importing the tags package needs no torch)."""

from __future__ import annotations

import math

import torch
from torch import nn


class PairScorer(nn.Module):
    """Scores (video, tag) pairs from modality vectors (with a presence mask), a tag vector and side features.

    Args:
        modality_dims: input size of each modality.
        tag_dim: size of the tag vector.
        side_dim: number of side features.
        hidden: projection width.
        fusion: ``late`` (masked mean) or ``attention`` (the tag attends over modalities).
        dropout: MLP dropout.
    """

    def __init__(self, modality_dims: list[int], tag_dim: int, side_dim: int, hidden: int, fusion: str,
                 dropout: float):
        super().__init__()
        self.fusion = fusion
        self.proj = nn.ModuleList([nn.Linear(d, hidden) for d in modality_dims])
        self.tag_proj = nn.Linear(tag_dim, hidden)
        if fusion == "attention":
            self.query = nn.Linear(hidden, hidden, bias=False)
            self.key = nn.Linear(hidden, hidden, bias=False)
        self.head = nn.Sequential(nn.Linear(3 * hidden + side_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, 1))

    def forward(self, tokens: list[torch.Tensor], mask: torch.Tensor, tag: torch.Tensor,
                side: torch.Tensor) -> torch.Tensor:
        """``tokens[m]``: ``(B, D_m)``; ``mask``: ``(B, M)`` bool; ``tag``: ``(B, T)``; ``side``: ``(B, S)`` →
        ``(B,)`` raw scores."""
        h = torch.tanh(torch.stack([p(x) for p, x in zip(self.proj, tokens, strict=True)], dim=1))  # B M H
        t = torch.tanh(self.tag_proj(tag))
        m = mask.float()
        if self.fusion == "attention":
            logits = (self.key(h) * self.query(t)[:, None, :]).sum(-1) / math.sqrt(h.shape[-1])
            logits = logits.masked_fill(~mask, -1e9)
            weights = torch.softmax(logits, dim=1) * m
            v = (weights[..., None] * h).sum(1) / weights.sum(1, keepdim=True).clamp_min(1e-9)
        else:
            v = (h * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp_min(1.0)
        return self.head(torch.cat([v, t, v * t, side], dim=-1)).squeeze(-1)
