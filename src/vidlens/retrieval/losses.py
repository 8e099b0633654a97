"""Retrieval losses for the two towers, registered in ``vidlens.models.LOSSES``.

All take a ``(B, N)`` score matrix ``s`` of queries × videos (cosines of unit vectors), the column of each
query's positive ``pos`` ``(B,)``, and a mask ``same`` ``(B, N)`` of columns that are *also* positives
for the query (another video with the same tag): those are never used as negatives.

- ``info_nce`` — in-batch softmax contrastive loss (CLIP/VSE style):
  ``L = -log softmax(s / τ)[pos]``. Every other video of the batch is a negative.
- ``triplet`` — hinge on one negative per query: ``L = [m - s(q, v+) + s(q, v-)]₊``, where ``v-`` is a
  random in-batch negative during warm-up and the hardest one after it (online hard negatives, VSE++
  [Faghri et al. 2017]). Starting with hard negatives collapses the embedding (every point maps to one
  spot and the loss sticks at the margin), which is why the Taobao write-up warms up with random ones.
- ``quintuplet`` — the adaptive offline quintuplet idea [Chen et al., ECCV 2020]: besides the online
  hard negative, each query brings an *offline* global hard negative mined over the whole gallery by
  the previous round's model. ``L = [m₁ - s⁺ + s_on]₊ + w · [m₂ - s⁺ + s_off]₊`` with ``m₂ < m₁`` and an
  adaptive weight ``w = σ((s_off - s⁺ + m₂) / τ_w)`` that presses harder on offline negatives that
  are still close to (or above) the positive and lets easy ones go.

Example:
    >>> import torch
    >>> s = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    >>> loss = LOSSES.create("info_nce", temperature=0.1)
    >>> float(loss(s, torch.tensor([0, 1]))) < 0.01
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vidlens.models.component import Component
from vidlens.models.registry import LOSSES


def _negatives_mask(s: torch.Tensor, pos: torch.Tensor, same: torch.Tensor | None) -> torch.Tensor:
    mask = torch.ones_like(s, dtype=torch.bool)
    mask[torch.arange(len(pos)), pos] = False
    if same is not None:
        mask &= ~same
    return mask


@LOSSES.register("info_nce")
class InfoNCELoss(Component):
    """In-batch contrastive loss ``-log softmax(s/τ)[pos]`` (other positives masked out).

    Args:
        temperature: softmax temperature τ.
    """

    def __init__(self, temperature: float = 0.05):
        super().__init__()
        self.temperature = temperature

    def forward(self, s: torch.Tensor, pos: torch.Tensor, same: torch.Tensor | None = None) -> torch.Tensor:
        logits = s / self.temperature
        if same is not None:
            keep = ~same
            keep[torch.arange(len(pos)), pos] = True
            logits = logits.masked_fill(~keep, float("-inf"))
        return F.cross_entropy(logits, pos)


@LOSSES.register("triplet")
class TripletLoss(Component):
    """Hinge ``[m - s⁺ + s⁻]₊`` with a random (``hard=False``) or the hardest in-batch negative.

    Args:
        margin: m.
    """

    def __init__(self, margin: float = 0.2):
        super().__init__()
        self.margin = margin

    def forward(self, s: torch.Tensor, pos: torch.Tensor, same: torch.Tensor | None = None,
                hard: bool = True) -> torch.Tensor:
        neg_ok = _negatives_mask(s, pos, same)
        s_pos = s[torch.arange(len(pos)), pos]
        if hard:
            s_neg = s.masked_fill(~neg_ok, float("-inf")).max(dim=1).values
        else:
            noise = torch.rand_like(s).masked_fill(~neg_ok, -1.0)
            s_neg = s.gather(1, noise.argmax(dim=1, keepdim=True)).squeeze(1)
        valid = neg_ok.any(dim=1)
        loss = F.relu(self.margin - s_pos + s_neg)
        return loss[valid].mean() if valid.any() else s.sum() * 0


@LOSSES.register("quintuplet")
class QuintupletLoss(Component):
    """Online hard negative hinge plus an adaptively weighted offline (global) hard negative hinge.

    Args:
        margin_online: m₁ for the in-batch hardest negative.
        margin_offline: m₂ (smaller) for the offline global hard negative.
        weight_temperature: τ_w of the adaptive weight.
    """

    def __init__(self, margin_online: float = 0.2, margin_offline: float = 0.1, weight_temperature: float = 0.05):
        super().__init__()
        self.margin_online = margin_online
        self.margin_offline = margin_offline
        self.weight_temperature = weight_temperature

    def forward(self, s: torch.Tensor, pos: torch.Tensor, s_offline: torch.Tensor,
                same: torch.Tensor | None = None) -> torch.Tensor:
        """``s_offline`` ``(B,)``: each query's score with its offline hard negative."""
        neg_ok = _negatives_mask(s, pos, same)
        s_pos = s[torch.arange(len(pos)), pos]
        s_on = s.masked_fill(~neg_ok, float("-inf")).max(dim=1).values
        s_on = torch.where(torch.isfinite(s_on), s_on, s_pos - self.margin_online)
        online = F.relu(self.margin_online - s_pos + s_on)
        w = torch.sigmoid((s_offline - s_pos + self.margin_offline) / self.weight_temperature).detach()
        offline = w * F.relu(self.margin_offline - s_pos + s_offline)
        return (online + offline).mean()
