"""`Predictions`: what any classifier (trained or zero-shot) says about N videos, and its JSON lines."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np

from vidlens.taxonomy import Taxonomy

Decoding = Literal["joint", "top_down"]
DECODINGS: tuple[str, ...] = get_args(Decoding)


@dataclass
class Predictions:
    """Category scores for N videos.

    Attributes:
        ids: video ids.
        taxonomy: the category tree the columns index into.
        l2_probs: (N, C2) confidences of the L2 classes (for softmax heads a distribution over
            consistent (L1, L2) pairs).
        l1_probs: (N, C1) confidences of the L1 classes.
        present: modality -> (N,) bool, the modalities each video had.
        method: ``trained`` or ``zero-shot``.
        model: name of the model that made them.
        modality_weights: modality -> (N,) attention weight, when the fusion attends over modalities.
        independent_l1: (N,) argmax of a separate L1 head, when the model has one (before consistent
            decoding; used to measure how often the two heads disagree).
        independent_l2: (N,) argmax of the raw L2 scores (before consistent decoding).
        labels: (N, C2) bool per-class decisions of a multi-label head.
        decoding: how the predicted pair is read from ``l2_probs``; both rules keep the predicted L1 the
            parent of the predicted L2:

            - ``"joint"``: the most confident (L1, L2) pair, i.e. the argmax of ``l2_probs``;
            - ``"top_down"``: first the L1 whose children hold the most confidence together (the argmax
              of the L1 marginal, which is what maximises expected L1 accuracy), then its most confident
              child. When confidence is spread over many small classes of one parent, the joint argmax
              can pick a lone child of another parent; top-down does not.
    """

    ids: list[str]
    taxonomy: Taxonomy
    l2_probs: np.ndarray
    l1_probs: np.ndarray
    present: dict[str, np.ndarray] = field(default_factory=dict)
    method: str = "trained"
    model: str = ""
    modality_weights: dict[str, np.ndarray] | None = None
    independent_l1: np.ndarray | None = None
    independent_l2: np.ndarray | None = None
    labels: np.ndarray | None = None
    decoding: Decoding = "joint"

    def __post_init__(self) -> None:
        if self.decoding not in DECODINGS:
            raise ValueError(f"decoding must be one of {DECODINGS}, not {self.decoding!r}")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def l2_pred(self) -> np.ndarray:
        """(N,) predicted L2 index (by :attr:`decoding`)."""
        if self.decoding == "joint" or not len(self.l2_probs):
            return self.l2_probs.argmax(axis=1)
        parents = self.taxonomy.l2_to_l1
        marginal = np.zeros((len(self.l2_probs), self.taxonomy.num_l1), dtype=np.float64)
        np.add.at(marginal.T, parents, self.l2_probs.T)
        inside = parents[None, :] == marginal.argmax(axis=1)[:, None]
        return np.where(inside, self.l2_probs, -np.inf).argmax(axis=1)

    @property
    def l1_pred(self) -> np.ndarray:
        """(N,) predicted L1 index: always the parent of the predicted L2."""
        return self.taxonomy.l2_to_l1[self.l2_pred]

    @classmethod
    def concat(cls, parts: Sequence[Predictions]) -> Predictions:
        """One set of predictions from several over the same taxonomy and decoding (say, the folds of a
        cross-validation), rows in the order given; an optional array is kept when every part has it.

        Raises:
            ValueError: no parts, or parts over different taxonomies or decodings.
        """
        if not parts:
            raise ValueError("no predictions to join")
        first = parts[0]
        if any(p.taxonomy.l2_names != first.taxonomy.l2_names or p.taxonomy.l1_names != first.taxonomy.l1_names
               for p in parts):
            raise ValueError("predictions over different taxonomies cannot be joined")
        if len({p.decoding for p in parts}) > 1:
            raise ValueError(f"predictions read by different decodings cannot be joined: "
                             f"{sorted({p.decoding for p in parts})}")

        def join(arrays: list[np.ndarray | None]) -> np.ndarray | None:
            return None if any(a is None for a in arrays) else np.concatenate(arrays)

        def join_dict(dicts: list[dict[str, np.ndarray] | None]) -> dict[str, np.ndarray] | None:
            if any(d is None for d in dicts):
                return None
            keys = [k for k in dicts[0] if all(k in d for d in dicts)]
            return {k: np.concatenate([d[k] for d in dicts]) for k in keys}

        return cls(
            ids=[i for p in parts for i in p.ids],
            taxonomy=first.taxonomy,
            l2_probs=np.concatenate([p.l2_probs for p in parts]),
            l1_probs=np.concatenate([p.l1_probs for p in parts]),
            present=join_dict([p.present for p in parts]) or {},
            method=first.method,
            model=first.model,
            modality_weights=join_dict([p.modality_weights for p in parts]),
            independent_l1=join([p.independent_l1 for p in parts]),
            independent_l2=join([p.independent_l2 for p in parts]),
            labels=join([p.labels for p in parts]),
            decoding=first.decoding,
        )

    def decoded(self, decoding: Decoding) -> Predictions:
        """A copy that reads its predicted pair by ``decoding`` (confidences unchanged)."""
        out = copy.copy(self)
        out.decoding = decoding
        out.__post_init__()
        return out

    def mixed(self, other: Predictions, share: float) -> Predictions:
        """A copy whose confidences are ``(1 - share) * self + share * other`` (same rows and taxonomy).
        Mixing two distributions over consistent (L1, L2) pairs gives one, so the predicted L1 stays the
        parent of the predicted L2."""
        out = copy.copy(self)
        out.l2_probs = (1 - share) * self.l2_probs + share * other.l2_probs
        out.l1_probs = (1 - share) * self.l1_probs + share * other.l1_probs
        return out

    def top_k(self, k: int) -> np.ndarray:
        """(N, k) L2 indices by decreasing confidence."""
        k = min(k, self.l2_probs.shape[1])
        part = np.argpartition(-self.l2_probs, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(-self.l2_probs, part, axis=1).argsort(axis=1, kind="stable")
        return np.take_along_axis(part, order, axis=1)

    def records(self, top_k: int = 5, titles: list[str] | None = None) -> list[dict[str, Any]]:
        """One JSON-ready dict per video, like PaddleVideo's output::

            {"id": ..., "title": ..., "l1": "美食", "l2": "家常菜",
             "confidence": {"l1": 0.91, "l2": 0.84},
             "top_k": [{"l1": "美食", "l2": "家常菜", "confidence": 0.84}, ...],
             "modalities": ["frames", "title"], "modality_weights": {...},
             "method": "trained", "model": "my-classifier"}
        """
        l1_names, l2_names = self.taxonomy.l1_names, self.taxonomy.l2_names
        parents = self.taxonomy.l2_to_l1
        top = self.top_k(top_k)
        l2_pred, l1_pred = self.l2_pred, self.l1_pred
        out = []
        for i, vid in enumerate(self.ids):
            record: dict[str, Any] = {"id": vid}
            if titles is not None:
                record["title"] = titles[i]
            record.update(
                l1=l1_names[l1_pred[i]],
                l2=l2_names[l2_pred[i]],
                confidence={
                    "l1": round(float(self.l1_probs[i, l1_pred[i]]), 4),
                    "l2": round(float(self.l2_probs[i, l2_pred[i]]), 4),
                },
                top_k=[
                    {"l1": l1_names[parents[j]], "l2": l2_names[j], "confidence": round(float(self.l2_probs[i, j]), 4)}
                    for j in top[i]
                ],
                modalities=[m for m, mask in self.present.items() if mask[i]],
            )
            if self.labels is not None:
                record["labels"] = [l2_names[j] for j in np.flatnonzero(self.labels[i])]
            if self.modality_weights:
                record["modality_weights"] = {
                    m: round(float(w[i]), 4) for m, w in self.modality_weights.items()
                }
            record["method"] = self.method
            if self.model:
                record["model"] = self.model
            out.append(record)
        return out


__all__ = ["DECODINGS", "Decoding", "Predictions"]
