"""k-fold cross-validation of a training config: how good a model this config makes, with its spread.

One fixed test split of a few hundred videos gives a figure that moves by several points with the split.
Cross-validation trains the config once per fold (stratified on the classes in the order the data shows
them, so a reordered taxonomy file deals the same folds; each fold's training part gives up a validation
part for early stopping, so no fold's test items steer its training) and reports:

- each fold's test metrics, and their mean and standard deviation over the folds;
- the *out-of-fold* predictions pooled: every labelled item predicted once, by the model that did not see
  it, evaluated as one set (per-class table, confusion matrices, the HTML report).

The models themselves are not kept: ``vidlens train`` makes the model to use, this measures the config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from vidlens.classify.config import TrainConfig
from vidlens.classify.dataset import ClassificationDataset, in_order_of_appearance, kfold_splits
from vidlens.classify.evaluation import Evaluation, evaluate
from vidlens.classify.metrics import classification_metrics
from vidlens.classify.predictions import Predictions
from vidlens.classify.sources import TextEmbedder
from vidlens.classify.trainer import fit

SUMMARY_METRICS = ("l1_accuracy", "l2_accuracy", "l1_macro_f1", "l2_macro_f1", "hit_at_2", "mismatch_rate")


@dataclass
class CrossValidation:
    """The outcome of :func:`cross_validate`.

    Attributes:
        name: the config's name.
        folds: one dict per fold: ``fold``, ``train`` / ``val`` / ``test`` sizes, ``best_epoch``, ``seconds``
            and the fold's test ``metrics``.
        mean, std: over the folds, for each of :data:`SUMMARY_METRICS` the folds report.
        pooled: the evaluation of the pooled out-of-fold predictions (None when the folds read their
            predictions by different decodings, ``train.decoding = 'auto'``, and cannot be pooled).
        note: why there is no pooled evaluation, if there is none.
        seed: the fold assignment seed.
    """

    name: str
    folds: list[dict[str, Any]]
    mean: dict[str, float]
    std: dict[str, float]
    pooled: Evaluation | None = None
    note: str = ""
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the pooled evaluation as its own summary)."""
        return {"name": self.name, "folds": self.folds, "mean": self.mean, "std": self.std, "seed": self.seed,
                "pooled": self.pooled.to_dict() if self.pooled is not None else None,
                **({"note": self.note} if self.note else {})}


def cross_validate(
    config: TrainConfig,
    dataset: ClassificationDataset,
    folds: int = 5,
    *,
    seed: int | None = None,
    embedder: TextEmbedder | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> CrossValidation:
    """Train ``config`` on each of ``folds`` stratified folds of ``dataset`` and measure each on its test fold.

    Args:
        config: the training config (its ``data.split.val`` share of each fold's training part is used for
            early stopping).
        dataset: labelled data (unlabelled rows are left out of every fold).
        folds: number of folds (at least 2).
        seed: fold assignment seed (default ``data.split.seed``).
        embedder: the text encoder, for ``train.zero_shot_blend``.
        progress, log: as for :func:`~vidlens.classify.trainer.fit`.

    Raises:
        DatasetError: fewer than 2 folds, or a fold without training items.
    """
    seed = config.data.split.seed if seed is None else seed
    splits = kfold_splits(in_order_of_appearance(dataset.l2), folds=folds, val=config.data.split.val, seed=seed)
    rows, parts = [], []
    for k, split in enumerate(splits):
        if log is not None:
            log(f"fold {k + 1}/{folds}: {len(split['train'])} train, {len(split['val'])} val, "
                f"{len(split['test'])} test")
        result = fit(config, dataset, split, progress=progress, log=log, embedder=embedder)
        test = dataset.subset(split["test"])
        pred = result.classifier.predict(test, config.train.eval_batch_size)
        metrics = classification_metrics(pred, test.l2, test.multi_hot() if any(test.extra_l2) else None)
        rows.append({"fold": k + 1, "train": len(split["train"]), "val": len(split["val"]),
                     "test": len(split["test"]), "best_epoch": result.best_epoch,
                     "seconds": round(result.seconds, 1), "metrics": metrics})
        parts.append(pred)
    keys = [m for m in SUMMARY_METRICS if all(m in r["metrics"] for r in rows)]
    values = {m: np.array([r["metrics"][m] for r in rows], dtype=float) for m in keys}
    mean = {m: round(float(v.mean()), 4) for m, v in values.items()}
    std = {m: round(float(v.std(ddof=1)), 4) for m, v in values.items()}
    cv = CrossValidation(name=config.name, folds=rows, mean=mean, std=std, seed=seed)
    decodings = sorted({p.decoding for p in parts})
    if len(decodings) > 1:
        cv.note = f"the folds chose different decodings ({', '.join(decodings)}), so their predictions are not pooled"
        return cv
    pooled = Predictions.concat(parts)
    pooled_data = dataset.select_ids(pooled.ids)
    cv.pooled = evaluate(lambda _data: pooled, pooled_data, name=config.name, method="trained",
                         split=f"{folds}-fold out-of-fold", ablation=False)
    return cv


__all__ = ["SUMMARY_METRICS", "CrossValidation", "cross_validate"]
