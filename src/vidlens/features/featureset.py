"""`FeatureSet`: everything the models read about one video."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vidlens.store.vectors import VectorStore

# Feature names, in the order the extractor computes them. Text vectors are one feature per field.
TEXT_FIELDS = ("title", "summary", "product", "ocr", "asr", "concepts")
SEQUENCE_FEATURES = ("frames", "audio")
VECTOR_FEATURES = ("frames", "cover", "audio", *(f"text.{f}" for f in TEXT_FIELDS))
RESULT_FEATURES = ("ocr", "asr")
ALL_FEATURES = ("frames", "cover", "audio", "ocr", "asr", *(f"text.{f}" for f in TEXT_FIELDS))

# What a user asks for (``--modalities``) → the features that it means.
MODALITY_FEATURES: dict[str, tuple[str, ...]] = {
    "frames": ("frames",),
    "cover": ("cover",),
    "audio": ("audio",),
    "ocr": ("ocr",),
    "asr": ("asr",),
    "text": tuple(f"text.{f}" for f in TEXT_FIELDS),
}


def features_for(modalities: list[str] | tuple[str, ...]) -> list[str]:
    """Feature names for the given modality names (unknown names raise ValueError naming them)."""
    unknown = [m for m in modalities if m not in MODALITY_FEATURES]
    if unknown:
        raise ValueError(f"unknown modalities {unknown}; known: {sorted(MODALITY_FEATURES)}")
    wanted = {f for m in modalities for f in MODALITY_FEATURES[m]}
    return [f for f in ALL_FEATURES if f in wanted]


@dataclass
class FeatureSet:
    """Features of one video.

    Attributes:
        video_id: the video.
        pooled: one vector per present feature (``frames`` 1280-d, ``audio`` 512-d, ``text.title`` …).
        present: the presence mask: True where the feature exists for this video. A feature that is
            absent (no audio track, empty title) is False here and has no vector in ``pooled``; models
            must read this mask rather than treat a missing modality as a zero vector.
        texts: the text fields (title, summary, product, ocr, asr, concepts).
        results: small structured outputs per feature (transcript segments, OCR lines, concepts …).
        keys: the extractor key each feature was made with (checked by trained models).
    """

    video_id: str
    pooled: dict[str, np.ndarray] = field(default_factory=dict)
    present: dict[str, bool] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    _vectors: VectorStore | None = field(default=None, repr=False)

    def sequence(self, feature: str) -> np.ndarray | None:
        """The (T, D) sequence of ``frames`` or ``audio``, loaded from disk on first use."""
        if feature not in SEQUENCE_FEATURES:
            raise ValueError(f"{feature!r} has no sequence; these do: {SEQUENCE_FEATURES}")
        if not self.present.get(feature) or self._vectors is None:
            return None
        return self._vectors.read_sequence(feature, self.video_id)

    def summary(self) -> dict[str, Any]:
        """Shapes and presence, for display."""
        out: dict[str, Any] = {}
        for name in ALL_FEATURES:
            if name not in self.present:
                continue
            if not self.present[name]:
                out[name] = "absent"
            elif name in self.pooled:
                shape = list(self.pooled[name].shape)
                if name in SEQUENCE_FEATURES:
                    seq = self.sequence(name)
                    out[name] = {"pooled": shape, "sequence": list(seq.shape) if seq is not None else None}
                else:
                    out[name] = {"pooled": shape}
            else:
                out[name] = "present"
        return out
