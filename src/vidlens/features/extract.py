"""Feature extraction over a library: decode → encoders → stored features, resumable and idempotent.

Each feature of each video has a *key* (extractor name, version and parameters; for text vectors also a
hash of the input text). A run computes exactly the features whose stored key differs, so re-running is
a no-op, a changed title re-embeds only that title, and a new encoder version redoes only its feature.

A run has three steps. :meth:`Extractor.plan` lists the videos with work left; :meth:`Extractor.compute`
turns them into :class:`VideoOutcome` objects (decode → encoders; it reads the library and writes
nothing); :meth:`Extractor.commit` stores the outcomes of a group of videos. An engine
(:mod:`vidlens.engines`) runs the middle step, as :class:`ExtractTask`: in this process by default, or
in Ray workers that load the encoders once. Storing stays in the calling process, so there is one
writer to the metadata DB (SQLite allows one at a time, and a single writer needs no coordination
between workers) and every video is written once, under the same keys whichever engine computed it.

Work is committed per group of videos as the engine hands them back (one video at a time in this
process; a worker's whole batch on Ray): their sequence files and one pooled-vector part per feature
are written (atomically) first, then their rows in the DB, in one transaction. A run killed at any
point loses nothing that was committed and redoes at most the group it was working on. Decoding of
the next videos runs in a background thread while the encoders work on the current one (FFmpeg
releases the GIL).

A run that cannot store (the disk is full, the DB is gone) stops with a :class:`~vidlens.errors.StorageError`
naming the problem; what was committed before stays, and a re-run once the problem is fixed does the rest.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import logging
import os
import time
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError

from vidlens.config import VidlensConfig
from vidlens.engines.base import Engine, Task
from vidlens.engines.local import LocalEngine
from vidlens.errors import MediaError, StorageError, VidlensError
from vidlens.features.encoding import EncoderBank
from vidlens.features.featureset import (
    SEQUENCE_FEATURES,
    TEXT_FIELDS,
    VECTOR_FEATURES,
    features_for,
)
from vidlens.media import cover_image, read_audio, sample_frames
from vidlens.store.db import MetadataStore
from vidlens.store.models import Extraction, ItemError, Video
from vidlens.store.vectors import VectorStore

log = logging.getLogger(__name__)

OK, ABSENT, FAILED = "ok", "absent", "failed"

# The feature whose result a text feature is made from, where that is not the video's own row.
_TEXT_SOURCE = {"text.ocr": "ocr", "text.asr": "asr", "text.concepts": "frames"}


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
    thumbnail: bytes | None = None  # JPEG of the cover, written by commit


@dataclass
class VideoOutcome:
    """What computing one video's missing features came to: made by a worker, stored by the driver."""

    video_id: str
    features: dict[str, FeatureOutcome] = field(default_factory=dict)
    decode_seconds: float = 0.0


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

    Example::

        extractor = Extractor(store, vectors, config)
        report = extractor.run()                          # in this process
        report = extractor.run(engine=RayEngine(workers=2))  # the same work on Ray
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
        self.modalities = list(modalities or config.extract.modalities)
        self.features = features_for(self.modalities)
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

    def _text_key(self, feature: str, text: str) -> str:
        return f"{self.encoders.key_of(feature)}#{_hash(text)}"

    # -- planning ---------------------------------------------------------------------------------
    def plan(self, ids: list[str] | None = None) -> list[tuple[str, list[str]]]:
        """(video id, features to compute) for every video with work left, in id order.

        A text feature's key includes a hash of its text. The text comes from the video's row and its
        stored OCR/ASR/concept results, so it is known here, except where this run recomputes the OCR,
        ASR or frames it is made from: such a text feature is planned and :meth:`compute` decides once
        the new text is known. A re-run with nothing changed therefore plans nothing.
        """
        # The key of each video's stored vector: a vector that is gone (its part damaged and moved aside) or
        # that is not the one the row describes (an older part left after the newer one was moved aside)
        # means the feature is redone.
        stored_keys = {f: self.vectors.keys(f) for f in VECTOR_FEATURES if f in self.features}
        keys = {f: self._base_key(f) for f in self.features if not f.startswith("text.")}
        wants_text = any(f.startswith("text.") for f in self.features)
        plan: list[tuple[str, list[str]]] = []
        with self.store.session() as s:
            all_ids = ids if ids is not None else list(s.scalars(select(Video.id).order_by(Video.id)))
            rows: dict[str, dict[str, Extraction]] = defaultdict(dict)
            for chunk_start in range(0, len(all_ids), 500):
                chunk = all_ids[chunk_start:chunk_start + 500]
                for row in s.scalars(select(Extraction).where(Extraction.video_id.in_(chunk))):
                    rows[row.video_id][row.feature] = row
        videos = self._text_inputs(all_ids) if wants_text else {}
        for vid in all_ids:
            todo: list[str] = []
            texts: dict[str, str] | None = None
            for f in self.features:
                row = rows[vid].get(f)
                lost = row is not None and row.status == OK and (
                    (f in stored_keys and stored_keys[f].get(vid) != row.key)
                    or (f in SEQUENCE_FEATURES and not self._sequence_intact(f, vid, row)))
                if f.startswith("text."):
                    if _TEXT_SOURCE.get(f) in todo:
                        todo.append(f)  # its text is being recomputed: compute() decides
                        continue
                    if texts is None:
                        if vid not in videos:
                            continue  # removed from the library meanwhile
                        texts = self._texts(videos[vid], {}, rows[vid])
                    key = self._text_key(f, texts.get(f.split(".", 1)[1], ""))
                    if self.force or row is None or row.status == FAILED or row.key != key or lost:
                        todo.append(f)
                elif self.force or row is None or row.status == FAILED or row.key != keys[f] or lost:
                    todo.append(f)  # new, failed before, made with other settings, or its file lost or damaged
            if todo:
                plan.append((vid, todo))
        return plan

    def _sequence_intact(self, feature: str, video_id: str, row: Extraction) -> bool:
        """Whether a stored sequence file reads back with as many steps as were stored (header and size)."""
        seq = self.vectors.read_sequence(feature, video_id)
        steps = (row.result or {}).get("n_frames" if feature == "frames" else "n_blocks")
        if seq is None or (steps is not None and len(seq) != steps):
            log.warning("the %s sequence file of %s is missing or damaged; it will be recomputed", feature, video_id)
            return False
        return True

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
                text = texts.get(f.split(".", 1)[1], "")
                key = self._text_key(f, text)
                row = stored.get(f)
                # Planned only because its source is recomputed here: an unchanged text needs no new vector.
                unchanged = row is not None and row.key == key and row.status != FAILED
                if _TEXT_SOURCE.get(f) in todo and unchanged and not self.force:
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
        jpeg = None
        if self.thumbnails is not None:
            result["thumbnail"] = f"{video_id}.jpg"
            jpeg = _thumbnail_jpeg(dec.cover)
        return FeatureOutcome(OK, key, result=result, pooled=emb[0], thumbnail=jpeg)

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
    def run(self, ids: list[str] | None = None, progress=None, engine: Engine | None = None) -> ExtractReport:
        """Extract the missing features of ``ids`` (default: every video). Never stops on one bad video.

        Args:
            ids: videos to work on.
            progress: optional callable ``(n, note)`` called after each video; gets ``total`` via
                :meth:`plan` first if the caller wants a bar.
            engine: where the per-video work runs (default: this process, :class:`~vidlens.engines.LocalEngine`).

        Raises:
            StorageError: the features or the DB rows cannot be stored (full disk, DB gone); what was
                stored before stays, and a re-run does the rest.
        """
        t_start = time.perf_counter()
        report = ExtractReport()
        with _storage_errors(self):
            database = _DatabaseFile(self.store.url)
            plan = self.plan(ids)
            for f in self.features:
                if f in VECTOR_FEATURES and len(self.vectors.parts(f)) > 32:
                    self.vectors.compact(f)
            if plan:
                for group in (engine or LocalEngine()).map_groups(ExtractTask(self), plan):
                    database.check()
                    self.commit([outcome for _item, outcome in group])
                    for _item, outcome in group:
                        report.videos += 1
                        report.seconds["decode"] += outcome.decode_seconds
                        for f, o in outcome.features.items():
                            report.counts[f][o.status] += 1
                            report.seconds[f] += o.seconds
                            if o.status == FAILED:
                                report.errors.append({"video_id": outcome.video_id, "feature": f,
                                                      "message": o.message or ""})
                        if progress is not None:
                            failed = sum(o.status == FAILED for o in outcome.features.values())
                            progress(1, f"{outcome.video_id[:10]}" + (f" ({failed} failed)" if failed else ""))
                for f in self.features:
                    if f in VECTOR_FEATURES:
                        self.vectors.compact(f)
        report.wall_seconds = time.perf_counter() - t_start
        return report

    def compute(self, items: Iterable[tuple[str, list[str]]]) -> Iterator[VideoOutcome]:
        """Decode and encode ``(video id, features to compute)`` items; one outcome per item, in order.

        Reads the videos' rows and stored results from the library and writes nothing. The next videos
        are decoded in a background thread while the encoders work on the current one.
        """
        it = iter(items)
        window: deque[tuple[str, list[str], dict[str, Any] | None, Future[_Decoded] | None]] = deque()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vidlens-decode") as pool:

            def fill() -> None:
                while len(window) < 2:
                    nxt = next(it, None)
                    if nxt is None:
                        return
                    vid, todo = nxt
                    rows = self._video_rows([vid])
                    video = rows[0] if rows else None  # removed from the library since it was planned
                    window.append((vid, todo, video,
                                   pool.submit(self._decode, video, todo) if video is not None else None))

            fill()
            while window:
                vid, todo, video, fut = window.popleft()
                fill()
                if video is None or fut is None:
                    yield VideoOutcome(vid)
                    continue
                dec = fut.result()
                with self.store.session() as s:
                    stored = {r.feature: r for r in s.scalars(select(Extraction).where(Extraction.video_id == vid))}
                yield VideoOutcome(vid, self._compute(video, todo, dec, stored), dec.seconds)

    def _text_inputs(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The columns of each video that its text fields come from (title, summary, product text)."""
        out: dict[str, dict[str, Any]] = {}
        cols = (Video.id, Video.title, Video.summary, Video.product_titles, Video.product_categories)
        with self.store.session() as s:
            for start in range(0, len(ids), 500):
                for row in s.execute(select(*cols).where(Video.id.in_(ids[start:start + 500]))):
                    out[row.id] = row._asdict()
        return out

    def _video_rows(self, ids: list[str]) -> list[dict[str, Any]]:
        out = []
        with self.store.session() as s:
            for start in range(0, len(ids), 500):
                for v in s.scalars(select(Video).where(Video.id.in_(ids[start:start + 500]))):
                    d = v.to_dict()
                    d["paths_raw"] = [p.path_raw for p in v.paths]
                    out.append(d)
        return out

    def commit(self, outcomes: Sequence[VideoOutcome]) -> None:
        """Store the outcomes of some videos: files first (atomic), then their DB rows in one transaction.

        The pooled vectors of the group go into one part file per feature, so storing costs less per
        video the larger the group (an engine hands back a worker's whole batch). A run killed before the
        transaction commits redoes the group; files written for it are overwritten by the newer ones.

        A failure to store raises the underlying ``OSError`` or SQLAlchemy error; :meth:`run` turns it
        into a :class:`~vidlens.errors.StorageError`.
        """
        outcomes = [out for out in outcomes if out.features]
        if not outcomes:
            return
        pooled: dict[str, list[tuple[str, str, np.ndarray]]] = defaultdict(list)
        for out in outcomes:
            for f, o in out.features.items():
                if o.status == OK and o.sequence is not None and f in SEQUENCE_FEATURES:
                    self.vectors.write_sequence(f, out.video_id, o.sequence)
                if o.status == OK and o.pooled is not None:
                    pooled[f].append((out.video_id, o.key, o.pooled))
                if o.thumbnail is not None and self.thumbnails is not None:
                    _write_thumbnail(o.thumbnail, self.thumbnails, out.video_id)
        for f, rows in pooled.items():
            self.vectors.write_pooled(f, rows)
        ids = [out.video_id for out in outcomes]
        cleared: dict[str, list[str]] = defaultdict(list)  # stage -> videos whose past failure there is over
        with self.store.session() as s, s.no_autoflush:
            query = select(Extraction).where(Extraction.video_id.in_(ids))
            existing = {(r.video_id, r.feature): r for r in s.scalars(query)}
            for out in outcomes:
                for f, o in out.features.items():
                    row = existing.get((out.video_id, f))
                    if row is None:
                        row = Extraction(video_id=out.video_id, feature=f)
                        s.add(row)
                    row.key, row.status, row.message = o.key, o.status, o.message
                    row.result, row.seconds = o.result, o.seconds
                    if o.status != FAILED:
                        cleared[f"extract:{f}"].append(out.video_id)
            # One statement per stage rather than a query per row: storing is the driver's bottleneck at scale.
            for stage, vids in cleared.items():
                s.execute(delete(ItemError).where(ItemError.stage == stage, ItemError.item.in_(vids)))
            s.commit()
        for out in outcomes:
            for f, o in out.features.items():
                if o.status == FAILED:
                    self.store.record_error(f"extract:{f}", out.video_id, o.message or "failed", video_id=out.video_id)


class ExtractTask(Task):
    """The per-video work of an :class:`Extractor` (decode → encoders) as an engine task.

    In this process it uses the extractor it was made from. Pickled to a worker it carries only what
    rebuilds one there (DB URL, feature folder, configuration, features, encoder bank, and the driver's
    working directory, which relative video paths resolve from), and :meth:`setup` opens the library
    for reading and loads the encoders once for the worker's whole share.
    A real :class:`EncoderBank` travels empty and loads its models in the worker; a stand-in bank (tests)
    travels as it is.
    """

    def __init__(self, extractor: Extractor):
        self._extractor: Extractor | None = extractor
        self._own_store: MetadataStore | None = None
        bank = extractor.encoders
        self.encoders = EncoderBank(bank.config, bank.names) if isinstance(bank, EncoderBank) else bank
        self.database_url = extractor.store.url
        self.features_root = os.path.abspath(extractor.vectors.root)
        self.config = extractor.config
        self.modalities = extractor.modalities
        self.force = extractor.force
        self.thumbnails = None if extractor.thumbnails is None else os.path.abspath(extractor.thumbnails)
        self.cwd = os.getcwd()  # videos ingested by relative path resolve from here

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_extractor"] = None  # DB connections and loaded models do not travel
        state["_own_store"] = None
        return state

    def setup(self) -> None:
        """Build this worker's extractor (once)."""
        if self._extractor is None:
            if os.path.isdir(self.cwd):
                os.chdir(self.cwd)
            self._own_store = MetadataStore(self.database_url)
            self._extractor = Extractor(self._own_store, VectorStore(self.features_root), self.config,
                                        thumbnails=self.thumbnails, modalities=self.modalities, force=self.force,
                                        encoders=self.encoders)

    def process(self, items: Iterable[tuple[str, list[str]]]) -> Iterator[VideoOutcome]:
        """One :class:`VideoOutcome` per ``(video id, features)`` item."""
        self.setup()
        assert self._extractor is not None
        return self._extractor.compute(items)

    def close(self) -> None:
        """Close the DB handle this task opened in a worker."""
        if self._own_store is not None:
            self._own_store.close()
            self._own_store = None


class _DatabaseFile:
    """The SQLite file a run writes to, checked before each commit.

    An open SQLite connection keeps writing to its file after the file was moved or deleted, so a run
    would go on "storing" into a file the library no longer has (and, if it was deleted, lose it all at
    exit). A stat per video notices instead, and the run stops with a clear error.
    """

    def __init__(self, url: str):
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        name = parsed.database if parsed.get_backend_name() == "sqlite" else None
        self.path = name if name and name != ":memory:" and not name.startswith("file:") else None
        self.identity = self._identity()

    def _identity(self) -> tuple[int, int] | None:
        if self.path is None:
            return None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def check(self) -> None:
        """Raise StorageError if the file is gone or another file has taken its place."""
        if self.path is None or self.identity is None:
            return
        now = self._identity()
        if now != self.identity:
            what = "removed or moved away" if now is None else "replaced by another file"
            raise StorageError(f"metadata DB {self.path} was {what} during the run: the run stopped; videos "
                               "committed before are in the file that was there; put it back (or restore it) "
                               "and run extract again to finish")


@contextmanager
def _storage_errors(extractor: Extractor) -> Iterator[None]:
    """Turn failures to store (a full disk, a DB that is gone or broken) into one clear StorageError."""
    where = extractor.vectors.root
    keep = "features stored before this point are kept; fix it and run extract again to finish"
    try:
        yield
    except VidlensError:
        raise
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageError(f"no space left on the device holding {exc.filename or where}: "
                               f"the run stopped; {keep}") from exc
        raise StorageError(f"cannot write features under {where}: {exc.strerror or exc} "
                           f"({exc.filename or ''}); the run stopped; {keep}") from exc
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        if "disk is full" in reason:
            reason += " (no space left on the device holding the DB)"
        raise StorageError(f"metadata DB {_redact(extractor.store.url)} failed: {reason}; "
                           f"the run stopped; {keep}") from exc


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


def _thumbnail_jpeg(rgb: np.ndarray) -> bytes:
    """A JPEG thumbnail (longest side 320) of an RGB image."""
    from PIL import Image

    img = Image.fromarray(rgb)
    img.thumbnail((320, 320))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def _write_thumbnail(jpeg: bytes, folder: os.PathLike | str, video_id: str) -> None:
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{video_id}.jpg")
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(jpeg)
    os.replace(tmp, path)


def _redact(url: str) -> str:
    """A DB URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparsable URL)"
