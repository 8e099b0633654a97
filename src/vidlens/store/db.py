"""The metadata DB: engine set-up and the queries the library needs.

SQLite is the embedded default (WAL mode, so readers run beside a writer); any SQLAlchemy URL, such as
``postgresql+psycopg://…``, works unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from sqlalchemy import Integer, cast, create_engine, event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from vidlens.errors import NotFoundError
from vidlens.store.models import SCHEMA_VERSION, Base, ItemError, Meta, Video, VideoPath, utcnow


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode survives a killed process (not a power cut) and is far faster than FULL.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(url: str) -> Engine:
    """Create an engine for ``url`` with the settings vidlens relies on."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    return engine


@contextmanager
def session_scope(factory: sessionmaker) -> Iterator[Session]:
    """A session from ``factory`` that rolls back on error and is always closed."""
    s = factory()
    try:
        yield s
    except BaseException:
        s.rollback()
        raise
    finally:
        s.close()


class MetadataStore:
    """Rows about videos, their paths and per-item errors.

    Args:
        url: SQLAlchemy database URL.
    """

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        Base.metadata.create_all(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        with self.session() as s:
            if s.get(Meta, "schema_version") is None:
                s.add(Meta(key="schema_version", value=str(SCHEMA_VERSION)))
                s.add(Meta(key="created_at", value=utcnow().isoformat()))
                try:
                    s.commit()
                except IntegrityError:  # another process created it first
                    s.rollback()

    def session(self) -> AbstractContextManager[Session]:
        """A session that rolls back on error and is always closed."""
        return session_scope(self._sessions)

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    # -- videos ---------------------------------------------------------------------------------
    def resolve_id(self, s: Session, ref: str) -> str:
        """Turn a full id or a unique prefix (at least 4 characters) into a full id."""
        if s.get(Video, ref) is not None:
            return ref
        if len(ref) >= 4:
            ids = s.scalars(select(Video.id).where(Video.id.like(ref.replace("%", "") + "%")).limit(2)).all()
            if len(ids) == 1:
                return ids[0]
            if len(ids) > 1:
                raise NotFoundError(f"video id prefix {ref!r} is ambiguous; give more characters")
        raise NotFoundError(f"no video with id {ref!r} in this library")

    def get_video(self, ref: str) -> dict[str, Any]:
        """The stored row of one video as a dict; ``ref`` may be a unique id prefix."""
        with self.session() as s:
            video = s.get(Video, self.resolve_id(s, ref))
            return video.to_dict()

    def iter_videos(self, batch: int = 1000) -> Iterator[dict[str, Any]]:
        """All videos, ordered by id, fetched in pages so memory stays flat."""
        last = ""
        while True:
            with self.session() as s:
                rows = s.scalars(select(Video).where(Video.id > last).order_by(Video.id).limit(batch)).all()
                dicts = [r.to_dict() for r in rows]
            if not dicts:
                return
            yield from dicts
            last = dicts[-1]["id"]

    def video_ids(self) -> list[str]:
        """Every video id, sorted."""
        with self.session() as s:
            return list(s.scalars(select(Video.id).order_by(Video.id)))

    def counts(self) -> dict[str, Any]:
        """Summary numbers for ``vidlens status``."""
        with self.session() as s:
            n, dur, with_audio, with_video = s.execute(
                select(
                    func.count(Video.id),
                    func.coalesce(func.sum(Video.duration), 0.0),
                    func.coalesce(func.sum(cast(Video.has_audio, Integer)), 0),
                    func.coalesce(func.sum(cast(Video.has_video, Integer)), 0),
                )
            ).one()
            errors = s.scalar(select(func.count(ItemError.id))) or 0
            by_stage = dict(s.execute(select(ItemError.stage, func.count()).group_by(ItemError.stage)).all())
        return {
            "videos": int(n),
            "total_duration_s": float(dur),
            "with_audio": int(with_audio),
            "with_video": int(with_video),
            "errors": int(errors),
            "errors_by_stage": by_stage,
        }

    # -- errors ---------------------------------------------------------------------------------
    def record_error(self, stage: str, item: str, message: str, video_id: str | None = None) -> None:
        """Remember that ``item`` failed at ``stage``; repeated failures bump ``attempts``."""
        with self.session() as s:
            row = s.scalar(select(ItemError).where(ItemError.stage == stage, ItemError.item == item))
            if row is None:
                s.add(ItemError(stage=stage, item=item, message=message, video_id=video_id))
            else:
                row.message = message
                row.video_id = video_id
                row.attempts += 1
            s.commit()

    def clear_error(self, s: Session, stage: str, item: str) -> None:
        """Forget a past failure of ``item`` at ``stage`` (within the caller's transaction)."""
        row = s.scalar(select(ItemError).where(ItemError.stage == stage, ItemError.item == item))
        if row is not None:
            s.delete(row)

    def errors(self, stage: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Recorded per-item errors, newest first."""
        with self.session() as s:
            q = select(ItemError).order_by(ItemError.updated_at.desc(), ItemError.id.desc())
            if stage is not None:
                q = q.where(ItemError.stage == stage)
            if limit is not None:
                q = q.limit(limit)
            return [e.to_dict() for e in s.scalars(q)]


__all__ = ["ItemError", "MetadataStore", "Video", "VideoPath", "make_engine"]
