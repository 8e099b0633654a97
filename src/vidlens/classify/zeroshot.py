"""Zero-shot classification before any training: category names meet the video's text.

Every category is described by its name, aliases, description and keywords; the multilingual text
encoder embeds these (their mean, normalised, is the category's vector). A video's text vectors — title,
summary, product text, OCR, ASR and the names of the visual concepts its frames show, all made by the
same encoder — are compared with them by cosine similarity, weighted per field over the fields the
video has. Decoding is hierarchical and consistent: the score of an L2 is its own similarity plus
``l1_weight`` times its parent's, a softmax over L2 gives the confidences, an L1's confidence is the
sum over its children, and the predicted L1 is always the parent of the predicted L2.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from vidlens.classify.dataset import ClassificationDataset, DatasetError
from vidlens.classify.predictions import Predictions
from vidlens.classify.sources import ModalitySource, TextEmbedder, dataset_from_library
from vidlens.features.featureset import TEXT_FIELDS
from vidlens.models.versions import ModelVersionError
from vidlens.retrieval.embedder import l2n
from vidlens.taxonomy import Category, Taxonomy

if TYPE_CHECKING:
    from vidlens.library import Library

DEFAULT_FIELD_WEIGHTS: dict[str, float] = {
    "title": 1.0,
    "summary": 0.6,
    "product": 0.8,
    "ocr": 0.4,
    "asr": 0.5,
    "concepts": 0.3,
}


def category_texts(category: Category) -> list[str]:
    """The strings that describe a category: name, aliases, description and each keyword on its own (a
    keyword is a short text a title may share; joined into one string they blur into a list)."""
    texts = [category.name, *category.aliases]
    if category.description:
        texts.append(category.description)
    texts.extend(category.keywords)
    return [t for t in texts if t.strip()]


class _EncoderVersion:
    """Stands in for the text encoder of a zero-shot classifier whose category vectors are stored."""

    def __init__(self, version: str):
        self.version = version

    def encode(self, texts: list[str]) -> np.ndarray:
        raise RuntimeError("the category vectors are stored with the model; nothing to encode")


class ZeroShotClassifier:
    """Classifies from text similarity to the category descriptions (see the module docstring).

    Args:
        taxonomy: the category tree.
        embedder: the text encoder that made the videos' text vectors.
        field_weights: text field -> weight (default :data:`DEFAULT_FIELD_WEIGHTS`; others weigh 1).
        l1_weight: weight of the parent's similarity in an L2's score.
        temperature: softmax temperature of the confidences.
        name: shown in outputs.
    """

    def __init__(
        self,
        taxonomy: Taxonomy,
        embedder: TextEmbedder,
        field_weights: Mapping[str, float] | None = None,
        l1_weight: float = 0.5,
        temperature: float = 0.05,
        name: str = "zero-shot",
    ):
        self.taxonomy = taxonomy
        self.embedder = embedder
        self.field_weights = dict(DEFAULT_FIELD_WEIGHTS if field_weights is None else field_weights)
        self.l1_weight = l1_weight
        self.temperature = temperature
        self.name = name
        self.l1_vectors_: np.ndarray | None = None
        self.l2_vectors_: np.ndarray | None = None

    @property
    def encoder_version(self) -> str:
        """The text encoder version the video text vectors must come from."""
        return self.embedder.version

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """What a model folder keeps to predict without the text encoder: settings (JSON) and the
        category vectors (arrays)."""
        l1, l2 = self.category_vectors()
        meta = {"encoder_version": self.encoder_version, "field_weights": self.field_weights,
                "l1_weight": self.l1_weight, "temperature": self.temperature, "name": self.name}
        return meta, {"l1_vectors": l1, "l2_vectors": l2}

    @classmethod
    def from_state(cls, taxonomy: Taxonomy, meta: dict, arrays: Mapping[str, np.ndarray]) -> ZeroShotClassifier:
        """Rebuild from :meth:`state`; the category vectors are kept, so no text encoder is needed."""
        zs = cls(taxonomy, _EncoderVersion(meta["encoder_version"]), field_weights=meta["field_weights"],
                 l1_weight=float(meta["l1_weight"]), temperature=float(meta["temperature"]),
                 name=meta.get("name", "zero-shot"))
        zs.l1_vectors_ = np.asarray(arrays["l1_vectors"], np.float32)
        zs.l2_vectors_ = np.asarray(arrays["l2_vectors"], np.float32)
        if zs.l1_vectors_.shape[0] != taxonomy.num_l1 or zs.l2_vectors_.shape[0] != taxonomy.num_l2:
            raise DatasetError("stored zero-shot category vectors do not match the taxonomy")
        return zs

    def _mean_text(self, dataset: ClassificationDataset) -> np.ndarray:
        """(N, D) the field-weighted mean of each row's unit text vectors, over the fields it has (zeros
        for a row without text). Its dot product with a category vector is the field-weighted mean cosine."""
        out, total = None, np.zeros(len(dataset), np.float32)
        for name in self._text_modalities(dataset):
            m = dataset.modalities[name]
            w = self.field_weights.get(m.feature.split(".", 1)[1], 1.0) * m.present.astype(np.float32)
            vec = l2n(m.vectors)
            out = w[:, None] * vec if out is None else out + w[:, None] * vec
            total += w
        return (out / np.maximum(total, 1e-12)[:, None]).astype(np.float32)

    def text_vectors(self, dataset: ClassificationDataset) -> np.ndarray:
        """(N, D) one unit vector per row: the field-weighted mean of its unit text vectors (zeros for a
        row without text)."""
        return l2n(self._mean_text(dataset))

    def with_examples(self, dataset: ClassificationDataset, rows: np.ndarray, name_weight: float = 2.0,
                      l1_weight: float | None = None) -> ZeroShotClassifier:
        """A copy whose category vectors also take in labelled examples: ``normalise(name_weight · v +
        Σ examples' text vectors)`` for each L1 and L2 (a nearest-prototype classifier whose prior is the
        category's own description; a category without examples keeps its zero-shot vector).

        Args:
            dataset: labelled data with this classifier's text features.
            rows: the rows to learn from (e.g. the training split).
            name_weight: weight of the description vector against one example.
            l1_weight: the copy's ``l1_weight`` (default: this one's).
        """
        self.check(dataset)
        rows = np.asarray(rows, dtype=np.int64)
        rows = rows[np.asarray(dataset.l2)[rows] >= 0]
        x = self.text_vectors(dataset.subset(rows))
        l2 = np.asarray(dataset.l2)[rows]
        l1v, l2v = self.category_vectors()
        sums2 = np.zeros_like(l2v)
        np.add.at(sums2, l2, x)
        sums1 = np.zeros_like(l1v)
        np.add.at(sums1, np.asarray(self.taxonomy.l2_to_l1)[l2], x)

        out = ZeroShotClassifier(self.taxonomy, self.embedder, self.field_weights,
                                 self.l1_weight if l1_weight is None else l1_weight, self.temperature,
                                 name=f"{self.name}+examples")
        out.l1_vectors_ = l2n(name_weight * l1v + sums1)
        out.l2_vectors_ = l2n(name_weight * l2v + sums2)
        return out

    def category_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(C1, D) and (C2, D) unit vectors of the categories (computed once)."""
        if self.l1_vectors_ is None or self.l2_vectors_ is None:
            cats = {c.name: c for c in self.taxonomy.categories}
            names = [*self.taxonomy.l1_names, *self.taxonomy.l2_names]
            texts = [category_texts(cats[n]) for n in names]
            flat = [t for group in texts for t in group]
            vectors = self.embedder.encode(flat)
            out = np.zeros((len(names), vectors.shape[1]), np.float32)
            start = 0
            for i, group in enumerate(texts):
                v = vectors[start : start + len(group)].mean(axis=0)
                out[i] = v / max(float(np.linalg.norm(v)), 1e-12)
                start += len(group)
            self.l1_vectors_ = out[: self.taxonomy.num_l1]
            self.l2_vectors_ = out[self.taxonomy.num_l1 :]
        return self.l1_vectors_, self.l2_vectors_

    def _text_modalities(self, dataset: ClassificationDataset) -> list[str]:
        names = [n for n, m in dataset.modalities.items() if m.feature.startswith("text.")]
        if not names:
            raise DatasetError("zero-shot classification needs text features (text.title, text.ocr, …); none given")
        return names

    def check(self, dataset: ClassificationDataset) -> None:
        """Raise ``ModelVersionError`` if the text vectors come from another encoder than ``embedder``."""
        features = [dataset.modalities[n].feature for n in self._text_modalities(dataset)]
        differences = {
            f: (self.encoder_version, dataset.encoder_versions.get(f))
            for f in features
            if dataset.encoder_versions.get(f) != self.encoder_version
        }
        if differences:
            raise ModelVersionError("zero-shot classifier", differences)

    def scores(self, dataset: ClassificationDataset) -> tuple[np.ndarray, np.ndarray]:
        """(N, C1) and (N, C2) field-weighted cosine similarities."""
        self.check(dataset)
        l1_vec, l2_vec = self.category_vectors()
        text = self._mean_text(dataset)
        return text @ l1_vec.T, text @ l2_vec.T

    def predict(self, dataset: ClassificationDataset) -> Predictions:
        """Consistent L1/L2 predictions for every row (rows without text get uniform confidences).

        Raises:
            ModelVersionError: the text vectors come from another encoder.
            DatasetError: the dataset has no text features.
        """
        s1, s2 = self.scores(dataset)
        parents = self.taxonomy.l2_to_l1
        joint = (s2 + self.l1_weight * s1[:, parents]) / self.temperature
        joint -= joint.max(axis=1, keepdims=True)
        l2_probs = np.exp(joint)
        l2_probs /= l2_probs.sum(axis=1, keepdims=True)
        l1_probs = np.zeros_like(s1)
        np.add.at(l1_probs.T, parents, l2_probs.T)
        present = {n: m.present.copy() for n, m in dataset.modalities.items()}
        return Predictions(
            ids=list(dataset.ids),
            taxonomy=self.taxonomy,
            l2_probs=l2_probs,
            l1_probs=l1_probs,
            present=present,
            method="zero-shot",
            model=self.name,
            independent_l1=s1.argmax(axis=1),
            independent_l2=s2.argmax(axis=1),
        )

    def dataset_from_library(
        self, lib: Library, ids: list[str] | None = None, require_labels: bool = False
    ) -> ClassificationDataset:
        """The text vectors of a library's videos (all, or ``ids``), as zero-shot input."""
        have = set(lib.vectors.features())
        fields = [ModalitySource(f, kind="vector") for f in TEXT_FIELDS if f"text.{f}" in have]
        if not fields:
            raise DatasetError(
                f"{lib.root}: no text features extracted yet; run `vidlens extract --modalities text` first"
            )
        return dataset_from_library(
            lib, fields, self.taxonomy, ids=ids, require_labels=require_labels, skip_unusable=True,
            read_labels=require_labels, dims={f.name: self.category_vectors()[0].shape[1] for f in fields},
        )


def embedder_for_library(lib: Library, cache_dir=None) -> TextEmbedder:
    """The text encoder that made a library's text features (by the name in their keys).

    Raises:
        DatasetError: the library has no text features.
        ModelVersionError: the installed encoder of that name has another version.
    """
    for field in TEXT_FIELDS:
        matrix = lib.feature_matrix(f"text.{field}")
        if matrix.keys:
            key = matrix.keys[0].split("#", 1)[0]
            name = key.split("@", 1)[0]
            embedder = TextEmbedder(name, cache_dir=cache_dir)
            if embedder.version != key:
                raise ModelVersionError(
                    "zero-shot classifier", {f"text.{field}": (embedder.version, key)}
                )
            return embedder
    raise DatasetError(f"{lib.root}: no text features extracted yet; run `vidlens extract --modalities text` first")


__all__ = ["DEFAULT_FIELD_WEIGHTS", "ZeroShotClassifier", "category_texts", "embedder_for_library"]
