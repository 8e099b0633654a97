"""Feature extraction over a library: decode → encoders → stored features, resumable and idempotent.

Each feature of each video has a *key* (extractor name, version and parameters; for text vectors also a
hash of the input text). A run computes exactly the features whose stored key differs, so re-running is
a no-op, a changed title re-embeds only that title, and a new encoder version redoes only its feature.

Work is committed per video: its sequence files and a pooled-vector part are written (atomically)
first, then its rows in the DB, in one transaction. A run killed at any point loses nothing that was
committed and redoes at most the video it was working on. Decoding of the next videos runs in a
background thread while the encoders work on the current one (FFmpeg releases the GIL).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import Counter, defaultdict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select

from vidlens.config import VidlensConfig
from vidlens.errors import MediaError, VidlensError
from vidlens.features.encoding import EncoderBank
from vidlens.features.featureset import (
    SEQUENCE_FEATURES,
    TEXT_FIELDS,
    VECTOR_FEATURES,
    features_for,
)
from vidlens.media import cover_image, read_audio, sample_frames
from vidlens.store.db import MetadataStore
from vidlens.store.models import Extraction, Video
from vidlens.store.vectors import VectorStore

log = logging.getLogger(__name__)

OK, ABSENT, FAILED = "ok", "absent", "failed"


def _hash(obj: Any) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:12]


@dataclass
class FeatureOutcome:
    """What one feature of one video came to."""

    status: str
    key: str
    message: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    pooled: np.ndarray | None = None
    sequence: np.ndarray | None = None
    seconds: float = 0.0


@dataclass
class ExtractReport:
    """The outcome of one extraction run."""

    videos: int = 0
    counts: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    errors: list[dict[str, str]] = field(default_factory=list)
    wall_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary: counts and seconds per feature, errors."""
        return {
            "videos": self.videos,
            "wall_seconds": round(self.wall_seconds, 3),
            "features": {
                f: {**dict(c), "seconds": round(self.seconds.get(f, 0.0), 3)} for f, c in self.counts.items()
            },
            "decode_seconds": round(self.seconds.get("decode", 0.0), 3),
            "errors": self.errors,
        }


@dataclass
class _Decoded:
    frames: Any = None          # SampledFrames or None
    audio: np.ndarray | None = None
    cover: np.ndarray | None = None
    problems: dict[str, str] = field(default_factory=dict)  # input name -> reason
    seconds: float = 0.0


class Extractor:
    """Runs the encoders over a library's videos.

    Args:
        store: the metadata DB.
        vectors: the feature files.
        config: the library configuration (sampling rates, caps, batch sizes).
        thumbnails: folder for cover thumbnails (JPEG).
        modalities: which modalities to extract (default: ``config.extract.modalities``).
        force: recompute even features whose key is unchanged.
        encoders: an :class:`EncoderBank` to use (tests pass tiny ones); default loads the real ones.
    """

    def __init__(
        self,
        store: MetadataStore,
        vectors: VectorStore,
        config: VidlensConfig,
        thumbnails: os.PathLike | str | None = None,
        modalities: list[str] | None = None,
        force: bool = False,
        encoders: EncoderBank | None = None,
    ):
        self.store = store
        self.vectors = vectors
        self.config = config
        self.thumbnails = thumbnails
        self.features = features_for(modalities or config.extract.modalities)
        self.force = force
        self.encoders = encoders or EncoderBank(config)

    # -- keys -----------------------------------------------------------------------------------
    def _base_key(self, feature: str) -> str:
        m, x = self.config.media, self.config.extract
        if feature == "frames":
            params = {"fps": m.fps, "max": m.max_frames, "side": m.frame_max_side}
        elif feature == "cover":
            params = {"side": m.frame_max_side}
        elif feature == "audio":
            params = {"sr": m.audio_sample_rate, "max": m.max_audio_seconds}
        elif feature == "ocr":
            params = {"fps": m.fps, "max": m.max_frames, "side": m.frame_max_side, "ocr": x.ocr_max_frames}
        elif feature == "asr":
            params = {"sr": m.audio_sample_rate, "max": x.asr_max_seconds, "lang": x.asr_language}
        else:
            params = {}
        return f"{self.encoders.key_of(feature)}#{_hash(params)}"

    # -- planning ---------------------------------------------------------------------------------
    def plan(self, ids: list[str] | None = None) -> list[tuple[str, list[str]]]:
        """(video id, features to compute) for every video with work left, in id order.

        Text features are always re-checked because their key depends on their input text, which only
        the run itself knows.
        """
        stored_ids = {f: set(self.vectors.ids(f)) for f in VECTOR_FEATURES if f in self.features}
        keys = {f: self._base_key(f) for f in self.features if not f.startswith("text.")}
        plan: list[tuple[str, list[str]]] = []
        with self.store.session() as s:
            all_ids = ids if ids is not None else list(s.scalars(select(Video.id).order_by(Video.id)))
            rows: dict[str, dict[str, Extraction]] = defaultdict(dict)
            for chunk_start in range(0, len(all_ids), 500):
                chunk = all_ids[chunk_start:chunk_start + 500]
                for row in s.scalars(select(Extraction).where(Extraction.video_id.in_(chunk))):
                    rows[row.video_id][row.feature] = row
        for vid in all_ids:
            todo = []
            for f in self.features:
                row = rows[vid].get(f)
                if self.force or row is None or row.status == FAILED:
                    todo.append(f)
                elif f.startswith("text."):
                    todo.append(f)  # cheap to check: the key needs the current text
                elif row.key != keys[f]:
                    todo.append(f)
                elif row.status == OK and f in stored_ids and vid not in stored_ids[f]:
                    todo.append(f)  # its vector file was lost or found corrupt
            if todo:
                plan.append((vid, todo))
        return plan

    # -- decoding (background thread) -------------------------------------------------------------
    def _decode(self, video: dict[str, Any], todo: list[str]) -> _Decoded:
        t0 = time.perf_counter()
        out = _Decoded()
        path = _readable_path(video)
        m = self.config.media
        needs_frames = any(f in todo for f in ("frames", "ocr"))
        needs_audio = any(f in todo for f in ("audio", "asr"))
        if path is None:
            reason = "no readable file at any known path: " + ", ".join(video["paths"])
            out.problems.update(video=reason, audio=reason, cover=reason)
        else:
            if needs_frames:
                if not video["has_video"]:
                    out.problems["video"] = "no video track"
                else:
                    try:
                        out.frames = sample_frames(path, fps=m.fps, max_frames=m.max_frames,
                                                   max_side=m.frame_max_side)
                        if len(out.frames.times) == 0:
                            out.problems["video"] = "no decodable frames"
                    except MediaError as exc:
                        out.problems["video"] = exc.reason
            if needs_audio:
                if not video["has_audio"]:
                    out.problems["audio"] = "no audio track"
                else:
                    try:
                        out.audio = read_audio(path, sample_rate=m.audio_sample_rate,
                                               max_seconds=m.max_audio_seconds)
                    except MediaError as exc:
                        out.problems["audio"] = exc.reason
            if "cover" in todo:
                cover_file = video.get("cover_file")
                if not video["has_video"] and not cover_file:
                    out.problems["cover"] = "no video track and no cover file"
                else:
                    try:
                        out.cover = cover_image(path, cover_file=cover_file, max_side=m.frame_max_side)
                    except MediaError as exc:
                        out.problems["cover"] = exc.reason
        out.seconds = time.perf_counter() - t0
        return out

    # -- one video --------------------------------------------------------------------------------
    def _compute(self, video: dict[str, Any], todo: list[str], dec: _Decoded,
                 stored: dict[str, Extraction]) -> dict[str, FeatureOutcome]:
        outcomes: dict[str, FeatureOutcome] = {}

        def run(feature: str, fn) -> None:
            key = self._base_key(feature)
            t0 = time.perf_counter()
            try:
                outcome = fn(key)
            except VidlensError as exc:
                outcome = FeatureOutcome(FAILED, key, str(exc))
            except Exception as exc:
                log.exception("extracting %s of %s", feature, video["id"])
                outcome = FeatureOutcome(FAILED, key, f"unexpected {type(exc).__name__}: {exc}")
            outcome.seconds = time.perf_counter() - t0
            outcomes[feature] = outcome

        if "frames" in todo:
            run("frames", lambda key: self._frames(key, dec))
        if "cover" in todo:
            run("cover", lambda key: self._cover(key, video["id"], dec))
        if "audio" in todo:
            run("audio", lambda key: self._audio(key, dec))
        if "asr" in todo:
            run("asr", lambda key: self._asr(key, dec))
        if "ocr" in todo:
            run("ocr", lambda key: self._ocr(key, dec))
        text_todo = [f for f in todo if f.startswith("text.")]
        if text_todo:
            texts = self._texts(video, outcomes, stored)
            for f in text_todo:
                field_name = f.split(".", 1)[1]
                text = texts.get(field_name, "")
                key = f"{self.encoders.key_of(f)}#{_hash(text)}"
                row = stored.get(f)
                if not self.force and row is not None and row.key == key and row.status != FAILED:
                    continue
                run(f, lambda _k, text=text, key=key: self._text(key, text))
        return outcomes

    def _frames(self, key: str, dec: _Decoded) -> FeatureOutcome:
        if dec.frames is None or len(dec.frames.times) == 0:
            return FeatureOutcome(ABSENT, key, dec.problems.get("video", "no frames"))
        emb, concepts = self.encoders.frames(dec.frames.frames)
        return FeatureOutcome(
            OK, key,
            result={"n_frames": len(dec.frames.times),
                    "times": [round(float(t), 3) for t in dec.frames.times],
                    "concepts": concepts},
            pooled=emb.mean(axis=0), sequence=emb,
        )

    def _cover(self, key: str, video_id: str, dec: _Decoded) -> FeatureOutcome:
        if dec.cover is None:
            return FeatureOutcome(ABSENT, key, dec.problems.get("cover", "no cover"))
        emb, concepts = self.encoders.frames(dec.cover[None])
        result: dict[str, Any] = {"concepts": concepts[:5], "size": list(dec.cover.shape[:2])}
        if self.thumbnails is not None:
            result["thumbnail"] = _save_thumbnail(dec.cover, self.thumbnails, video_id)
        return FeatureOutcome(OK, key, result=result, pooled=emb[0])

    def _audio(self, key: str, dec: _Decoded) -> FeatureOutcome:
        if dec.audio is None:
            return FeatureOutcome(ABSENT, key, dec.problems.get("audio", "no audio"))
        seq = self.encoders.audio(dec.audio)
        if len(seq) == 0:
            return FeatureOutcome(ABSENT, key, "audio track is empty")
        return FeatureOutcome(OK, key, result={"n_blocks": len(seq)}, pooled=seq.mean(axis=0), sequence=seq)

    def _asr(self, key: str, dec: _Decoded) -> FeatureOutcome:
        if dec.audio is None:
            return FeatureOutcome(ABSENT, key, dec.problems.get("audio", "no audio"))
        max_n = int(self.config.extract.asr_max_seconds * self.config.media.audio_sample_rate)
        result = self.encoders.asr(dec.audio[:max_n], language=self.config.extract.asr_language)
        return FeatureOutcome(OK, key, result=result)

    def _ocr(self, key: str, dec: _Decoded) -> FeatureOutcome:
        if dec.frames is None or len(dec.frames.times) == 0:
            return FeatureOutcome(ABSENT, key, dec.problems.get("video", "no frames"))
        result = self.encoders.ocr(dec.frames.frames, dec.frames.times, self.config.extract.ocr_max_frames)
        return FeatureOutcome(OK, key, result=result)

    def _text(self, key: str, text: str) -> FeatureOutcome:
        if not text.strip():
            return FeatureOutcome(ABSENT, key, "empty text")
        vec = self.encoders.text([text])[0]
        return FeatureOutcome(OK, key, result={"chars": len(text)}, pooled=vec)

    def _texts(self, video: dict[str, Any], outcomes: dict[str, FeatureOutcome],
               stored: dict[str, Extraction]) -> dict[str, str]:
        """The text fields of a video, taking OCR/ASR/concepts from this run or from the DB."""

        def result_of(feature: str) -> dict[str, Any] | None:
            if feature in outcomes:
                o = outcomes[feature]
                return o.result if o.status == OK else None
            row = stored.get(feature)
            return row.result if row is not None and row.status == OK else None

        return video_texts(video, result_of("ocr"), result_of("asr"), result_of("frames"))

    # -- the run ----------------------------------------------------------------------------------
    def run(self, ids: list[str] | None = None, progress=None) -> ExtractReport:
        """Extract the missing features of ``ids`` (default: every video). Never stops on one bad video.

        Args:
            ids: videos to work on.
            progress: optional callable ``(n, note)`` called after each video; gets ``total`` via
                :meth:`plan` first if the caller wants a bar.
        """
        t_start = time.perf_counter()
        report = ExtractReport()
        plan = self.plan(ids)
        for f in self.features:
            if f in VECTOR_FEATURES and len(self.vectors.parts(f)) > 32:
                self.vectors.compact(f)
        if not plan:
            report.wall_seconds = time.perf_counter() - t_start
            return report
        videos = {v["id"]: v for v in self._video_rows([vid for vid, _ in plan])}
        window: deque[tuple[str, list[str], Future[_Decoded]]] = deque()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vidlens-decode") as pool:
            it = iter(plan)

            def fill() -> None:
                while len(window) < 2:
                    nxt = next(it, None)
                    if nxt is None:
                        return
                    vid, todo = nxt
                    window.append((vid, todo, pool.submit(self._decode, videos[vid], todo)))

            fill()
            while window:
                vid, todo, fut = window.popleft()
                fill()
                dec = fut.result()
                report.seconds["decode"] += dec.seconds
                with self.store.session() as s:
                    stored = {r.feature: r for r in s.scalars(select(Extraction).where(Extraction.video_id == vid))}
                outcomes = self._compute(videos[vid], todo, dec, stored)
                self._commit(vid, outcomes)
                report.videos += 1
                for f, o in outcomes.items():
                    report.counts[f][o.status] += 1
                    report.seconds[f] += o.seconds
                    if o.status == FAILED:
                        report.errors.append({"video_id": vid, "feature": f, "message": o.message or ""})
                if progress is not None:
                    failed = sum(o.status == FAILED for o in outcomes.values())
                    progress(1, f"{vid[:10]}" + (f" ({failed} failed)" if failed else ""))
        for f in self.features:
            if f in VECTOR_FEATURES:
                self.vectors.compact(f)
        report.wall_seconds = time.perf_counter() - t_start
        return report

    def _video_rows(self, ids: list[str]) -> list[dict[str, Any]]:
        out = []
        with self.store.session() as s:
            for start in range(0, len(ids), 500):
                for v in s.scalars(select(Video).where(Video.id.in_(ids[start:start + 500]))):
                    d = v.to_dict()
                    d["paths_raw"] = [p.path_raw for p in v.paths]
                    out.append(d)
        return out

    def _commit(self, video_id: str, outcomes: dict[str, FeatureOutcome]) -> None:
        """Files first (atomic), then the DB rows of this video in one transaction."""
        for f, o in outcomes.items():
            if o.status == OK and o.sequence is not None and f in SEQUENCE_FEATURES:
                self.vectors.write_sequence(f, video_id, o.sequence)
            if o.status == OK and o.pooled is not None:
                self.vectors.write_pooled(f, [(video_id, o.key, o.pooled)])
        with self.store.session() as s:
            for f, o in outcomes.items():
                row = s.get(Extraction, (video_id, f))
                if row is None:
                    row = Extraction(video_id=video_id, feature=f)
                    s.add(row)
                row.key, row.status, row.message = o.key, o.status, o.message
                row.result, row.seconds = o.result, o.seconds
                if o.status != FAILED:
                    self.store.clear_error(s, f"extract:{f}", video_id)
            s.commit()
        for f, o in outcomes.items():
            if o.status == FAILED:
                self.store.record_error(f"extract:{f}", video_id, o.message or "failed", video_id=video_id)


def video_texts(video: dict[str, Any], ocr: dict[str, Any] | None, asr: dict[str, Any] | None,
                frames: dict[str, Any] | None) -> dict[str, str]:
    """The text fields of a video, one string each (empty when there is none)."""
    product = " ".join([*(video.get("product_titles") or []), *(video.get("product_categories") or [])])
    concepts = ""
    if frames and frames.get("concepts"):
        concepts = ", ".join(c["name"] for c in frames["concepts"][:5])
    texts = {
        "title": video.get("title") or "",
        "summary": video.get("summary") or "",
        "product": product,
        "ocr": (ocr or {}).get("text", ""),
        "asr": (asr or {}).get("text", ""),
        "concepts": concepts,
    }
    assert set(texts) == set(TEXT_FIELDS)
    return texts


def _readable_path(video: dict[str, Any]) -> str | None:
    for raw in video.get("paths_raw", []):
        path = os.fsdecode(raw)
        if os.path.isfile(path):
            return path
    return None


def _save_thumbnail(rgb: np.ndarray, folder: os.PathLike | str, video_id: str) -> str:
    from PIL import Image

    os.makedirs(folder, exist_ok=True)
    img = Image.fromarray(rgb)
    img.thumbnail((320, 320))
    path = os.path.join(folder, f"{video_id}.jpg")
    tmp = path + ".tmp"
    img.save(tmp, format="JPEG", quality=85)
    os.replace(tmp, path)
    return os.path.basename(path)
