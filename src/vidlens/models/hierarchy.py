"""Tensor operations on a two-level label tree given as ``l2_to_l1`` (parent L1 index of each L2).

Heads, losses and evaluation share these so that "the L1 of an L2" is computed in one place.
"""

from __future__ import annotations

import torch


def l1_marginal(l2_probs: torch.Tensor, l2_to_l1: torch.Tensor, num_l1: int) -> torch.Tensor:
    """Probability of each L1 implied by an L2 distribution: ``q(a) = sum_{b: parent(b)=a} p(b)``.

    Args:
        l2_probs: (B, C2) probabilities.
        l2_to_l1: (C2,) long, parent of each L2.
        num_l1: C1.

    Returns:
        (B, C1).
    """
    out = l2_probs.new_zeros(l2_probs.shape[0], num_l1)
    return out.index_add(1, l2_to_l1, l2_probs)


def l1_max(l2_scores: torch.Tensor, l2_to_l1: torch.Tensor, num_l1: int) -> torch.Tensor:
    """Largest score among each L1's children (B, C1); ``-inf`` for an L1 without children."""
    out = l2_scores.new_full((l2_scores.shape[0], num_l1), float("-inf"))
    index = l2_to_l1.unsqueeze(0).expand_as(l2_scores)
    return out.scatter_reduce(1, index, l2_scores, reduce="amax", include_self=False)


def group_logsumexp(l2_logits: torch.Tensor, l2_to_l1: torch.Tensor, num_l1: int) -> torch.Tensor:
    """``log sum_{b: parent(b)=a} exp(l2_logits[b])`` per L1 (B, C1), computed stably per group."""
    shift = l1_max(l2_logits, l2_to_l1, num_l1).detach()
    shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
    sums = l1_marginal(torch.exp(l2_logits - shift[:, l2_to_l1]), l2_to_l1, num_l1)
    return torch.log(sums) + shift


def joint_log_probs(l1_logits: torch.Tensor, l2_logits: torch.Tensor, l2_to_l1: torch.Tensor) -> torch.Tensor:
    """Log-probability of each valid (L1, L2) pair, indexed by L2 (B, C2).

    ``log p(a, b) = log p1(a) + log p2(b | a)`` with ``a = parent(b)``, ``p1 = softmax(l1_logits)`` and
    ``p2(b | a)`` the L2 softmax renormalised over the children of ``a``. The result sums to 1 over L2
    (for L1s that have children), so its argmax is the best consistent pair and can never be an L2
    outside its L1.
    """
    num_l1 = l1_logits.shape[1]
    log_p1 = torch.log_softmax(l1_logits, dim=1)
    conditional = l2_logits - group_logsumexp(l2_logits, l2_to_l1, num_l1)[:, l2_to_l1]
    return log_p1[:, l2_to_l1] + conditional


__all__ = ["group_logsumexp", "joint_log_probs", "l1_marginal", "l1_max"]
