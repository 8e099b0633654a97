"""Flat softmax over the L2 classes; L1 follows from the taxonomy."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vidlens.models.heads.base import Head, make_trunk
from vidlens.models.registry import HEADS


@HEADS.register("flat_softmax")
class FlatSoftmaxHead(Head):
    """One softmax over all L2 classes, trained with cross-entropy; ``p(L1) = sum of its children``.

    This is the "MLP" baseline of the Taobao comparison.

    Args:
        in_dim: size of the input vector.
        l2_to_l1: parent L1 index of each L2 class.
        num_l1: number of L1 classes; defaults to ``max(l2_to_l1) + 1``.
        hidden_dim: size of an optional hidden layer (0: none).
        dropout: dropout on the input (and hidden layer).
    """

    def __init__(
        self,
        in_dim: int,
        l2_to_l1: Sequence[int],
        num_l1: int | None = None,
        hidden_dim: int = 0,
        dropout: float = 0.0,
    ):
        super().__init__(in_dim, l2_to_l1, num_l1)
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.trunk, width = make_trunk(in_dim, hidden_dim, dropout)
        self.classifier = nn.Linear(width, self.num_l2_)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, in_dim) -> ``{"l2_logits": (B, C2)}``."""
        return {"l2_logits": self.classifier(self.trunk(x))}

    def loss(self, outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
        """Cross-entropy against ``targets["l2"]``."""
        return F.cross_entropy(outputs["l2_logits"], targets["l2"])
