"""Hierarchical (HMC) head: separate L1 and L2 classifiers, mismatch loss, consistent decoding."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from vidlens.errors import ConfigError
from vidlens.models.heads.base import Head, make_trunk
from vidlens.models.hierarchy import joint_log_probs
from vidlens.models.losses.hmc_loss import HMCLoss, MismatchReference
from vidlens.models.registry import HEADS


@HEADS.register("hmc")
class HMCHead(Head):
    """An L1 channel and an L2 channel over the same input, trained with ``HMCLoss``.

    Loss: ``CE(L1) + λ · CE(L2) + β · L_H`` where ``L_H = 1 - sum_a p1(a) q(a)`` and
    ``q(a) = sum_{b: parent(b)=a} p2(b)`` (or ``1 - q(y1)`` with ``mismatch_reference="target"``);
    see ``vidlens.models.losses.hmc_loss``. From the Taobao multimodal hierarchical classifier, where
    HMC beat a flat L2 softmax and the mismatch term cut L1/L2 disagreements sharply.

    Decoding maximises a score over valid pairs only, so the predicted L2 always lies inside the
    predicted L1; ``decode`` returns it, normalised over L2, as ``l2_probs``:

    - ``"conditional"``: ``log p1(a) + log p2(b | a)`` (``p2(b | a)``: the L2 softmax renormalised
      within ``a``'s children): the L1 channel alone picks the L1;
    - ``"product"``: ``l1_vote · log p1(a) + log p2(b)``: both channels vote on the L1 (a weighted
      product of experts; ``l1_vote = 0``: the L2 channel decides and the L1 is its parent). On
      NLPCC headlines the L2 channel knows the L1 better than the L1 channel (a linear L1 classifier
      over a union of unlike L2s is the weaker model), so "conditional" cost 2 points of L2
      accuracy there (see BENCHMARKS-classify.md).

    Args:
        in_dim: size of the input vector.
        l2_to_l1: parent L1 index of each L2 class.
        num_l1: number of L1 classes; defaults to ``max(l2_to_l1) + 1``.
        hidden_dim: size of an optional hidden layer in each channel (0: none).
        dropout: dropout on the input (and hidden layers).
        l2_weight: λ.
        mismatch_weight: β.
        mismatch_reference: "predicted" or "target" (see ``HMCLoss``).
        decoding: "conditional" or "product" (above).
        l1_vote: weight of the L1 channel in "product" decoding.
        label_smoothing: ε of the loss's two cross-entropies (see ``HMCLoss``).
    """

    def __init__(
        self,
        in_dim: int,
        l2_to_l1: Sequence[int],
        num_l1: int | None = None,
        hidden_dim: int = 0,
        dropout: float = 0.0,
        l2_weight: float = 2.0,
        mismatch_weight: float = 0.1,
        mismatch_reference: MismatchReference = "predicted",
        decoding: Literal["conditional", "product"] = "conditional",
        l1_vote: float = 1.0,
        label_smoothing: float = 0.0,
    ):
        super().__init__(in_dim, l2_to_l1, num_l1)
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.l2_weight = l2_weight
        self.mismatch_weight = mismatch_weight
        self.mismatch_reference = mismatch_reference
        if decoding not in ("conditional", "product"):
            raise ConfigError(f"hmc head: decoding must be 'conditional' or 'product', not {decoding!r}")
        self.decoding = decoding
        self.l1_vote = l1_vote
        self.label_smoothing = label_smoothing
        self.l1_trunk, width = make_trunk(in_dim, hidden_dim, dropout)
        self.l2_trunk, _ = make_trunk(in_dim, hidden_dim, dropout)
        self.l1_classifier = nn.Linear(width, self.num_l1_)
        self.l2_classifier = nn.Linear(width, self.num_l2_)
        self.criterion = HMCLoss(self.l2_to_l1, l2_weight, mismatch_weight, mismatch_reference,
                                 label_smoothing)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, in_dim) -> ``{"l1_logits": (B, C1), "l2_logits": (B, C2)}``."""
        return {
            "l1_logits": self.l1_classifier(self.l1_trunk(x)),
            "l2_logits": self.l2_classifier(self.l2_trunk(x)),
        }

    def loss(self, outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
        """``HMCLoss`` against ``targets["l2"]`` (and ``targets["l1"]`` if given)."""
        return self.criterion(outputs["l1_logits"], outputs["l2_logits"], targets["l2"], targets.get("l1"))

    def l2_log_probs(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Log-probability of each valid (parent(b), b) pair (B, C2), by ``decoding``."""
        if self.decoding == "product":
            score = self.l1_vote * torch.log_softmax(outputs["l1_logits"], dim=1)[:, self.parents]
            return torch.log_softmax(score + torch.log_softmax(outputs["l2_logits"], dim=1), dim=1)
        return joint_log_probs(outputs["l1_logits"], outputs["l2_logits"], self.parents)
