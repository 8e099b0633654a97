"""Near-duplicate detection: frame-level descriptors, candidate search, temporal alignment.

Descriptors (the Meta VSC 2022 budget: ≤ 512-d, ≤ 1 per second): one copy-detection vector per second
of video (:mod:`vidlens.retrieval.copy_descriptors`: black borders cut, whole picture and centre views
at reduced detail, features over 2 × 2 cells, computed from the file on first use and cached in the
library), projected to at most 256-d and L2-normalised by :class:`FrameWhitening`, fitted on the
library's own vectors. PCA whitening removes the directions every frame shares (CNN features are all
positive, so raw cosines between unrelated frames are high) and spreads the rest; then, from pairs of
frames and the same frames after a random copy-style edit, it keeps the directions such edits move
least (a linear discriminant with the edits as the within-class noise). The first step makes a copy
stand out from merely similar footage; the second stops whitening from blowing up exactly the
small directions that re-encoding and cropping disturb.

Matching two videos: a video-level descriptor (the mean of its frame descriptors) finds candidates
through a vector index; each candidate pair is then aligned on the frame-similarity matrix by a local
alignment (Smith–Waterman style) whose steps (1,1), (1,2), (2,1) admit speed changes between ½× and 2×
and whose local nature admits trimming. The score is the mean frame similarity along the best path,
the matching segment is where that path starts and ends in each video.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from vidlens.retrieval.copy_descriptors import (
    CopyDescriptorConfig,
    CopyVectorCache,
    CopyVectors,
    frame_encoder,
    video_copy_vectors,
)
from vidlens.retrieval.embedder import l2n

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.5
MATCH_BIAS = 0.15  # frame pairs below this similarity cost the path instead of extending it
_STEPS = ((1, 1), (1, 2), (2, 1))  # a path's moves: same speed, b twice as fast, a twice as fast


@dataclass
class FrameWhitening:
    """Frame embeddings → short, comparable copy descriptors: PCA whitening, then (given pairs of frames
    and their edited copies) the directions that copy-style edits move least.

    Args:
        dim: descriptor size (≤ 512; capped by the input size and the number of frames fitted on).
        shrink: regulariser added to the PCA eigenvalues as a fraction of their mean (stops tiny
            directions from being blown up into noise).
        min_frames: below this many frames the model only centres (no reliable covariance).
        pca_dim: directions kept by the PCA step when pairs follow it (without pairs: ``dim``).
        invariance: regulariser of the second step, a fraction of the mean edit variance added to
            each direction's (larger: closer to plain whitening).
        min_pairs: below this many pairs the second step is skipped.
    """

    dim: int = 256
    shrink: float = 0.1
    min_frames: int = 64
    pca_dim: int = 512
    invariance: float = 1.0
    min_pairs: int = 32
    mean_: np.ndarray | None = None
    projection_: np.ndarray | None = None
    rotation_: np.ndarray | None = None

    def fit(self, frames: np.ndarray, pairs: np.ndarray | None = None, max_frames: int = 4096,
            max_pairs: int = 8192, seed: int = 0) -> FrameWhitening:
        """Learn the projection from ``(N, D)`` frame embeddings and, optionally, ``(K, 2, D)`` pairs of a
        frame's embedding and the embedding of the same frame after a copy-style edit."""
        rng = np.random.default_rng(seed)
        x = np.asarray(frames)
        if len(x) > max_frames:  # sample before converting: the library's vectors may be float16
            x = x[np.sort(rng.choice(len(x), max_frames, replace=False))]
        x = l2n(x.astype(np.float32))
        self.mean_ = x.mean(axis=0) if len(x) else None
        self.projection_ = self.rotation_ = None
        if len(x) < self.min_frames:
            return self
        pairs = np.zeros((0, 2, x.shape[1]), np.float32) if pairs is None else np.asarray(pairs)
        use_pairs = len(pairs) >= self.min_pairs and pairs.shape[-1] == x.shape[1]
        # PCA by the SVD of the centred sample: cheaper than the covariance when frames are few and wide
        _, sing, vt = np.linalg.svd((x - self.mean_).astype(np.float64), full_matrices=False)
        vals = sing ** 2 / max(1, len(x) - 1)
        keep = min(self.pca_dim if use_pairs else self.dim, x.shape[1], len(x) - 1)
        vals, vecs = vals[:keep], vt[:keep].T
        reg = self.shrink * float(vals.mean()) if len(vals) else 0.0
        self.projection_ = (vecs / np.sqrt(np.maximum(vals, 0) + reg + 1e-12)).astype(np.float32)
        if use_pairs:
            if len(pairs) > max_pairs:
                pairs = pairs[np.sort(rng.choice(len(pairs), max_pairs, replace=False))]
            pairs = pairs.astype(np.float32)
            diff = self._whiten(pairs[:, 1]) - self._whiten(pairs[:, 0])
            edit_vals, edit_vecs = np.linalg.eigh((diff.T @ diff).astype(np.float64) / len(diff))
            k = min(self.dim, len(edit_vals))  # eigh sorts ascending: the directions edits move least
            scale = np.sqrt(np.maximum(edit_vals[:k], 0) + self.invariance * float(edit_vals.mean()) + 1e-12)
            self.rotation_ = (edit_vecs[:, :k] / scale).astype(np.float32)
        return self

    def _whiten(self, frames: np.ndarray) -> np.ndarray:
        x = l2n(np.asarray(frames, np.float32))
        if self.mean_ is not None:
            x = x - self.mean_
        if self.projection_ is not None:
            x = x @ self.projection_
        return l2n(x)

    def transform(self, frames: np.ndarray) -> np.ndarray:
        """``(T, D)`` embeddings → ``(T, d)`` unit descriptors."""
        x = self._whiten(frames)
        return l2n(x @ self.rotation_) if self.rotation_ is not None else x

    def state(self) -> dict[str, np.ndarray]:
        """Arrays for ``np.savez``."""
        out = {"dim": np.array(self.dim), "shrink": np.array(self.shrink)}
        for name in ("mean", "projection", "rotation"):
            if (value := getattr(self, f"{name}_")) is not None:
                out[name] = value
        return out

    @classmethod
    def from_state(cls, state: Any) -> FrameWhitening:
        """Rebuild from :meth:`state` (or the loaded npz)."""
        return cls(dim=int(state["dim"]), shrink=float(state["shrink"]),
                   mean_=state["mean"] if "mean" in state else None,
                   projection_=state["projection"] if "projection" in state else None,
                   rotation_=state["rotation"] if "rotation" in state else None)


@dataclass
class Alignment:
    """The best temporal match of two descriptor sequences.

    Attributes:
        score: mean frame similarity along the matched path (0 when nothing matches).
        pairs: matched (frame of a, frame of b) indices, in time order.
        peak: the highest single frame similarity.
    """

    score: float
    pairs: list[tuple[int, int]] = field(default_factory=list)
    peak: float = 0.0

    def segments(self, times_a: np.ndarray, times_b: np.ndarray, step: float = 1.0
                 ) -> tuple[list[float], list[float]]:
        """``[start, end]`` seconds of the matching part in each video (end includes one sampling step)."""
        if not self.pairs:
            return [], []
        (i0, j0), (i1, j1) = self.pairs[0], self.pairs[-1]
        return ([round(float(times_a[i0]), 3), round(float(times_a[i1]) + step, 3)],
                [round(float(times_b[j0]), 3), round(float(times_b[j1]) + step, 3)])


def align(a: np.ndarray, b: np.ndarray, bias: float = MATCH_BIAS) -> Alignment:
    """Local temporal alignment of two ``(T, d)`` unit descriptor sequences.

    Cell gain is ``sim - bias``; a path moves by (1,1), (1,2) or (2,1) frames, so one video may run up
    to twice as fast as the other, and starts and ends anywhere (trimmed copies).
    """
    if len(a) == 0 or len(b) == 0:
        return Alignment(0.0)
    sim = np.asarray(a, np.float32) @ np.asarray(b, np.float32).T
    gain = sim - bias
    ta, tb = sim.shape
    # h[i, j]: best path gain ending at (i, j); rows depend only on the two rows above, so each row is
    # computed at once. move[i, j]: which step led there (0: the path starts here).
    h = np.zeros((ta + 2, tb + 2), np.float32)  # two rows and columns of zero padding in front
    move = np.zeros((ta, tb), np.int8)
    zero = np.zeros(tb, np.float32)
    for i in range(ta):
        r = i + 2
        steps = np.stack([zero, h[r - 1, 1:tb + 1], h[r - 1, 0:tb], h[r - 2, 1:tb + 1]])  # (1,1) (1,2) (2,1)
        pick = np.argmax(steps, axis=0)  # the first of equal gains, as a walk over the steps in order
        value = gain[i] + steps[pick, np.arange(tb)]
        live = value > 0
        h[r, 2:] = np.where(live, value, 0.0)
        move[i] = np.where(live, pick, 0)
    h = h[2:, 2:]
    back = np.full((ta, tb, 2), -1, np.int32)
    for k, (di, dj) in enumerate(_STEPS, start=1):
        ii, jj = np.nonzero(move == k)
        back[ii, jj, 0], back[ii, jj, 1] = ii - di, jj - dj
    i, j = np.unravel_index(int(np.argmax(h)), h.shape)
    if h[i, j] <= 0:
        # nothing beats the bias: report the single best pair so that scores still rank
        i, j = np.unravel_index(int(np.argmax(sim)), sim.shape)
        return Alignment(float(sim[i, j]), [(int(i), int(j))], float(sim.max()))
    pairs = []
    while i >= 0 and j >= 0:
        pairs.append((int(i), int(j)))
        i, j = back[i, j]
    pairs.reverse()
    score = float(np.mean([sim[p] for p in pairs]))
    return Alignment(score, pairs, float(sim.max()))


@dataclass
class VideoDescriptors:
    """Frame descriptors of one video and the times they were sampled at."""

    id: str
    descriptors: np.ndarray
    times: np.ndarray

    @property
    def global_descriptor(self) -> np.ndarray:
        """The normalised mean of the frame descriptors (for candidate search)."""
        return l2n(self.descriptors.mean(axis=0, keepdims=True))[0]


PAIRS_ENOUGH = 16_384  # edited-frame pairs a library keeps: twice what one fit samples


def library_copy_vectors(lib: Any, encoders: Any = None, config: CopyDescriptorConfig | None = None,
                         progress: bool = False, max_pairs: int = PAIRS_ENOUGH) -> dict[str, CopyVectors]:
    """Per-second copy vectors (encoder space), their times and edited-frame pairs for every video of
    ``lib``, by id.

    Computed on first use from the video files (see :mod:`vidlens.retrieval.copy_descriptors`) and
    cached in ``LIBRARY/dedup/``; a video whose file is gone and that was never described is left out,
    with a warning.

    Args:
        lib: the library.
        encoders: an ``EncoderBank``-like object whose frame encoder embeds the views (default: the
            library's real frame encoder).
        config: sampling and cutting parameters (default: :class:`CopyDescriptorConfig`).
        progress: draw a bar over the videos not yet described.
        max_pairs: once the cache holds this many edited-frame pairs, new videos are described without
            (the fit samples at most half as many; the edits cost as much as the video's own frames on
            short clips).
    """
    from vidlens.errors import MediaError
    from vidlens.features.encoding import EncoderBank
    from vidlens.media import first_readable
    from vidlens.progress import progress_bar

    cfg = config or CopyDescriptorConfig()
    bank = encoders if encoders is not None else EncoderBank(lib.config)
    encode, key = frame_encoder(bank, cfg)
    cache = CopyVectorCache(lib.folder("dedup"), key, cfg)
    out: dict[str, CopyVectors] = {}
    missing, added = [], 0
    videos = list(lib.videos())
    todo = sum(1 for v in videos if v["id"] not in cache)
    pairs_kept = sum(len(e.pairs) for e in cache.vectors.values())
    with progress_bar(todo, "copy descriptors", enabled=progress and todo > 0) as advance:
        for video in videos:
            vid = video["id"]
            if vid not in cache:
                advance(1, vid[:12])
                path = first_readable([*video.get("paths_raw", []), *video.get("paths", [])])
                if path is None:
                    missing.append(vid)
                    continue
                try:
                    described = video_copy_vectors(path, encode, cfg if pairs_kept < max_pairs
                                                   else replace(cfg, augment_frames=0), seed=_seed(vid))
                except MediaError as exc:
                    log.warning("near-duplicates: %s left out (%s)", vid[:12], exc)
                    continue
                cache.put(vid, described)
                pairs_kept += len(described.pairs)
                added += 1
                if added % 200 == 0:
                    cache.save()  # a long first run keeps what it did if interrupted
            entry = cache.get(vid)
            if len(entry.vectors):
                out[vid] = entry
    if added:
        cache.save()
    if missing:
        log.warning("near-duplicates: %d video(s) left out, their files are not readable (%s)",
                    len(missing), ", ".join(m[:12] for m in missing[:5]))
    return out


def _seed(video_id: str) -> int:
    """A video's own random edit (the same on every run)."""
    digits = "".join(c for c in video_id if c in "0123456789abcdef")[:12]
    return int(digits, 16) if digits else sum(map(ord, video_id))


def fit_whitening(vectors: list[CopyVectors], whitening: FrameWhitening | None = None) -> FrameWhitening:
    """Fit ``whitening`` (default: :class:`FrameWhitening`) on copy vectors and their edited pairs."""
    whitening = whitening or FrameWhitening()
    if not vectors:
        return whitening.fit(np.zeros((0, 1), np.float32))
    pairs = [v.pairs for v in vectors if len(v.pairs)]
    return whitening.fit(np.concatenate([v.vectors for v in vectors]),
                         np.concatenate(pairs) if pairs else None)


def library_descriptors(lib: Any, whitening: FrameWhitening | None = None, fit: bool = True,
                        encoders: Any = None, config: CopyDescriptorConfig | None = None,
                        progress: bool = False) -> tuple[list[VideoDescriptors], FrameWhitening]:
    """Whitened copy descriptors of every video of ``lib`` (see :func:`library_copy_vectors`).

    Args:
        lib: the library.
        whitening: a fitted model to use; default: fit one on the library's vectors.
        fit: fit ``whitening`` on this library (ignored when ``whitening`` is given and fitted).
        encoders: as in :func:`library_copy_vectors`.
        config: as in :func:`library_copy_vectors`.
        progress: as in :func:`library_copy_vectors`.
    """
    seqs = library_copy_vectors(lib, encoders, config, progress)
    if whitening is None or (fit and whitening.mean_ is None):
        whitening = fit_whitening(list(seqs.values()), whitening)
    return ([VideoDescriptors(vid, whitening.transform(v.vectors), v.times) for vid, v in seqs.items()],
            whitening)


def match(a: VideoDescriptors, b: VideoDescriptors, step: float = 1.0) -> dict[str, Any]:
    """Score and matching segments of two videos."""
    al = align(a.descriptors, b.descriptors)
    seg_a, seg_b = al.segments(a.times, b.times, step)
    return {"a": a.id, "b": b.id, "score": round(al.score, 4), "segment_a": seg_a, "segment_b": seg_b,
            "matched_frames": len(al.pairs)}


def find_duplicates(lib: Any, threshold: float = DEFAULT_THRESHOLD, candidates: int = 10,
                    descriptors: list[VideoDescriptors] | None = None, encoders: Any = None,
                    progress: bool = False) -> list[dict[str, Any]]:
    """Groups of near-duplicate videos in ``lib``.

    Args:
        lib: the library (videos need the ``frames`` feature).
        threshold: alignment score from which two videos count as copies.
        candidates: nearest videos (by video-level descriptor) aligned per video.
        descriptors: precomputed descriptors (default: :func:`library_descriptors`).
        encoders: the frame encoder's bank for :func:`library_descriptors` (default: the real one).
        progress: draw a bar while videos are described for the first time.

    Returns:
        Groups, largest first: ``{"videos": [ids], "pairs": [{a, b, score, segment_a, segment_b}]}``;
        a group is a connected set of pairs scoring at least ``threshold``.
    """
    from vidlens.index import FaissIndex

    if descriptors is None:
        descriptors, _ = library_descriptors(lib, encoders=encoders, progress=progress)
    if len(descriptors) < 2:
        return []
    step = 1.0
    dim = descriptors[0].descriptors.shape[1]
    index = FaissIndex(dim)
    index.upsert([d.id for d in descriptors], np.stack([d.global_descriptor for d in descriptors]))
    by_id = {d.id: d for d in descriptors}
    hits = index.search(np.stack([d.global_descriptor for d in descriptors]), k=min(candidates + 1, len(descriptors)))
    seen: set[tuple[str, str]] = set()
    pairs = []
    for d, row in zip(descriptors, hits, strict=True):
        for h in row:
            if h.id == d.id:
                continue
            key = (min(d.id, h.id), max(d.id, h.id))
            if key in seen:
                continue
            seen.add(key)
            m = match(by_id[key[0]], by_id[key[1]], step)
            if m["score"] >= threshold:
                pairs.append(m)
    return _groups(pairs)


def _groups(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for p in pairs:
        parent[root(p["a"])] = root(p["b"])
    groups: dict[str, dict[str, Any]] = {}
    for p in sorted(pairs, key=lambda p: -p["score"]):
        g = groups.setdefault(root(p["a"]), {"videos": set(), "pairs": []})
        g["videos"].update((p["a"], p["b"]))
        g["pairs"].append(p)
    out = [{"videos": sorted(g["videos"]), "pairs": g["pairs"],
            "score": max(p["score"] for p in g["pairs"])} for g in groups.values()]
    return sorted(out, key=lambda g: (-len(g["videos"]), -g["score"]))
