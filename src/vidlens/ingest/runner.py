"""Ingest: hash, probe and record each item; one committed transaction per item.

Because each item is committed on its own, a run killed at any point keeps everything done before it,
and a re-run skips what is already there (a path whose size and mtime are unchanged is not even hashed
again). Two threads hash and probe while the main thread writes to the DB: both hashing and FFmpeg
decoding release the GIL, so this uses the machine's two cores without a process pool.
"""

from __future__ import annotations

import hashlib
import os
import stat as stat_mod
from collections import Counter, deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DataError

from vidlens.errors import IngestError, MediaError, VidlensError
from vidlens.ingest.sources import IngestItem
from vidlens.media import MediaInfo, probe
from vidlens.store.db import MetadataStore, conflict_insert
from vidlens.store.models import Video, VideoPath

STAGE = "ingest"
HASH_CHUNK = 1 << 20
ID_BYTES = 10  # 80-bit ids: collisions stay negligible at billions of videos


def content_id(path: str | os.PathLike) -> str:
    """The id of a video: a BLAKE2b hash of its bytes, as 20 hex characters."""
    h = hashlib.blake2b(digest_size=ID_BYTES)
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class ItemResult:
    """What happened to one item: ``added``, ``updated``, ``unchanged`` or ``failed``."""

    item: str
    status: str
    video_id: str | None = None
    message: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {k: v for k, v in self.__dict__.items() if v not in (None, [])}


@dataclass
class IngestReport:
    """The outcome of one ingest run."""

    results: list[ItemResult] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        """How many items ended in each status."""
        c = Counter(r.status for r in self.results)
        return {k: c.get(k, 0) for k in ("added", "updated", "unchanged", "failed")}

    @property
    def failed(self) -> list[ItemResult]:
        """The items that could not be ingested."""
        return [r for r in self.results if r.status == "failed"]


@dataclass
class _Opened:
    video_id: str
    size: int
    mtime_ns: int
    info: MediaInfo | None  # None: content already known, not probed again


def _stat_checked(path: str) -> os.stat_result:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise MediaError(path, "file not found") from None
    except PermissionError:
        raise MediaError(path, "permission denied") from None
    except OSError as exc:
        raise MediaError(path, f"cannot stat: {exc.strerror}") from None
    if stat_mod.S_ISDIR(st.st_mode):
        raise MediaError(path, "is a directory, not a media file")
    if not stat_mod.S_ISREG(st.st_mode):
        raise MediaError(path, "not a regular file")
    if st.st_size == 0:
        raise MediaError(path, "empty file (0 bytes)")
    return st


def _open_item(path: str, known_ids: Callable[[str], bool]) -> _Opened:
    """Hash and (for new content) probe one file. Runs in a worker thread; touches no DB session."""
    st = _stat_checked(path)
    try:
        vid = content_id(path)
    except OSError as exc:
        raise MediaError(path, f"cannot read: {exc.strerror}") from None
    info = None if known_ids(vid) else probe(path)
    return _Opened(vid, st.st_size, st.st_mtime_ns, info)


def _apply_metadata(video: Video, item: IngestItem) -> bool:
    """Write manifest fields onto the row; returns whether anything changed."""
    changed = False
    meta = dict(item.metadata or {})
    if item.warnings:
        extra = dict(meta.get("extra") or {})
        extra["ingest_warnings"] = list(item.warnings)
        meta["extra"] = extra
    for key in Video.METADATA_FIELDS:
        if key not in meta:
            continue
        value = meta[key]
        if key == "extra":
            value = {**(video.extra or {}), **value}
        elif isinstance(value, str):
            value = value.replace("\x00", "")  # PostgreSQL text cannot hold NUL; keep both backends alike
        if value is not None and value != getattr(video, key):
            setattr(video, key, value)
            changed = True
    return changed


def _video_row(video_id: str, info: MediaInfo) -> dict[str, Any]:
    """The ``videos`` row of newly seen content, from its probe."""
    return {
        "id": video_id,
        "size_bytes": info.size_bytes,
        "container": info.container,
        "duration": info.duration,
        "has_video": info.has_video,
        "has_audio": info.has_audio,
        "width": info.width,
        "height": info.height,
        "fps": info.fps,
        "rotation": info.rotation,
        "video_codec": info.video_codec,
        "audio_codec": info.audio_codec,
        "audio_sample_rate": info.audio_sample_rate,
        "audio_channels": info.audio_channels,
        "keyframe_interval": info.keyframe_interval,
        "variable_frame_rate": info.variable_frame_rate,
        "product_titles": [],
        "product_categories": [],
        "labels": [],
        "extra": {},
    }


class Ingestor:
    """Takes items into a library's metadata store.

    Args:
        store: the metadata DB.
        workers: threads that hash and probe in parallel with the DB writer.
        window: items in flight at once; bounds memory whatever the batch size.
    """

    def __init__(self, store: MetadataStore, workers: int = 2, window: int = 8):
        self.store = store
        self.workers = workers
        self.window = window

    def _known(self, video_id: str) -> bool:
        with self.store.session() as s:
            return s.get(Video, video_id) is not None

    def _unchanged_path(self, path: str) -> str | None:
        """The video id recorded for ``path`` if its size and mtime still match, else None."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        with self.store.session() as s:
            row = s.scalar(select(VideoPath).where(VideoPath.path_raw == os.fsencode(path)))
            if row is not None and row.size_bytes == st.st_size and row.mtime_ns == st.st_mtime_ns:
                return row.video_id
        return None

    def _record(self, item: IngestItem, opened: _Opened) -> ItemResult:
        """Write one item's rows in one transaction.

        Another process may be ingesting the same content or the same path at this moment, so both rows
        are inserted with ``ON CONFLICT DO NOTHING`` and then read back: whoever inserts first wins, and
        the other updates the row it finds instead of failing or adding a duplicate.
        """
        assert item.path is not None
        with self.store.session() as s:
            video = s.get(Video, opened.video_id)
            status = "unchanged"
            if video is None:
                if opened.info is None:  # the row vanished since we looked; probe now
                    opened.info = probe(item.path)
                inserted = s.scalar(conflict_insert(s, Video).values(**_video_row(opened.video_id, opened.info))
                                    .on_conflict_do_nothing(index_elements=["id"]).returning(Video.id))
                if inserted is not None:
                    status = "added"
                video = s.get(Video, opened.video_id)
                assert video is not None
            if _apply_metadata(video, item) and status == "unchanged":
                status = "updated"
            raw = os.fsencode(item.path)
            prow = s.scalar(select(VideoPath).where(VideoPath.path_raw == raw))
            if prow is None:
                inserted = s.scalar(conflict_insert(s, VideoPath)
                                    .values(path_raw=raw, path=item.label, video_id=opened.video_id,
                                            size_bytes=opened.size, mtime_ns=opened.mtime_ns)
                                    .on_conflict_do_nothing(index_elements=["path_raw"]).returning(VideoPath.id))
                if inserted is not None and status == "unchanged":
                    status = "updated"
                prow = s.scalar(select(VideoPath).where(VideoPath.path_raw == raw))
                assert prow is not None
            if (prow.video_id, prow.size_bytes, prow.mtime_ns) != (opened.video_id, opened.size, opened.mtime_ns):
                prow.video_id, prow.size_bytes, prow.mtime_ns = opened.video_id, opened.size, opened.mtime_ns
            self.store.clear_error(s, STAGE, item.label)
            s.commit()
        return ItemResult(item.label, status, opened.video_id, warnings=list(item.warnings))

    def _fail(self, item: IngestItem, message: str) -> ItemResult:
        self.store.record_error(STAGE, item.label, message)
        return ItemResult(item.label, "failed", message=message)

    def run(self, items: Iterable[IngestItem], progress: Callable[[ItemResult], None] | None = None
            ) -> IngestReport:
        """Ingest every item; failures are recorded per item and never stop the batch."""
        report = IngestReport()

        def finish(result: ItemResult) -> None:
            report.results.append(result)
            if progress is not None:
                progress(result)

        pending: deque[tuple[IngestItem, Future[_Opened] | str]] = deque()

        def drain_one() -> None:
            item, fut = pending.popleft()
            if isinstance(fut, str):  # fast path: path unchanged since last time
                if item.metadata is None and not item.warnings:
                    finish(ItemResult(item.label, "unchanged", fut))  # nothing to write at all
                    return
                opened = _Opened(fut, 0, 0, None)
                st = os.stat(item.path)  # type: ignore[arg-type]
                opened.size, opened.mtime_ns = st.st_size, st.st_mtime_ns
            else:
                try:
                    opened = fut.result()
                except VidlensError as exc:
                    finish(self._fail(item, getattr(exc, "reason", str(exc))))
                    return
                except Exception as exc:
                    finish(self._fail(item, f"unexpected {type(exc).__name__}: {exc}"))
                    return
            try:
                finish(self._record(item, opened))
            except VidlensError as exc:
                finish(self._fail(item, getattr(exc, "reason", str(exc))))
            except DataError as exc:  # a value this DB cannot hold: this item's problem, not the batch's
                finish(self._fail(item, f"cannot store: {exc.orig}"))

        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="vidlens-ingest") as pool:
            for item in items:
                if item.error is not None or item.path is None:
                    finish(self._fail(item, item.error or "no path"))
                    continue
                known = self._unchanged_path(item.path)
                if known is not None:
                    pending.append((item, known))
                else:
                    pending.append((item, pool.submit(_open_item, item.path, self._known)))
                while len(pending) >= self.window:
                    drain_one()
            while pending:
                drain_one()
        return report


__all__ = ["IngestError", "IngestReport", "Ingestor", "ItemResult", "content_id"]
