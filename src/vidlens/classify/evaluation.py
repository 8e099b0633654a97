"""Evaluating a classifier on labelled data: metrics, per-class table, confusion matrices and each
modality's contribution, measured two ways — the modal-attention weights the model gives it, and the
accuracy lost when it is removed (ablation).

Works for any classifier given as a function ``dataset -> Predictions`` (trained or zero-shot).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vidlens.classify.dataset import ClassificationDataset, DatasetError
from vidlens.classify.metrics import classification_metrics, confusion_matrix, per_class_table
from vidlens.classify.predictions import Predictions

PredictFn = Callable[[ClassificationDataset], Predictions]


@dataclass
class Evaluation:
    """The outcome of :func:`evaluate`.

    Attributes:
        name: the model's name.
        method: ``trained`` or ``zero-shot``.
        split: which part of the data (``test``, ``val``, ``all``).
        metrics: summary metrics (see :func:`~vidlens.classify.metrics.classification_metrics`).
        per_class_l1 / per_class_l2: precision, recall, F1, support per class.
        confusion_l1 / confusion_l2: (C, C) counts, rows true, columns predicted.
        attention: modality -> mean modal-attention weight over the videos that have it (None when
            the fusion has no attention).
        ablation: modality -> ``{"videos", "accuracy", "without", "only", "drop"}``: L2 accuracy on the
            videos that have the modality, with it removed, with only it, and the drop when removed.
        history: per-epoch training history, when known.
        predictions: the predictions themselves.
    """

    name: str
    method: str
    split: str
    metrics: dict[str, float]
    per_class_l1: list[dict[str, Any]]
    per_class_l2: list[dict[str, Any]]
    confusion_l1: np.ndarray
    confusion_l2: np.ndarray
    attention: dict[str, float] | None = None
    ablation: dict[str, dict[str, float]] | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    predictions: Predictions | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no confusion matrices or predictions)."""
        return {
            "name": self.name,
            "method": self.method,
            "split": self.split,
            "metrics": self.metrics,
            "attention": self.attention,
            "ablation": self.ablation,
            "per_class_l1": self.per_class_l1,
            "per_class_l2": self.per_class_l2,
        }


def _accuracy(pred: Predictions, y: np.ndarray, rows: np.ndarray) -> float:
    return float((pred.l2_pred[rows] == y[rows]).mean()) if len(rows) else float("nan")


def modality_ablation(predict: PredictFn, dataset: ClassificationDataset) -> dict[str, dict[str, float]]:
    """Per modality, L2 accuracy on the labelled videos that have it: as is, without it, and with it alone."""
    y = dataset.l2
    base = predict(dataset)
    out: dict[str, dict[str, float]] = {}
    names = list(dataset.modalities)
    for name in names:
        rows = np.flatnonzero(dataset.modalities[name].present & (y >= 0))
        if len(rows) == 0:
            continue
        without = predict(dataset.with_presence(name, np.zeros(len(dataset), dtype=bool)))
        alone = dataset
        for other in names:
            if other != name:
                alone = alone.with_presence(other, np.zeros(len(dataset), dtype=bool))
        only = predict(alone)
        acc = _accuracy(base, y, rows)
        out[name] = {
            "videos": len(rows),
            "accuracy": round(acc, 4),
            "without": round(_accuracy(without, y, rows), 4),
            "only": round(_accuracy(only, y, rows), 4),
            "drop": round(acc - _accuracy(without, y, rows), 4),
        }
    return out


def evaluate(
    predict: PredictFn,
    dataset: ClassificationDataset,
    *,
    name: str = "classifier",
    method: str = "trained",
    split: str = "test",
    ablation: bool = True,
    history: list[dict[str, float]] | None = None,
) -> Evaluation:
    """Measure a classifier on labelled data.

    Args:
        predict: ``dataset -> Predictions`` (``TrainedClassifier.predict``, ``ZeroShotClassifier.predict``).
        dataset: the data; unlabelled rows are ignored by the metrics.
        name, method, split: for the report.
        ablation: also measure each modality's contribution by removing it (one extra prediction
            pass per modality, plus one with it alone).
        history: training history to show.

    Raises:
        DatasetError: no labelled row.
    """
    if not dataset.labelled.any():
        raise DatasetError("evaluation needs labelled data; none of the items has a label")
    pred = predict(dataset)
    multi = dataset.multi_hot() if any(dataset.extra_l2) else None
    metrics = classification_metrics(pred, dataset.l2, multi)
    attention = None
    if pred.modality_weights:
        attention = {}
        for m, w in pred.modality_weights.items():
            present = pred.present.get(m, np.ones(len(w), dtype=bool))
            attention[m] = round(float(w[present].mean()), 4) if present.any() else 0.0
    return Evaluation(
        name=name,
        method=method,
        split=split,
        metrics=metrics,
        per_class_l1=per_class_table(pred, dataset.l2, level=1),
        per_class_l2=per_class_table(pred, dataset.l2, level=2),
        confusion_l1=confusion_matrix(pred, dataset.l2, level=1),
        confusion_l2=confusion_matrix(pred, dataset.l2, level=2),
        attention=attention,
        ablation=modality_ablation(predict, dataset) if ablation and len(dataset.modalities) > 1 else None,
        history=list(history or []),
        predictions=pred,
    )


__all__ = ["Evaluation", "evaluate", "modality_ablation"]
