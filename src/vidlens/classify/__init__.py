"""Hierarchical multimodal classification of videos into a two-level taxonomy.

Layout (follows the work):

- ``dataset.py``: :class:`ClassificationDataset` (inputs, labels, presence masks), label resolution,
  fixed seeded splits; ``sources.py``: datasets from a library or from text-only rows;
  ``synthetic.py``: a controlled synthetic dataset;
- ``config.py``: :class:`TrainConfig` (TOML/YAML, components by registry name);
  ``batches.py``: dataset rows -> tensor batches; ``trainer.py``: the training loop (:func:`fit`);
- ``trained.py``: :class:`TrainedClassifier`, one model folder; ``zeroshot.py``:
  :class:`ZeroShotClassifier` from category names before any training; ``extend.py``: adding a new
  category to a trained model from a few examples;
- ``predictions.py``: :class:`Predictions` and their JSON lines; ``metrics.py``, ``evaluation.py``
  and ``report.py``: metrics, modality ablation and the HTML reports; ``comparison.py``: two classifiers
  on the same items, with bootstrap intervals and McNemar's test; ``crossval.py``: k-fold
  cross-validation of a training config;
- ``runs.py``: the end-to-end calls the CLI makes (train from a config, evaluate, classify a library).
"""

from vidlens.classify.comparison import Comparison, compare_predictions
from vidlens.classify.config import TrainConfig
from vidlens.classify.crossval import CrossValidation, cross_validate
from vidlens.classify.dataset import (
    ClassificationDataset,
    DatasetError,
    LabelError,
    ModalityData,
    kfold_splits,
    make_splits,
    resolve_labels,
)
from vidlens.classify.evaluation import Evaluation, evaluate
from vidlens.classify.extend import add_category
from vidlens.classify.metrics import classification_metrics, confusion_matrix, per_class_table
from vidlens.classify.predictions import Predictions
from vidlens.classify.report import write_report
from vidlens.classify.runs import (
    classify_files,
    classify_library,
    compare_models,
    cross_validate_config,
    default_taxonomy,
    evaluate_model,
    find_model,
    train_from_config,
    zero_shot_for_library,
)
from vidlens.classify.sources import (
    ModalitySource,
    TextEmbedder,
    dataset_from_library,
    dataset_from_rows,
    read_rows,
    taxonomy_from_rows,
)
from vidlens.classify.trained import TrainedClassifier
from vidlens.classify.trainer import TrainResult, fit
from vidlens.classify.zeroshot import ZeroShotClassifier

__all__ = [
    "ClassificationDataset",
    "Comparison",
    "CrossValidation",
    "DatasetError",
    "Evaluation",
    "LabelError",
    "ModalityData",
    "ModalitySource",
    "Predictions",
    "TextEmbedder",
    "TrainConfig",
    "TrainResult",
    "TrainedClassifier",
    "ZeroShotClassifier",
    "add_category",
    "classification_metrics",
    "classify_files",
    "classify_library",
    "compare_models",
    "compare_predictions",
    "confusion_matrix",
    "cross_validate",
    "cross_validate_config",
    "dataset_from_library",
    "dataset_from_rows",
    "default_taxonomy",
    "evaluate",
    "evaluate_model",
    "find_model",
    "fit",
    "kfold_splits",
    "make_splits",
    "per_class_table",
    "read_rows",
    "resolve_labels",
    "taxonomy_from_rows",
    "train_from_config",
    "write_report",
    "zero_shot_for_library",
]
