"""The interface every classification head follows."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from vidlens.errors import ConfigError
from vidlens.models.component import Component
from vidlens.models.hierarchy import l1_marginal


def make_trunk(in_dim: int, hidden_dim: int, dropout: float) -> tuple[nn.Module, int]:
    """Dropout, then (if ``hidden_dim`` > 0) a hidden ReLU layer; returns the module and its output size."""
    if hidden_dim <= 0:
        return nn.Dropout(dropout), in_dim
    return nn.Sequential(
        nn.Dropout(dropout), nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout)
    ), hidden_dim


class Head(Component):
    """Classifies a fused video vector into the L2 classes of a two-level taxonomy.

    Contract:
        - ``forward(x: (B, in_dim)) -> dict`` with at least ``"l2_logits"`` (B, C2);
        - ``loss(outputs, targets) -> scalar`` with ``targets["l2"]`` (B,) long, optionally
          ``targets["l1"]`` (B,) long and ``targets["labels"]`` (B, C2) multi-hot;
        - ``decode(outputs) -> dict`` with ``l2_probs`` (B, C2), ``l1_probs`` (B, C1), ``l2_pred`` and
          ``l1_pred`` (B,) long, where ``l1_pred`` is always the parent of ``l2_pred``.

    Args:
        in_dim: size of the input vector.
        l2_to_l1: parent L1 index of each L2 class (``Taxonomy.l2_to_l1``).
        num_l1: number of L1 classes; defaults to ``max(l2_to_l1) + 1``.
    """

    def __init__(self, in_dim: int, l2_to_l1: Sequence[int], num_l1: int | None = None):
        super().__init__()
        parents = [int(v) for v in l2_to_l1]
        if not parents:
            raise ConfigError("head: l2_to_l1 is empty; a head needs at least one L2 class")
        if min(parents) < 0 or (num_l1 is not None and max(parents) >= num_l1):
            limit = "" if num_l1 is None else f", below num_l1={num_l1}"
            raise ConfigError(
                f"head: l2_to_l1 parent indices must be >= 0{limit}; got {sorted(set(parents))}"
            )
        self.in_dim = in_dim
        self.l2_to_l1 = parents
        self.num_l1 = num_l1
        self.num_l1_ = num_l1 if num_l1 is not None else max(parents) + 1
        self.num_l2_ = len(parents)
        self.register_buffer("parents", torch.tensor(parents, dtype=torch.long), persistent=False)

    def l2_log_probs(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Log-probability of each L2 class (B, C2)."""
        return torch.log_softmax(outputs["l2_logits"], dim=1)

    def decode(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Probabilities and consistent predictions at both levels."""
        l2_probs = self.l2_log_probs(outputs).exp()
        l2_pred = l2_probs.argmax(dim=1)
        return {
            "l2_probs": l2_probs,
            "l1_probs": l1_marginal(l2_probs, self.parents, self.num_l1_),
            "l2_pred": l2_pred,
            "l1_pred": self.parents[l2_pred],
        }


__all__ = ["Head", "make_trunk"]
