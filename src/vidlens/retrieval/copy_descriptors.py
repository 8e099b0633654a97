"""Copy-detection frame descriptors: what near-duplicate search compares (see :mod:`vidlens.retrieval.dedup`).

The stored ``frames`` feature is made for classification: one embedding per second of the frame's
centre square. A copy that was letterboxed, cropped or re-framed shows that square differently, so
near-duplicate search computes its own descriptors from the video file:

1. frames are sampled at ``fps`` per second (1 by default: 4, pooled, measured no better);
2. black borders (letterbox, pillarbox, padding) are found once per video — rows and columns that stay
   dark in every sampled frame, as ffmpeg's ``cropdetect`` does — and cut off;
3. each frame gives two views of what is left, the whole picture squashed to a square and its centre
   (``centre`` of each side), which the frame encoder embeds; their mean is the frame's embedding, so a
   copy cropped to its centre still shares half its views' content with the original. Views are
   shrunk to ``detail`` pixels a side and enlarged again before the encoder sees them: the fine texture
   that heavy re-encoding, downscaling and blurring destroy is gone from the original too;
4. the embeddings of each second are averaged into one vector (when ``fps`` > 1): at most one
   descriptor per second, as the Meta VSC 2022 budget allows.

The per-second vectors (raw encoder space) are cached in the library (``LIBRARY/dedup/``) by video id —
ids are content hashes, so a cached entry never goes stale — together with the encoder and the
parameters that made them; :class:`~vidlens.retrieval.dedup.FrameWhitening` turns them into short
descriptors.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

VIEW_SIZE = 256  # side of the square views handed to the frame encoder
_CHUNK = 32  # frames whose views are made and encoded together


@dataclass(frozen=True)
class CopyDescriptorConfig:
    """How copy descriptors are sampled and cut.

    Args:
        fps: frames decoded per second of video (pooled into one vector per second).
        max_frames: cap on decoded frames per video (long videos are then sampled evenly).
        max_side: frames are decoded with their longer side at most this (pixels).
        centre: side of the centre view as a fraction of the picture's side (0 disables the view).
        detail: views keep this many pixels a side of detail (0: all of the encoder's input size).
        dark: a pixel at most this bright (0–255, in every sampled frame) may be a border.
        border_share: a row or column is border when at least this share of its pixels may be.
        max_border: at most this share of each side is cut as border.
    """

    fps: float = 1.0
    max_frames: int = 512
    max_side: int = 320
    centre: float = 0.6
    detail: int = 64
    dark: float = 32.0
    border_share: float = 0.7
    max_border: float = 0.35

    def key(self) -> str:
        """A short stable hash of the parameters (part of the cache key)."""
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]


def content_box(frames: np.ndarray, dark: float = 32.0, border_share: float = 0.7,
                max_border: float = 0.35) -> tuple[int, int, int, int]:
    """The picture inside black borders, shared by all ``frames``.

    A pixel may be border when it is dark in every frame; a row (column) is border when most of its
    pixels may be — "most", not "all", so that a logo stamped over a letterbox bar does not hide the
    bar. Borders are peeled from each side inwards, at most ``max_border`` of the side.

    Args:
        frames: ``uint8 (N, H, W, 3)`` RGB frames of one video.
        dark: brightness (0–255) below which a pixel may be border.
        border_share: share of a row's (column's) pixels that must be border candidates.
        max_border: the most of each side that can be cut.

    Returns:
        ``(top, bottom, left, right)``: the picture is ``frames[:, top:bottom, left:right]``.
    """
    frames = np.asarray(frames)
    n, h, w = frames.shape[:3]
    if n == 0 or h < 4 or w < 4:
        return 0, h, 0, w
    candidate = frames.max(axis=(0, 3)) <= dark  # (H, W): dark in every frame and channel
    rows = candidate.mean(axis=1) >= border_share
    cols = candidate.mean(axis=0) >= border_share
    top = _run(rows, int(h * max_border))
    bottom = h - _run(rows[::-1], int(h * max_border))
    left = _run(cols, int(w * max_border))
    right = w - _run(cols[::-1], int(w * max_border))
    return top, bottom, left, right


def _run(flags: np.ndarray, limit: int) -> int:
    """Length of the leading run of True in ``flags``, capped at ``limit``."""
    off = np.flatnonzero(~flags[:limit])
    return int(off[0]) if len(off) else limit


def _square(img: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0))


def descriptor_views(frames: np.ndarray, box: tuple[int, int, int, int], centre: float = 0.6,
                     detail: int = 64, size: int = VIEW_SIZE) -> np.ndarray:
    """The square views the encoder embeds for each frame: the whole picture inside ``box``, then
    (when ``centre`` > 0) its centre ``centre`` × ``centre``; each shrunk to ``detail`` pixels a side
    (when 0 < ``detail`` < ``size``) and enlarged to ``size``.

    Returns:
        ``uint8 (N · V, size, size, 3)``, the V views of each frame next to each other.
    """
    top, bottom, left, right = box

    def view(img: np.ndarray) -> np.ndarray:
        if 0 < detail < size:
            return _square(_square(np.ascontiguousarray(img), detail), size)
        return _square(np.ascontiguousarray(img), size)

    views = []
    for frame in np.asarray(frames):
        pic = frame[top:bottom, left:right]
        views.append(view(pic))
        if centre > 0:
            h, w = pic.shape[:2]
            ch, cw = max(1, round(h * centre)), max(1, round(w * centre))
            y, x = (h - ch) // 2, (w - cw) // 2
            views.append(view(pic[y:y + ch, x:x + cw]))
    return np.stack(views) if views else np.zeros((0, size, size, 3), np.uint8)


def pool_per_second(embeddings: np.ndarray, times: np.ndarray, step: float = 1.0
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Average the rows of each ``step``-second window: ``(N, D), (N,)`` → ``(T, D), (T,)`` with T ≤
    the video's length in steps; each output time is the start of its window."""
    times = np.asarray(times, np.float64)
    if len(times) == 0:
        return np.zeros((0, embeddings.shape[1]), np.float32), np.zeros(0, np.float32)
    slot = np.floor(times / step + 1e-6).astype(int)
    keys = np.unique(slot)
    pooled = np.stack([embeddings[slot == k].mean(axis=0) for k in keys]).astype(np.float32)
    return pooled, (keys * step).astype(np.float32)


def video_copy_vectors(path: str | Path, encode: Callable[[np.ndarray], np.ndarray],
                       config: CopyDescriptorConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-second copy-detection vectors of one video file (encoder space, not yet whitened).

    Args:
        path: the video file.
        encode: the frame encoder, ``uint8 (N, S, S, 3)`` → ``(N, D)``.
        config: sampling and cutting parameters.

    Returns:
        ``(T, D)`` vectors and the ``(T,)`` start second of each.

    Raises:
        MediaError: the file cannot be decoded.
    """
    from vidlens.media import sample_frames

    cfg = config or CopyDescriptorConfig()
    sampled = sample_frames(path, fps=cfg.fps, max_frames=cfg.max_frames, max_side=cfg.max_side)
    return frames_copy_vectors(sampled.frames, sampled.times, encode, cfg)


def frames_copy_vectors(frames: np.ndarray, times: np.ndarray, encode: Callable[[np.ndarray], np.ndarray],
                        config: CopyDescriptorConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`video_copy_vectors` on frames already decoded (``uint8 (N, H, W, 3)``, times in seconds)."""
    cfg = config or CopyDescriptorConfig()
    box = content_box(frames, cfg.dark, cfg.border_share, cfg.max_border)
    n_views = 2 if cfg.centre > 0 else 1
    per_frame = []
    for start in range(0, len(frames), _CHUNK):  # views of a few frames at a time: bounded memory
        views = descriptor_views(frames[start:start + _CHUNK], box, cfg.centre, cfg.detail)
        emb = np.asarray(encode(views), np.float32)
        per_frame.append(emb.reshape(-1, n_views, emb.shape[-1]).mean(axis=1))
    if not per_frame:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.float32)
    return pool_per_second(np.concatenate(per_frame), times)


class CopyVectorCache:
    """Per-second copy vectors of a library's videos, kept in ``LIBRARY/dedup/`` (one npz per encoder
    and parameter set, written whole after each batch of new videos).

    Args:
        folder: the cache folder.
        encoder_key: ``name@version`` of the frame encoder that makes the vectors.
        config: the parameters that make them.
    """

    def __init__(self, folder: str | Path, encoder_key: str, config: CopyDescriptorConfig):
        self.folder = Path(folder)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in encoder_key)
        self.path = self.folder / f"copy-{safe}-{config.key()}.npz"
        self.vectors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if self.path.exists():
            try:
                with np.load(self.path, allow_pickle=False) as data:
                    ids = [str(x) for x in data["ids"]]
                    offsets, vecs, times = data["offsets"], data["vectors"], data["times"]
                for i, vid in enumerate(ids):
                    a, b = int(offsets[i]), int(offsets[i + 1])
                    self.vectors[vid] = (vecs[a:b], times[a:b])
            except (OSError, KeyError, ValueError) as exc:
                log.warning("copy-descriptor cache %s unreadable (%s): recomputing", self.path, exc)
                self.vectors = {}

    def __contains__(self, video_id: str) -> bool:
        return video_id in self.vectors

    def get(self, video_id: str) -> tuple[np.ndarray, np.ndarray]:
        """``(T, D)`` vectors and ``(T,)`` times of one video."""
        return self.vectors[video_id]

    def put(self, video_id: str, vectors: np.ndarray, times: np.ndarray) -> None:
        """Add one video (kept in memory until :meth:`save`)."""
        self.vectors[video_id] = (np.asarray(vectors, np.float32), np.asarray(times, np.float32))

    def save(self) -> None:
        """Write the cache atomically."""
        self.folder.mkdir(parents=True, exist_ok=True)
        ids = sorted(self.vectors)
        lengths = [len(self.vectors[i][0]) for i in ids]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        dim = next((v.shape[1] for v, _ in self.vectors.values() if v.ndim == 2), 0)
        vecs = np.concatenate([self.vectors[i][0] for i in ids]) if ids else np.zeros((0, dim), np.float32)
        times = np.concatenate([self.vectors[i][1] for i in ids]) if ids else np.zeros(0, np.float32)
        tmp = self.path.with_name(self.path.stem + ".tmp.npz")
        np.savez(tmp, ids=np.array(ids, dtype=str), offsets=offsets, vectors=vecs, times=times)
        tmp.replace(self.path)


def frame_encoder(bank: Any) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """The encode function and key of an ``EncoderBank``'s (or a stand-in's) frame encoder."""
    return (lambda views: bank.frames(views)[0]), bank.key_of("frames")


def as_dict(config: CopyDescriptorConfig) -> dict[str, Any]:
    """The parameters as a plain dict (for reports)."""
    return asdict(config)
