"""Independent sigmoid per class with per-class thresholds tuned on validation data."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vidlens.errors import ConfigError
from vidlens.models.heads.base import Head, make_trunk
from vidlens.models.hierarchy import l1_max
from vidlens.models.registry import HEADS


@HEADS.register("multilabel_sigmoid")
class MultiLabelSigmoidHead(Head):
    """A sigmoid per L2 class, trained with binary cross-entropy, as in PaddleVideo's video tagger.

    A video may carry several classes: ``decode`` returns ``labels`` (B, C2) bool, each class on when its
    probability reaches its threshold ``thresholds_[c]``, plus the top class as ``l2_pred``. Thresholds
    start at ``default_threshold`` and are tuned per class on validation data with ``fit_thresholds``.
    An L1's probability is the largest probability among its children.

    Args:
        in_dim: size of the input vector.
        l2_to_l1: parent L1 index of each class (for a flat tag set pass ``[0] * num_classes``).
        num_l1: number of L1 classes; defaults to ``max(l2_to_l1) + 1``.
        hidden_dim: size of an optional hidden layer (0: none).
        dropout: dropout on the input (and hidden layer).
        default_threshold: starting threshold for every class.
    """

    def __init__(
        self,
        in_dim: int,
        l2_to_l1: Sequence[int],
        num_l1: int | None = None,
        hidden_dim: int = 0,
        dropout: float = 0.0,
        default_threshold: float = 0.5,
    ):
        super().__init__(in_dim, l2_to_l1, num_l1)
        if not 0.0 < default_threshold < 1.0:
            raise ConfigError(
                f"multilabel_sigmoid: default_threshold must be in (0, 1), not {default_threshold}"
            )
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.default_threshold = default_threshold
        self.trunk, width = make_trunk(in_dim, hidden_dim, dropout)
        self.classifier = nn.Linear(width, self.num_l2_)
        self.register_buffer("thresholds_", torch.full((self.num_l2_,), default_threshold))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, in_dim) -> ``{"l2_logits": (B, C2)}`` (one logit per class)."""
        return {"l2_logits": self.classifier(self.trunk(x))}

    def loss(self, outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
        """Binary cross-entropy against ``targets["labels"]`` (B, C2), or the one-hot of ``targets["l2"]``."""
        logits = outputs["l2_logits"]
        labels = targets.get("labels")
        if labels is None:
            labels = F.one_hot(targets["l2"], self.num_l2_)
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))

    def decode(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-class probabilities, thresholded ``labels`` and the top class at both levels."""
        probs = torch.sigmoid(outputs["l2_logits"])
        l2_pred = probs.argmax(dim=1)
        return {
            "l2_probs": probs,
            "l1_probs": l1_max(probs, self.parents, self.num_l1_).clamp(min=0.0),
            "l2_pred": l2_pred,
            "l1_pred": self.parents[l2_pred],
            "labels": probs >= self.thresholds_,
        }

    @torch.no_grad()
    def fit_thresholds(
        self,
        probs: torch.Tensor | np.ndarray,
        targets: torch.Tensor | np.ndarray,
        candidates: Sequence[float] | None = None,
    ) -> torch.Tensor:
        """Choose, per class, the threshold that maximises F1 on validation predictions.

        Classes without a positive example keep their current threshold; among equally good
        thresholds the one nearest ``default_threshold`` wins.

        Args:
            probs: (N, C2) predicted probabilities.
            targets: (N, C2) 0/1 labels.
            candidates: thresholds to try; default 0.02, 0.04, ..., 0.98.

        Returns:
            The new thresholds (C2,), also stored in ``thresholds_``.
        """
        p = torch.as_tensor(probs, dtype=torch.float32)
        y = torch.as_tensor(targets).to(torch.bool)
        if p.shape != y.shape or p.dim() != 2 or p.shape[1] != self.num_l2_:
            raise ConfigError(
                f"fit_thresholds: probs {tuple(p.shape)} and targets {tuple(y.shape)} "
                f"must both be (N, {self.num_l2_})"
            )
        grid = torch.tensor(
            candidates if candidates is not None else np.arange(1, 50) / 50.0, dtype=torch.float32
        )
        f1 = torch.empty(len(grid), self.num_l2_)
        for i, t in enumerate(grid):
            predicted = p >= t
            tp = (predicted & y).sum(0).float()
            fp = (predicted & ~y).sum(0).float()
            fn = (~predicted & y).sum(0).float()
            f1[i] = 2 * tp / (2 * tp + fp + fn).clamp(min=1)
        f1 -= 1e-6 * (grid - self.default_threshold).abs().unsqueeze(1)
        best = grid[f1.argmax(dim=0)]
        has_positive = y.any(dim=0)
        self.thresholds_.copy_(torch.where(has_positive, best, self.thresholds_))
        return self.thresholds_.clone()
