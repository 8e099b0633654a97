"""Retrieval metrics of the Taobao write-up: R@1/5/20 and mean rank, and micro-AP for copy detection."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def target_ranks(scores: np.ndarray, targets: Sequence[int]) -> np.ndarray:
    """1-based rank of each query's target among all candidates (ties count against the target).

    Args:
        scores: ``(Q, N)`` query × candidate scores, higher is better.
        targets: the right candidate of each query.
    """
    scores = np.asarray(scores, np.float32)
    t = np.asarray(targets)
    own = scores[np.arange(len(t)), t]
    return 1 + (scores > own[:, None]).sum(axis=1) + ((scores == own[:, None]).sum(axis=1) - 1)


def recall_at(ranks: np.ndarray, ks: Sequence[int] = (1, 5, 20)) -> dict[str, float]:
    """``{"R@1": …, "R@5": …, "R@20": …, "mean_rank": …, "median_rank": …}`` from target ranks."""
    ranks = np.asarray(ranks)
    out = {f"R@{k}": float(np.mean(ranks <= k)) for k in ks}
    out["mean_rank"] = float(ranks.mean())
    out["median_rank"] = float(np.median(ranks))
    return out


def micro_average_precision(scores: Sequence[float], positives: Sequence[bool], n_positives: int) -> float:
    """Micro-AP over a global list of scored (query, reference) predictions (Meta VSC 2022).

    Args:
        scores: one score per predicted pair.
        positives: whether each predicted pair is a true copy.
        n_positives: number of true pairs in the ground truth (pairs never predicted count as missed).
    """
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    pos = np.asarray(positives, bool)[order]
    if n_positives <= 0:
        return 0.0
    tp = np.cumsum(pos)
    precision = tp / np.arange(1, len(pos) + 1)
    return float(np.sum(precision[pos]) / n_positives)
