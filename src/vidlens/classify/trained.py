"""`TrainedClassifier`: a trained `MultimodalClassifier` plus what it needs to read data, in one folder.

Folder layout (``LIBRARY/models/NAME/``)::

    model.json            architecture and the encoder versions it was trained on
    weights.safetensors   weights
    taxonomy.json         the category tree
    classifier.json       which stored feature feeds each modality, the training config, data source
    splits.json           the ids of the train / val / test split (fixed, seeded)
    zero_shot.npz         category vectors of the zero-shot blend (``train.zero_shot_blend`` only)
    metrics.json          the metrics card: validation and test metrics, training history
    card.md               the same, for people
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vidlens.classify.batches import iter_batches
from vidlens.classify.dataset import ClassificationDataset, DatasetError
from vidlens.classify.predictions import Decoding, Predictions
from vidlens.errors import ConfigError, NotFoundError
from vidlens.models import MultimodalClassifier, check_encoder_versions
from vidlens.models.multimodal_classifier import MODEL_FILE

if TYPE_CHECKING:
    from vidlens.classify.zeroshot import ZeroShotClassifier
    from vidlens.library import Library
    from vidlens.taxonomy import Taxonomy

CLASSIFIER_FILE = "classifier.json"
SPLITS_FILE = "splits.json"
METRICS_FILE = "metrics.json"
CARD_FILE = "card.md"
ZERO_SHOT_FILE = "zero_shot.npz"
FORMAT = "vidlens.trained_classifier"
FORMAT_VERSION = 1


class TrainedClassifier:
    """A trained classifier with its input wiring, split and metrics card.

    Args:
        model: the network (its ``taxonomy`` must be set).
        sources: modality -> ``{"feature": ..., "kind": ...}`` (where its input comes from).
        name: model name.
        train_config: the training config it was made with (JSON form), if any.
        splits: split name -> ids.
        metrics: the metrics card.
        max_steps: longest sequence fed to an aggregator.
        zero_shot: a zero-shot classifier over the same taxonomy whose confidences are mixed in.
        zero_shot_weight: its share ``a``: confidences are ``(1 - a) * model + a * zero-shot``.
        decoding: how the predicted pair is read from the confidences (see ``Predictions.decoding``).
    """

    def __init__(
        self,
        model: MultimodalClassifier,
        sources: dict[str, dict[str, str]],
        name: str = "classifier",
        train_config: dict[str, Any] | None = None,
        splits: dict[str, list[str]] | None = None,
        metrics: dict[str, Any] | None = None,
        max_steps: int = 32,
        zero_shot: ZeroShotClassifier | None = None,
        zero_shot_weight: float = 0.0,
        decoding: Decoding = "joint",
    ):
        if model.taxonomy is None:
            raise ConfigError("a trained classifier needs a model with a taxonomy")
        self.model = model
        self.sources = sources
        self.name = name
        self.train_config = train_config
        self.splits = splits or {}
        self.metrics = metrics or {}
        self.max_steps = max_steps
        self.zero_shot = zero_shot
        self.zero_shot_weight = zero_shot_weight
        self.decoding = decoding

    @property
    def taxonomy(self) -> Taxonomy:
        """The category tree of the model's outputs."""
        return self.model.taxonomy

    # ---- data ------------------------------------------------------------------------------------

    def check(self, dataset: ClassificationDataset) -> None:
        """Refuse data this model cannot read.

        Raises:
            ModelVersionError: features from other encoder versions than the model was trained on.
            DatasetError: a modality of the model is missing from the dataset or has another size,
                or the dataset's taxonomy differs from the model's.
        """
        if dataset.taxonomy.fingerprint() != self.taxonomy.fingerprint():
            raise DatasetError(
                f"model {self.name!r}: dataset uses another taxonomy ({dataset.taxonomy!r}) than the model "
                f"({self.taxonomy!r}); build the dataset with the model's taxonomy"
            )
        for spec in self.model.config.modalities:
            m = dataset.modalities.get(spec.name)
            if m is None:
                raise DatasetError(f"model {self.name!r}: dataset lacks modality {spec.name!r}")
            if m.dim != spec.dim:
                raise DatasetError(
                    f"model {self.name!r}: modality {spec.name!r} has size {m.dim}, the model expects {spec.dim}"
                )
        # A feature no row has carries no version and cannot be misread; every other must match.
        given = dataset.encoder_versions
        expected = {f: v for f, v in self.model.encoder_versions.items() if f in given}
        check_encoder_versions(expected, given, what=f"classifier {self.name!r}")

    def dataset_from_library(
        self, lib: Library, ids: list[str] | None = None, require_labels: bool = False, skip_unusable: bool = True
    ) -> ClassificationDataset:
        """This model's inputs for videos of a library (all, or ``ids``), checked against the model.

        Labels are read (and must resolve) only with ``require_labels``."""
        from vidlens.classify.sources import ModalitySource, dataset_from_library

        sources = [ModalitySource(m, s["feature"], s["kind"]) for m, s in self.sources.items()]
        dataset = dataset_from_library(
            lib, sources, self.taxonomy, ids=ids, require_labels=require_labels, skip_unusable=skip_unusable,
            read_labels=require_labels, dims={m.name: m.dim for m in self.model.config.modalities},
        )
        self.check(dataset)
        return dataset

    # ---- prediction ------------------------------------------------------------------------------

    def predict(self, dataset: ClassificationDataset, batch_size: int = 512) -> Predictions:
        """Categories for every row of ``dataset``.

        Raises:
            ModelVersionError, DatasetError: see :meth:`check`.
        """
        return self.predict_with_loss(dataset, batch_size, with_loss=False)[0]

    @torch.no_grad()
    def predict_with_loss(
        self, dataset: ClassificationDataset, batch_size: int = 512, with_loss: bool = True
    ) -> tuple[Predictions, float]:
        """Predictions and (for labelled data, ``with_loss``) the mean training loss, in one pass."""
        self.check(dataset)
        model = self.model
        was_training = model.training
        model.eval()
        l1, l2, ind1, ind2, labels, losses, sizes = [], [], [], [], [], [], []
        weights: dict[str, list[np.ndarray]] = {}
        try:
            for rows, inputs, targets in iter_batches(
                dataset, np.arange(len(dataset)), model, batch_size, self.max_steps
            ):
                outputs = model(inputs)
                if with_loss:
                    losses.append(float(model.loss(outputs, targets)["total"]))
                    sizes.append(len(rows))
                decoded = model.decode(outputs)
                l1.append(decoded["l1_probs"].numpy())
                l2.append(decoded["l2_probs"].numpy())
                ind2.append(outputs["l2_logits"].argmax(1).numpy())
                if "l1_logits" in outputs:
                    ind1.append(outputs["l1_logits"].argmax(1).numpy())
                if "labels" in decoded:
                    labels.append(decoded["labels"].numpy())
                if "modality_weights" in decoded:
                    w = decoded["modality_weights"].numpy()
                    for j, name in enumerate(model.fusion.modalities):
                        weights.setdefault(name, []).append(w[:, j])
        finally:
            model.train(was_training)
        c1, c2 = self.taxonomy.num_l1, self.taxonomy.num_l2
        pred = Predictions(
            ids=list(dataset.ids),
            taxonomy=self.taxonomy,
            l2_probs=np.concatenate(l2) if l2 else np.zeros((0, c2), np.float32),
            l1_probs=np.concatenate(l1) if l1 else np.zeros((0, c1), np.float32),
            present={name: dataset.modalities[name].present.copy() for name in self.sources},
            method="trained",
            model=self.name,
            modality_weights={k: np.concatenate(v) for k, v in weights.items()} or None,
            independent_l1=np.concatenate(ind1) if ind1 else None,
            independent_l2=np.concatenate(ind2) if ind2 else None,
            labels=np.concatenate(labels) if labels else None,
            decoding=self.decoding,
        )
        loss = float(np.average(losses, weights=sizes)) if losses else 0.0
        if self.zero_shot is not None and self.zero_shot_weight > 0 and len(dataset):
            pred = pred.mixed(self.zero_shot.predict(dataset), self.zero_shot_weight)
        return pred, loss

    # ---- persistence -----------------------------------------------------------------------------

    def save(self, folder: str | Path) -> Path:
        """Write the model folder (see the module docstring); returns it."""
        folder = Path(folder)
        self.model.save(folder)
        spec = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "sources": self.sources,
            "max_steps": self.max_steps,
            "taxonomy_fingerprint": self.taxonomy.fingerprint(),
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "train_config": self.train_config,
            "decoding": self.decoding,
        }
        if self.zero_shot is not None:
            meta, arrays = self.zero_shot.state()
            spec["zero_shot"] = {"weight": self.zero_shot_weight, **meta}
            np.savez(folder / ZERO_SHOT_FILE, **arrays)
        _write_json(folder / CLASSIFIER_FILE, spec)
        _write_json(folder / SPLITS_FILE, self.splits)
        _write_json(folder / METRICS_FILE, self.metrics)
        (folder / CARD_FILE).write_text(self.card(), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: str | Path, encoder_versions: dict[str, str] | None = None) -> TrainedClassifier:
        """Read a model folder.

        Raises:
            NotFoundError: not a model folder.
            ConfigError: written by something else or an unsupported format version.
            ModelVersionError: ``encoder_versions`` differ from those the model was trained on.
        """
        folder = Path(folder)
        path = folder / CLASSIFIER_FILE
        if not path.is_file() or not (folder / MODEL_FILE).is_file():
            raise NotFoundError(f"{folder}: not a trained classifier folder (no {CLASSIFIER_FILE})")
        spec = json.loads(path.read_text(encoding="utf-8"))
        if spec.get("format") != FORMAT or spec.get("format_version") != FORMAT_VERSION:
            raise ConfigError(
                f"{path}: expected {FORMAT} v{FORMAT_VERSION}, found {spec.get('format')} v{spec.get('format_version')}"
            )
        model = MultimodalClassifier.load(folder, encoder_versions=encoder_versions)
        if model.taxonomy is None:
            raise ConfigError(f"{folder}: the model folder has no taxonomy.json")
        if spec.get("taxonomy_fingerprint") not in (None, model.taxonomy.fingerprint()):
            raise ConfigError(f"{folder}: taxonomy.json was changed after training; retrain or restore it")

        def read(name: str) -> dict:
            p = folder / name
            return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else {}

        zero_shot, weight = None, 0.0
        if spec.get("zero_shot"):
            from vidlens.classify.zeroshot import ZeroShotClassifier

            if not (folder / ZERO_SHOT_FILE).is_file():
                raise ConfigError(f"{folder}: classifier.json names a zero-shot blend but {ZERO_SHOT_FILE} is missing")
            with np.load(folder / ZERO_SHOT_FILE) as arrays:
                zero_shot = ZeroShotClassifier.from_state(model.taxonomy, spec["zero_shot"], dict(arrays))
            weight = float(spec["zero_shot"]["weight"])
        return cls(
            model,
            sources=spec["sources"],
            name=spec.get("name", folder.name),
            train_config=spec.get("train_config"),
            splits=read(SPLITS_FILE),
            metrics=read(METRICS_FILE),
            max_steps=int(spec.get("max_steps", 32)),
            zero_shot=zero_shot,
            zero_shot_weight=weight,
            decoding=spec.get("decoding", "joint"),
        )

    def card(self) -> str:
        """A short human-readable model card (markdown)."""
        cfg = self.model.config
        lines = [
            f"# {self.name}",
            "",
            f"Taxonomy: {self.taxonomy.num_l1} level-1 / {self.taxonomy.num_l2} level-2 categories.",
            "",
            "| modality | feature | kind | encoder version |",
            "|---|---|---|---|",
        ]
        for m, s in self.sources.items():
            version = self.model.encoder_versions.get(s["feature"], "")
            lines.append(f"| {m} | {s['feature']} | {s['kind']} | {version} |")
        lines += [
            "",
            f"Fusion `{cfg.fusion.name}`, head `{cfg.head.name}`, modal dropout {cfg.modal_dropout}, "
            f"auxiliary loss weight {cfg.aux_loss_weight}.",
            "",
        ]
        if self.zero_shot is not None:
            lines += [f"Confidences mix in zero-shot (category names against the text fields) with weight "
                      f"{self.zero_shot_weight} (chosen on validation).", ""]
        if self.decoding != "joint":
            lines += ["Predicted categories are read top-down: the level-1 category with the most confidence "
                      "over its children, then its most confident child.", ""]
        for split in ("val", "test"):
            m = self.metrics.get(split)
            if m:
                shown = ", ".join(f"{k} {v:.4f}" for k, v in m.items() if isinstance(v, float))
                lines.append(f"- {split} ({m.get('n', '?')} items): {shown}")
        training = self.metrics.get("training")
        if training:
            lines.append(
                f"- trained {training.get('epochs_run')} epochs (best {training.get('best_epoch')}) "
                f"in {training.get('seconds', 0):.1f} s on {training.get('train_items')} items"
            )
        return "\n".join(lines) + "\n"


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=_json_default), encoding="utf-8")
    tmp.replace(path)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


__all__ = ["TrainedClassifier"]
