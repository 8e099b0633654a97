"""Mixture-of-experts head (Youku, after the YouTube-8M MoE classifier)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vidlens.models.heads.base import Head, make_trunk
from vidlens.models.registry import HEADS


@HEADS.register("moe")
class MoEHead(Head):
    """``p(b | x) = sum_e g_e(x) softmax(W_e x)_b`` with a softmax gate ``g`` over E experts.

    The Youku classifier ends in a mixture of experts after context gating; its YouTube-8M ancestor
    mixes sigmoid experts for multi-label tags. For single-label categories this head mixes softmax
    experts, so the mixture is itself a distribution and is trained with its negative log-likelihood.
    ``forward`` returns the mixture's log-probabilities as ``l2_logits``.

    Args:
        in_dim: size of the input vector.
        l2_to_l1: parent L1 index of each L2 class.
        num_l1: number of L1 classes; defaults to ``max(l2_to_l1) + 1``.
        num_experts: E.
        hidden_dim: size of an optional shared hidden layer (0: none).
        dropout: dropout on the input (and hidden layer).
    """

    def __init__(
        self,
        in_dim: int,
        l2_to_l1: Sequence[int],
        num_l1: int | None = None,
        num_experts: int = 4,
        hidden_dim: int = 0,
        dropout: float = 0.0,
    ):
        super().__init__(in_dim, l2_to_l1, num_l1)
        self.num_experts = num_experts
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.trunk, width = make_trunk(in_dim, hidden_dim, dropout)
        self.gate = nn.Linear(width, num_experts)
        self.experts = nn.Linear(width, num_experts * self.num_l2_)
        self.last_gate_: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, in_dim) -> ``{"l2_logits": log p (B, C2), "gate": (B, E)}``."""
        h = self.trunk(x)
        log_gate = torch.log_softmax(self.gate(h), dim=1)  # (B, E)
        expert_logits = self.experts(h).view(-1, self.num_experts, self.num_l2_)
        log_mix = torch.logsumexp(log_gate.unsqueeze(-1) + torch.log_softmax(expert_logits, dim=-1), dim=1)
        self.last_gate_ = log_gate.exp().detach()
        return {"l2_logits": log_mix, "gate": log_gate.exp()}

    def loss(self, outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
        """Negative log-likelihood of ``targets["l2"]`` under the mixture."""
        return F.nll_loss(outputs["l2_logits"], targets["l2"])
