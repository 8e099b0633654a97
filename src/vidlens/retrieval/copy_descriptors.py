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
   that heavy re-encoding, downscaling and blurring destroy is gone from the original too. With
   ``grid`` 2 the embedding is the encoder's feature map averaged over 2 × 2 cells rather than over the
   whole picture: the same people in other places — the next seconds of one fixed camera — then no
   longer look like a copy;
4. the embeddings of each second are averaged into one vector (when ``fps`` > 1): at most one
   descriptor per second, as the Meta VSC 2022 budget allows.
5. a few frames of each video (``augment_frames``) are also embedded after a random copy-style edit of
   the whole clip (:func:`augment_clip`: heavy JPEG, downscaling, a crop, black bars, opaque boxes, or
   two of these). The pairs (frame, edited frame) tell
   :class:`~vidlens.retrieval.dedup.FrameWhitening` which directions of the descriptor space such
   edits move, so that it can leave them out — the invariance a copy detector otherwise learns by
   training, here from the library itself and without labels.

The per-second vectors and the pairs (encoder space; grid features randomly projected to
``grid_dim``) are cached in the library (``LIBRARY/dedup/``, float16) by video id — ids are content
hashes, so a cached entry never goes stale — together with the encoder and the parameters that made
them; :class:`~vidlens.retrieval.dedup.FrameWhitening` turns them into short descriptors.
"""

from __future__ import annotations

import functools
import hashlib
import io
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
        grid: 1 — the encoder's globally pooled embedding; 2 — its features over 2 × 2 cells (needs a
            frame encoder with ``encode_grid``; others fall back to 1, with the cache keyed apart).
        grid_dim: the cells' features (4 × 1280 for EfficientNet-Lite0) are reduced to this many by a
            fixed random projection before they are cached (0: kept whole). Random projections keep
            inner products (Johnson–Lindenstrauss); 2048 scored as the whole 5120 on the dev copies,
            1024 and 512 lower.
        augment_frames: frames per video also embedded after a random copy-style edit (0: none; the
            whitening then only decorrelates).
    """

    fps: float = 1.0
    max_frames: int = 512
    max_side: int = 320
    centre: float = 0.6
    detail: int = 64
    dark: float = 32.0
    border_share: float = 0.7
    max_border: float = 0.35
    grid: int = 2
    grid_dim: int = 2048
    augment_frames: int = 8

    def __post_init__(self) -> None:
        if self.grid not in (1, 2):
            raise ValueError(f"grid must be 1 or 2, got {self.grid}")
        if self.augment_frames < 0 or self.fps <= 0 or self.grid_dim < 0:
            raise ValueError("augment_frames and grid_dim must be >= 0 and fps > 0")

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


AUGMENTATIONS = ("jpeg", "scale", "crop", "bars", "boxes", "crop+jpeg", "bars+boxes", "scale+boxes")


def augment_clip(frames: np.ndarray, rng: np.random.Generator) -> tuple[str, list[np.ndarray]]:
    """One random copy-style edit, the same for every frame of a clip (as a re-upload edits a video).

    Edits (parameters drawn from ``rng``): JPEG at quality 10–40; downscaling to 30–70 %; a crop
    keeping 65–90 % of each side anywhere in the picture; black bars of 10–30 % above and below or left
    and right; one or two opaque boxes of random colour (a logo, a caption band); or two of these.

    Returns:
        The edit's name and the edited ``uint8`` frames (their size may differ from the input's).
    """
    from PIL import Image, ImageDraw

    kind = str(rng.choice(AUGMENTATIONS))
    quality = int(rng.integers(10, 41))
    scale = float(rng.uniform(0.3, 0.7))
    keep = float(rng.uniform(0.65, 0.9))
    y0, x0 = (float(v) for v in rng.uniform(0.0, 1.0 - keep, 2))
    bar, rows = float(rng.uniform(0.1, 0.3)), bool(rng.random() < 0.7)
    boxes = [(*rng.uniform((0, 0, 0.1, 0.06), (0.8, 0.85, 0.35, 0.18)), tuple(int(c) for c in rng.integers(0, 256, 3)))
             for _ in range(int(rng.integers(1, 3)))]
    out = []
    for frame in np.asarray(frames):
        img = Image.fromarray(frame)
        h, w = frame.shape[:2]
        if "crop" in kind:
            img = img.crop((int(x0 * w), int(y0 * h), max(int(x0 * w) + 1, int((x0 + keep) * w)),
                            max(int(y0 * h) + 1, int((y0 + keep) * h))))
        if "scale" in kind:
            img = img.resize((max(8, round(img.width * scale)), max(8, round(img.height * scale))),
                             Image.Resampling.BILINEAR)
        if "bars" in kind:
            size = (img.width, round(img.height * (1 + bar))) if rows else (round(img.width * (1 + bar)), img.height)
            canvas = Image.new("RGB", size, (0, 0, 0))
            canvas.paste(img, ((size[0] - img.width) // 2, (size[1] - img.height) // 2))
            img = canvas
        if "boxes" in kind:
            draw = ImageDraw.Draw(img)
            for x, y, bw, bh, colour in boxes:
                draw.rectangle([x * img.width, y * img.height, (x + bw) * img.width, (y + bh) * img.height],
                               fill=colour)
        buf = io.BytesIO()  # every copy is re-encoded; "jpeg" re-encodes hard
        img.save(buf, "JPEG", quality=quality if "jpeg" in kind else 75)
        out.append(np.asarray(Image.open(buf).convert("RGB")))
    return kind, out


@dataclass
class CopyVectors:
    """What copy detection keeps of one video (encoder space, not yet whitened; float16 when it comes
    from the library's cache).

    Attributes:
        vectors: ``(T, D)`` one vector per second.
        times: ``(T,)`` the start second of each.
        pairs: ``(K, 2, D)`` frames and the same frames after a random copy-style edit (may be empty).
    """

    vectors: np.ndarray
    times: np.ndarray
    pairs: np.ndarray


def video_copy_vectors(path: str | Path, encode: Callable[[np.ndarray], np.ndarray],
                       config: CopyDescriptorConfig | None = None, seed: int = 0) -> CopyVectors:
    """Per-second copy-detection vectors of one video file, and its edited-frame pairs.

    Args:
        path: the video file.
        encode: the frame encoder, ``uint8 (N, S, S, 3)`` → ``(N, D)``.
        config: sampling and cutting parameters.
        seed: draws the copy-style edit (the library passes one derived from the video id).

    Raises:
        MediaError: the file cannot be decoded.
    """
    from vidlens.media import sample_frames

    cfg = config or CopyDescriptorConfig()
    sampled = sample_frames(path, fps=cfg.fps, max_frames=cfg.max_frames, max_side=cfg.max_side)
    return frames_copy_vectors(sampled.frames, sampled.times, encode, cfg, seed)


def _embed_frames(frames: np.ndarray, encode: Callable[[np.ndarray], np.ndarray], cfg: CopyDescriptorConfig
                  ) -> np.ndarray:
    """``(N, D)``: each frame's views (inside the clip's black borders) embedded and averaged."""
    if len(frames) == 0:
        return np.zeros((0, 0), np.float32)
    box = content_box(frames, cfg.dark, cfg.border_share, cfg.max_border)
    n_views = 2 if cfg.centre > 0 else 1
    per_frame = []
    for start in range(0, len(frames), _CHUNK):  # views of a few frames at a time: bounded memory
        views = descriptor_views(frames[start:start + _CHUNK], box, cfg.centre, cfg.detail)
        emb = np.asarray(encode(views), np.float32)
        per_frame.append(emb.reshape(-1, n_views, emb.shape[-1]).mean(axis=1))
    return np.concatenate(per_frame)


def frames_copy_vectors(frames: np.ndarray, times: np.ndarray, encode: Callable[[np.ndarray], np.ndarray],
                        config: CopyDescriptorConfig | None = None, seed: int = 0) -> CopyVectors:
    """:func:`video_copy_vectors` on frames already decoded (``uint8 (N, H, W, 3)``, times in seconds)."""
    cfg = config or CopyDescriptorConfig()
    frames = np.asarray(frames)
    per_frame = _embed_frames(frames, encode, cfg)
    if len(per_frame) == 0:
        empty = np.zeros((0, 0), np.float32)
        return CopyVectors(empty, np.zeros(0, np.float32), np.zeros((0, 2, 0), np.float32))
    vectors, secs = pool_per_second(per_frame, times)
    pairs = np.zeros((0, 2, per_frame.shape[1]), np.float32)
    if cfg.augment_frames > 0:
        pick = np.unique(np.linspace(0, len(frames) - 1, min(cfg.augment_frames, len(frames))).round().astype(int))
        _, edited = augment_clip(frames[pick], np.random.default_rng(seed))
        pairs = np.stack([per_frame[pick], _embed_frames(np.stack(edited), encode, cfg)], axis=1)
    return CopyVectors(vectors, secs, pairs)


class CopyVectorCache:
    """Copy vectors (:class:`CopyVectors`) of a library's videos, kept in ``LIBRARY/dedup/`` (one npz per
    encoder and parameter set, written whole after each batch of new videos) and in memory as float16
    (2 bytes a number: 4 kB a second of video at 2048-d).

    Args:
        folder: the cache folder.
        encoder_key: ``name@version`` of the frame encoder that makes the vectors.
        config: the parameters that make them.
    """

    def __init__(self, folder: str | Path, encoder_key: str, config: CopyDescriptorConfig):
        self.folder = Path(folder)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in encoder_key)
        self.path = self.folder / f"copy-{safe}-{config.key()}.npz"
        self.vectors: dict[str, CopyVectors] = {}
        if self.path.exists():
            try:
                with np.load(self.path, allow_pickle=False) as data:
                    ids = [str(x) for x in data["ids"]]
                    offsets, vecs, times = data["offsets"], data["vectors"], data["times"]
                    pair_offsets, pairs = data["pair_offsets"], data["pairs"]
                for i, vid in enumerate(ids):
                    a, b = int(offsets[i]), int(offsets[i + 1])
                    c, d = int(pair_offsets[i]), int(pair_offsets[i + 1])
                    self.vectors[vid] = CopyVectors(vecs[a:b], times[a:b], pairs[c:d])
            except (OSError, KeyError, ValueError) as exc:
                log.warning("copy-descriptor cache %s unreadable (%s): recomputing", self.path, exc)
                self.vectors = {}

    def __contains__(self, video_id: str) -> bool:
        return video_id in self.vectors

    def get(self, video_id: str) -> CopyVectors:
        """One video's vectors, times and edited-frame pairs (float16, as kept: no copy is made)."""
        return self.vectors[video_id]

    def put(self, video_id: str, vectors: CopyVectors) -> None:
        """Add one video (kept in memory until :meth:`save`)."""
        self.vectors[video_id] = CopyVectors(np.asarray(vectors.vectors, np.float16),
                                             np.asarray(vectors.times, np.float32),
                                             np.asarray(vectors.pairs, np.float16))

    def save(self) -> None:
        """Write the cache atomically."""
        self.folder.mkdir(parents=True, exist_ok=True)
        ids = sorted(self.vectors)
        entries = [self.vectors[i] for i in ids]
        dim = next((e.vectors.shape[1] for e in entries if e.vectors.ndim == 2 and e.vectors.size), 0)

        def stacked(arrays: list[np.ndarray], shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
            """The non-empty arrays end to end, and where each array starts (empty ones included)."""
            offsets = np.concatenate([[0], np.cumsum([len(a) for a in arrays])]).astype(np.int64)
            filled = [a for a in arrays if len(a)]
            return (np.concatenate(filled) if filled else np.zeros(shape, arrays[0].dtype if arrays else np.float16),
                    offsets)

        vecs, offsets = stacked([e.vectors for e in entries], (0, dim))
        times, _ = stacked([e.times for e in entries], (0,))
        pairs, pair_offsets = stacked([e.pairs for e in entries], (0, 2, dim))
        tmp = self.path.with_name(self.path.stem + ".tmp.npz")
        np.savez(tmp, ids=np.array(ids, dtype=str), offsets=offsets, vectors=vecs, times=times,
                 pair_offsets=pair_offsets, pairs=pairs)
        tmp.replace(self.path)


@functools.lru_cache(maxsize=4)
def random_projection(dim_in: int, dim_out: int, seed: int = 0) -> np.ndarray:
    """A fixed ``(dim_in, dim_out)`` Gaussian projection scaled by ``1/sqrt(dim_out)`` (inner products are
    kept in expectation)."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((dim_in, dim_out), dtype=np.float32) / np.sqrt(dim_out)).astype(np.float32)


def frame_encoder(bank: Any, config: CopyDescriptorConfig | None = None
                  ) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """The encode function and key of an ``EncoderBank``'s (or a stand-in's) frame encoder.

    With ``config.grid`` 2, its features over 2 × 2 cells when it has them (``bank.frame_grid``),
    projected to ``config.grid_dim``; a stand-in without them gives its pooled embedding, and the key
    says which was used.
    """
    cfg = config or CopyDescriptorConfig(grid=1)
    key = bank.key_of("frames")
    if cfg.grid == 2 and getattr(bank, "has_frame_grid", lambda: False)():
        def encode(views: np.ndarray) -> np.ndarray:
            cells = np.asarray(bank.frame_grid(views), np.float32)
            if 0 < cfg.grid_dim < cells.shape[1]:
                cells = cells @ random_projection(cells.shape[1], cfg.grid_dim)
            return cells

        return encode, f"{key}+grid2"
    return (lambda views: bank.frames(views)[0]), key


def as_dict(config: CopyDescriptorConfig) -> dict[str, Any]:
    """The parameters as a plain dict (for reports)."""
    return asdict(config)
