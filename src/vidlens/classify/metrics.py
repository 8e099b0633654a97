"""Classification metrics on `Predictions` against labels: accuracy at both levels, micro/macro-F1,
Hit@k, GAP, L1–L2 mismatch, per-class table and confusion matrices.

Primary metric: ``l2_accuracy`` (greater is better).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vidlens.classify.predictions import Predictions


def f1_per_class(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int,
                 weights: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Precision, recall, F1 and support of each class; ``weights`` counts each item that many times (a
    bootstrap resample)."""
    right = y_true == y_pred
    tp = np.bincount(y_true[right], weights=None if weights is None else weights[right],
                     minlength=n_classes).astype(float)
    pred_count = np.bincount(y_pred, weights=weights, minlength=n_classes).astype(float)
    support = np.bincount(y_true, weights=weights, minlength=n_classes).astype(float)
    precision = np.divide(tp, pred_count, out=np.zeros(n_classes), where=pred_count > 0)
    recall = np.divide(tp, support, out=np.zeros(n_classes), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(n_classes), where=denom > 0)
    return precision, recall, f1, support


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, weights: np.ndarray | None = None) -> float:
    """Mean F1 over the classes that occur in ``y_true`` (``weights``: as for :func:`f1_per_class`)."""
    _, _, f1, support = f1_per_class(y_true, y_pred, n_classes, weights)
    seen = support > 0
    return float(f1[seen].mean()) if seen.any() else 0.0


def global_average_precision(scores: np.ndarray, truth: np.ndarray, top_k: int = 20) -> float:
    """GAP (YouTube-8M): average precision of all videos' top-``k`` (score, class) pairs pooled and
    ranked together, against the total number of true labels.

    Args:
        scores: (N, C) confidences.
        truth: (N, C) 0/1 labels.
        top_k: predictions kept per video.
    """
    k = min(top_k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    s = np.take_along_axis(scores, top, axis=1).ravel()
    hit = np.take_along_axis(truth, top, axis=1).ravel() > 0
    positives = float((truth > 0).sum())
    if positives == 0:
        return 0.0
    order = np.argsort(-s, kind="stable")
    hit = hit[order]
    precision = np.cumsum(hit) / np.arange(1, len(hit) + 1)
    return float((precision * hit).sum() / positives)


def classification_metrics(
    pred: Predictions, l2_true: np.ndarray, multi_hot: np.ndarray | None = None
) -> dict[str, float]:
    """The summary metrics of labelled rows.

    Args:
        pred: predictions for N videos.
        l2_true: (N,) true L2 index (-1 rows are ignored).
        multi_hot: optional (N, C2) all true labels (for Hit@k and GAP on multi-label data).

    Returns:
        ``n``, ``l1_accuracy``, ``l2_accuracy``, ``l1_macro_f1``, ``l2_macro_f1``, ``l2_micro_f1``,
        ``hit_at_1``, ``hit_at_2``, ``gap``, ``mismatch_rate`` (predicted L2 outside predicted L1;
        0 by construction for consistent decoding) and, where the model has a separate L1 head,
        ``raw_mismatch_rate`` (its argmax vs the parent of the raw L2 argmax).
    """
    tax = pred.taxonomy
    keep = np.asarray(l2_true) >= 0
    y2 = np.asarray(l2_true)[keep]
    n = int(keep.sum())
    if n == 0:
        return {"n": 0}
    parents = tax.l2_to_l1
    y1 = parents[y2]
    p2 = pred.l2_pred[keep]
    p1 = pred.l1_pred[keep]
    truth = multi_hot[keep] if multi_hot is not None else np.eye(tax.num_l2, dtype=np.float32)[y2]
    top2 = pred.top_k(2)[keep]
    hit1 = truth[np.arange(n), top2[:, 0]] > 0
    hit2 = hit1 | (truth[np.arange(n), top2[:, 1]] > 0) if top2.shape[1] > 1 else hit1
    out = {
        "n": n,
        "l1_accuracy": float((p1 == y1).mean()),
        "l2_accuracy": float((p2 == y2).mean()),
        "l1_macro_f1": macro_f1(y1, p1, tax.num_l1),
        "l2_macro_f1": macro_f1(y2, p2, tax.num_l2),
        "l2_micro_f1": float((p2 == y2).mean()),  # one label and one prediction per video
        "hit_at_1": float(hit1.mean()),
        "hit_at_2": float(hit2.mean()),
        "gap": global_average_precision(pred.l2_probs[keep], truth),
        "mismatch_rate": float((parents[p2] != p1).mean()),
    }
    if pred.independent_l1 is not None and pred.independent_l2 is not None:
        out["raw_mismatch_rate"] = float(
            (parents[pred.independent_l2[keep]] != pred.independent_l1[keep]).mean()
        )
    if pred.labels is not None:
        decided = pred.labels[keep]
        tp = float((decided & (truth > 0)).sum())
        fp = float((decided & (truth == 0)).sum())
        fn = float((~decided & (truth > 0)).sum())
        out["multilabel_micro_f1"] = 2 * tp / max(2 * tp + fp + fn, 1.0)
    return out


def per_class_table(pred: Predictions, l2_true: np.ndarray, level: int = 2) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support of each class (level 1 or 2), classes in index order."""
    tax = pred.taxonomy
    keep = np.asarray(l2_true) >= 0
    y2 = np.asarray(l2_true)[keep]
    if level == 1:
        y, p, names, n_classes = tax.l2_to_l1[y2], pred.l1_pred[keep], tax.l1_names, tax.num_l1
    else:
        y, p, names, n_classes = y2, pred.l2_pred[keep], tax.l2_names, tax.num_l2
    precision, recall, f1, support = f1_per_class(y, p, n_classes)
    predicted = np.bincount(p, minlength=n_classes)
    rows = []
    for c in range(n_classes):
        row: dict[str, Any] = {"name": names[c]}
        if level == 2:
            row["parent"] = tax.l1_names[tax.l2_to_l1[c]]
        row.update(
            support=int(support[c]),
            predicted=int(predicted[c]),
            precision=round(float(precision[c]), 4),
            recall=round(float(recall[c]), 4),
            f1=round(float(f1[c]), 4),
        )
        rows.append(row)
    return rows


def confusion_matrix(pred: Predictions, l2_true: np.ndarray, level: int = 1) -> np.ndarray:
    """(C, C) counts, rows = true class, columns = predicted class."""
    tax = pred.taxonomy
    keep = np.asarray(l2_true) >= 0
    y2 = np.asarray(l2_true)[keep]
    if level == 1:
        y, p, n = tax.l2_to_l1[y2], pred.l1_pred[keep], tax.num_l1
    else:
        y, p, n = y2, pred.l2_pred[keep], tax.num_l2
    out = np.zeros((n, n), dtype=np.int64)
    np.add.at(out, (y, p), 1)
    return out


__all__ = [
    "classification_metrics",
    "confusion_matrix",
    "f1_per_class",
    "global_average_precision",
    "macro_f1",
    "per_class_table",
]
