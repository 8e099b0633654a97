"""Zero-shot video vectors: one text-side vector and one fused multimodal vector per video.

How cross-modal matching works without a CLIP model
---------------------------------------------------
There is no image–text model that can be had offline, so a text query is never compared with pixels.
Everything that is *text about a video* is embedded by the same multilingual sentence encoder as the
query (``muse_v3``): title, summary, product text, on-screen text (OCR), speech (ASR) and the names of
the ImageNet concepts the frame model sees in the video (``concepts``, the bridge from pixels to words).
The **text-side vector** is the presence-weighted mean of those field vectors; a query vector is matched
against it by cosine. English queries find Chinese videos because the encoder is multilingual. A trained
two-tower model (:mod:`vidlens.retrieval.two_tower`) can replace this mapping once there is data.

The **fused video vector** (for similar videos and duplicate candidates) concatenates three blocks,
each L2-normalised: *visual* (pooled frame embeddings averaged with the cover, minus the library mean,
because raw CNN features are all positive and every pair looks alike), *audio* (same centring) and the
text-side vector. Block weights are renormalised over the blocks a video *has*, so the fused vector is
unit length and a missing modality is never a zero block that pulls scores down unnoticed:
``v = concat(w_b · x_b) / sqrt(Σ_present w_b²)``. The cosine of two fused vectors is then a weighted sum
of per-modality cosines over the modalities both videos have.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

TEXT_FIELD_WEIGHTS: dict[str, float] = {
    "title": 1.0, "summary": 0.8, "ocr": 0.6, "asr": 0.6, "product": 0.5, "concepts": 0.3,
}
BLOCK_WEIGHTS: dict[str, float] = {"visual": 1.0, "audio": 0.5, "text": 1.0}
VISUAL_FEATURES = ("frames", "cover")


def l2n(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    x = np.asarray(x, np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.where(norms > 1e-12, norms, 1.0)).astype(np.float32)


def fuse_text(fields: Mapping[str, np.ndarray], present: Mapping[str, np.ndarray],
              weights: Mapping[str, float] = TEXT_FIELD_WEIGHTS) -> tuple[np.ndarray, np.ndarray]:
    """Presence-weighted mean of text field vectors.

    Args:
        fields: field name → ``(N, D)`` unit vectors (rows of absent fields are ignored).
        present: field name → ``(N,)`` bool, whether the field exists for each item.
        weights: field weights (fields not listed are ignored).

    Returns:
        ``(N, D)`` unit vectors (zero rows where no field is present) and the ``(N,)`` presence mask.
    """
    names = [f for f in fields if f in weights]
    if not names:
        raise ValueError("no text field to fuse")
    n, dim = next(iter(fields[f] for f in names)).shape
    acc = np.zeros((n, dim), np.float32)
    for name in names:
        mask = np.asarray(present[name], bool)
        acc[mask] += weights[name] * np.asarray(fields[name], np.float32)[mask]
    has = np.zeros(n, bool)
    for name in names:
        has |= np.asarray(present[name], bool)
    return l2n(acc), has


@dataclass
class VideoEmbedder:
    """Computes the text-side and the fused vectors of videos from their pooled features.

    Args:
        field_weights: weight of each text field in the text-side vector.
        block_weights: weight of the visual, audio and text blocks in the fused vector.

    Learned state (from :meth:`fit`): ``means_`` (feature → mean pooled vector, for centring) and
    ``dims_`` (feature → size).
    """

    field_weights: dict[str, float] = field(default_factory=lambda: dict(TEXT_FIELD_WEIGHTS))
    block_weights: dict[str, float] = field(default_factory=lambda: dict(BLOCK_WEIGHTS))
    means_: dict[str, np.ndarray] = field(default_factory=dict)
    dims_: dict[str, int] = field(default_factory=dict)

    # -- fitting ------------------------------------------------------------------------------------
    def fit(self, pooled: Mapping[str, tuple[list[str], np.ndarray]]) -> VideoEmbedder:
        """Learn the centring means and sizes from pooled matrices ``feature → (ids, (N, D))``."""
        self.means_ = {}
        self.dims_ = {}
        for feature, (_, mat) in pooled.items():
            if len(mat):
                self.dims_[feature] = int(mat.shape[1])
                if feature in (*VISUAL_FEATURES, "audio"):
                    self.means_[feature] = l2n(mat).mean(axis=0).astype(np.float32)
        if "frames" in self.dims_ and "cover" in self.dims_ and self.dims_["frames"] != self.dims_["cover"]:
            raise ValueError("frames and cover vectors must have the same size")
        return self

    @property
    def text_dim(self) -> int | None:
        """Size of the text-side vector (None when the library has no text vectors)."""
        dims = {d for f, d in self.dims_.items() if f.startswith("text.")}
        return dims.pop() if dims else None

    @property
    def block_dims(self) -> dict[str, int]:
        """Size of each block of the fused vector (only blocks the library has)."""
        out = {}
        visual = self.dims_.get("frames") or self.dims_.get("cover")
        if visual:
            out["visual"] = visual
        if "audio" in self.dims_:
            out["audio"] = self.dims_["audio"]
        if self.text_dim:
            out["text"] = self.text_dim
        return out

    @property
    def video_dim(self) -> int:
        """Size of the fused vector."""
        return sum(self.block_dims.values())

    # -- vectors ------------------------------------------------------------------------------------
    def _centred(self, feature: str, mat: np.ndarray) -> np.ndarray:
        x = l2n(mat)
        if feature in self.means_:
            x = x - self.means_[feature]
        return l2n(x)

    def text_vectors(self, ids: list[str], pooled: Mapping[str, tuple[list[str], np.ndarray]]
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Text-side vectors of ``ids`` ``(N, D)`` and whether each video has any text."""
        dim = self.text_dim
        if dim is None:
            return np.zeros((len(ids), 0), np.float32), np.zeros(len(ids), bool)
        fields, present = {}, {}
        for name in self.field_weights:
            mat, has = aligned_rows(ids, pooled.get(f"text.{name}"), dim)
            fields[name], present[name] = mat, has
        return fuse_text(fields, present, self.field_weights)

    def video_vectors(self, ids: list[str], pooled: Mapping[str, tuple[list[str], np.ndarray]]
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Fused vectors of ``ids`` ``(N, video_dim)`` and whether each video has any block."""
        blocks: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        dims = self.block_dims
        if "visual" in dims:
            acc = np.zeros((len(ids), dims["visual"]), np.float32)
            has = np.zeros(len(ids), bool)
            for feature in VISUAL_FEATURES:
                mat, ok = aligned_rows(ids, pooled.get(feature), dims["visual"])
                acc[ok] += self._centred(feature, mat[ok])
                has |= ok
            blocks["visual"] = (l2n(acc), has)
        if "audio" in dims:
            mat, ok = aligned_rows(ids, pooled.get("audio"), dims["audio"])
            out = np.zeros_like(mat)
            out[ok] = self._centred("audio", mat[ok])
            blocks["audio"] = (out, ok)
        if "text" in dims:
            blocks["text"] = self.text_vectors(ids, pooled)
        return self.combine(blocks, len(ids))

    def combine(self, blocks: Mapping[str, tuple[np.ndarray, np.ndarray]], n: int) -> tuple[np.ndarray, np.ndarray]:
        """Concatenate unit blocks with weights renormalised over the blocks each row has."""
        dims = self.block_dims
        parts, weight_sq = [], np.zeros(n, np.float32)
        for name, dim in dims.items():
            mat, has = blocks.get(name, (np.zeros((n, dim), np.float32), np.zeros(n, bool)))
            w = self.block_weights.get(name, 0.0)
            parts.append(w * mat * has[:, None])
            weight_sq += (w ** 2) * has
        fused = np.concatenate(parts, axis=1) if parts else np.zeros((n, 0), np.float32)
        scale = np.where(weight_sq > 0, 1.0 / np.sqrt(np.maximum(weight_sq, 1e-12)), 0.0)
        return (fused * scale[:, None]).astype(np.float32), weight_sq > 0

    # -- persistence --------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """JSON-ready parameters and learned state."""
        return {"field_weights": self.field_weights, "block_weights": self.block_weights,
                "means": {k: v.tolist() for k, v in self.means_.items()}, "dims": self.dims_}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> VideoEmbedder:
        """Rebuild from :meth:`state`."""
        return cls(field_weights=dict(state["field_weights"]), block_weights=dict(state["block_weights"]),
                   means_={k: np.asarray(v, np.float32) for k, v in state.get("means", {}).items()},
                   dims_={k: int(v) for k, v in state.get("dims", {}).items()})

    def params_key(self) -> dict[str, Any]:
        """What must match for stored vectors to be reused (weights and sizes, not the means)."""
        return {"field_weights": self.field_weights, "block_weights": self.block_weights, "dims": self.dims_}


def aligned_rows(ids: list[str], matrix: tuple[list[str], np.ndarray] | None, dim: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``matrix`` in the order of ``ids`` (zeros where missing) and the presence mask."""
    out = np.zeros((len(ids), dim), np.float32)
    has = np.zeros(len(ids), bool)
    if matrix is None:
        return out, has
    mids, mat = matrix
    if not len(mids):
        return out, has
    if mat.shape[1] != dim:
        raise ValueError(f"feature vectors of size {mat.shape[1]}, expected {dim}")
    pos = {vid: i for i, vid in enumerate(mids)}
    rows = [(r, pos[v]) for r, v in enumerate(ids) if v in pos]
    if rows:
        r_out, r_in = zip(*rows, strict=True)
        out[list(r_out)] = mat[list(r_in)]
        has[list(r_out)] = True
    return out, has
