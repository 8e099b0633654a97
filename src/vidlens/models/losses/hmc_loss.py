"""Hierarchical multi-class loss: level-1 CE + λ · level-2 CE + β · L1/L2 mismatch (Taobao HMC)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

from vidlens.errors import ConfigError
from vidlens.models.component import Component
from vidlens.models.hierarchy import l1_marginal
from vidlens.models.registry import LOSSES

MismatchReference = Literal["predicted", "target"]


def hierarchy_mismatch(
    l1_probs: torch.Tensor,
    l2_probs: torch.Tensor,
    l2_to_l1: torch.Tensor,
    l1_target: torch.Tensor | None = None,
) -> torch.Tensor:
    """Probability mass of the L2 distribution that lies outside the reference L1, averaged over the batch.

    With ``q(a) = sum_{b: parent(b)=a} p2(b)`` the L1 distribution implied by the L2 head:

    - reference "predicted" (``l1_target=None``): ``L_H = 1 - sum_a p1(a) q(a)``, the chance that an L1
      drawn from the L1 head and an L2 drawn from the L2 head disagree;
    - reference "target": ``L_H = 1 - q(y1)``, the L2 mass outside the true L1 ``y1``.

    ``L_H`` is in [0, 1]; it is 0 exactly when all L2 mass lies under the reference L1 (for
    "predicted": both heads agree on one L1).

    Args:
        l1_probs: (B, C1) probabilities of the L1 head.
        l2_probs: (B, C2) probabilities of the L2 head.
        l2_to_l1: (C2,) long, parent L1 of each L2.
        l1_target: optional (B,) long true L1; if given it replaces ``l1_probs`` as the reference.

    Returns:
        Scalar tensor.

    Example:
        >>> import torch
        >>> parents = torch.tensor([0, 0, 1])
        >>> p1 = torch.tensor([[1.0, 0.0]])
        >>> float(hierarchy_mismatch(p1, torch.tensor([[0.5, 0.5, 0.0]]), parents))
        0.0
        >>> float(hierarchy_mismatch(p1, torch.tensor([[0.5, 0.0, 0.5]]), parents))
        0.5
    """
    implied = l1_marginal(l2_probs, l2_to_l1, l1_probs.shape[1])
    if l1_target is not None:
        agreement = implied.gather(1, l1_target.long().unsqueeze(1)).squeeze(1)
    else:
        agreement = (l1_probs * implied).sum(dim=1)
    return (1.0 - agreement).clamp(min=0.0).mean()


@LOSSES.register("hmc")
class HMCLoss(Component):
    """``L = CE(l1_logits, y1) + λ · CE(l2_logits, y2) + β · L_H`` (see ``hierarchy_mismatch`` for ``L_H``).

    From the Taobao multimodal hierarchical video classifier (HMC): the two cross-entropies let the
    network learn both levels and, implicitly, their dependency; the mismatch term penalises L2 mass
    outside the L1 so that the two heads agree. λ > 1 because the L2 task has more classes and is
    harder; β sets how strongly disagreement is punished.

    Args:
        l2_to_l1: parent L1 index of each L2 class.
        l2_weight: λ.
        mismatch_weight: β.
        mismatch_reference: "predicted" (mass outside the L1 head's distribution) or "target"
            (mass outside the true L1).
        label_smoothing: ε of both cross-entropies (the target puts ε spread evenly over all classes
            of its level; 0: plain CE).

    Inputs of ``forward``:
        l1_logits (B, C1), l2_logits (B, C2) float; l2_target (B,) long; optional l1_target (B,) long,
        derived from ``l2_target`` when omitted.

    Example:
        >>> import torch
        >>> loss = HMCLoss(l2_to_l1=[0, 0, 1], l2_weight=2.0, mismatch_weight=0.5)
        >>> l1_logits, l2_logits = torch.randn(4, 2), torch.randn(4, 3)
        >>> value = loss(l1_logits, l2_logits, torch.tensor([0, 1, 2, 2]))
        >>> value.shape
        torch.Size([])
    """

    def __init__(
        self,
        l2_to_l1: Sequence[int],
        l2_weight: float = 2.0,
        mismatch_weight: float = 0.1,
        mismatch_reference: MismatchReference = "predicted",
        label_smoothing: float = 0.0,
    ):
        super().__init__()
        if mismatch_reference not in ("predicted", "target"):
            raise ConfigError(
                f"hmc loss: mismatch_reference must be 'predicted' or 'target', not {mismatch_reference!r}"
            )
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"hmc loss: label_smoothing must be in [0, 1), not {label_smoothing}")
        self.l2_to_l1 = [int(v) for v in l2_to_l1]
        self.l2_weight = l2_weight
        self.mismatch_weight = mismatch_weight
        self.mismatch_reference = mismatch_reference
        self.label_smoothing = label_smoothing
        self.register_buffer("parents", torch.tensor(self.l2_to_l1, dtype=torch.long), persistent=False)

    def terms(
        self,
        l1_logits: torch.Tensor,
        l2_logits: torch.Tensor,
        l2_target: torch.Tensor,
        l1_target: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """The three terms and their weighted sum: keys ``l1``, ``l2``, ``mismatch``, ``total``."""
        if l1_target is None:
            l1_target = self.parents[l2_target]
        l1_ce = F.cross_entropy(l1_logits, l1_target, label_smoothing=self.label_smoothing)
        l2_ce = F.cross_entropy(l2_logits, l2_target, label_smoothing=self.label_smoothing)
        mismatch = hierarchy_mismatch(
            torch.softmax(l1_logits, dim=1),
            torch.softmax(l2_logits, dim=1),
            self.parents,
            l1_target if self.mismatch_reference == "target" else None,
        )
        total = l1_ce + self.l2_weight * l2_ce + self.mismatch_weight * mismatch
        return {"l1": l1_ce, "l2": l2_ce, "mismatch": mismatch, "total": total}

    def forward(
        self,
        l1_logits: torch.Tensor,
        l2_logits: torch.Tensor,
        l2_target: torch.Tensor,
        l1_target: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The total loss (scalar)."""
        return self.terms(l1_logits, l2_logits, l2_target, l1_target)["total"]
