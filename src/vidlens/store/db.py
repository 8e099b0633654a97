"""The metadata DB: engine set-up and the queries the library needs.

SQLite is the embedded default (WAL mode, so readers run beside a writer); PostgreSQL
(``postgresql+psycopg://user@host/db``, psycopg 3) runs the same models and migrations. Writes that
several processes may race on are idempotent inserts (``INSERT … ON CONFLICT``, see
:func:`conflict_insert`), so two ingests of one library neither fail nor duplicate rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from sqlalchemy import Integer, Table, cast, create_engine, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from vidlens.errors import ConfigError, NotFoundError
from vidlens.store.models import SCHEMA_VERSION, Base, ItemError, Meta, Video, VideoPath, utcnow
from vidlens.store.schema import upgrade_schema


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode survives a killed process (not a power cut) and is far faster than FULL.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(url: str) -> Engine:
    """Create an engine for ``url`` with the settings vidlens relies on.

    A bare ``postgresql://`` URL uses psycopg 3 (the driver the ``postgres`` extra installs).
    """
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(parsed, pool_pre_ping=True)
    return engine


def conflict_insert(bind: Session | Connection | Engine, table: type[Base] | Table) -> Any:
    """An ``INSERT`` into ``table`` that takes ``.on_conflict_do_nothing()`` and ``.on_conflict_do_update()``.

    The statement is built in the dialect of ``bind`` (SQLite or PostgreSQL, which spell the clause alike).
    To learn whether a row went in, add ``.returning(column)``: it yields no row when the insert was
    skipped (``rowcount`` is not reliable for this: psycopg reports -1).

    Raises:
        ConfigError: the database is neither SQLite nor PostgreSQL.
    """
    name = (bind.get_bind() if isinstance(bind, Session) else bind).dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise ConfigError(f"metadata DB {name!r} is not supported; use SQLite or PostgreSQL")


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

    Opening brings the DB's schema to the newest migration (see :mod:`vidlens.store.schema`).

    Args:
        url: SQLAlchemy URL of a SQLite or PostgreSQL database.
    """

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        upgrade_schema(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        with self.session() as s:
            if s.get(Meta, "schema_version") is None:
                facts = {"schema_version": str(SCHEMA_VERSION), "created_at": utcnow().isoformat()}
                # Another process opening the library at the same moment may write them first.
                s.execute(conflict_insert(s, Meta).values([{"key": k, "value": v} for k, v in facts.items()])
                          .on_conflict_do_nothing(index_elements=["key"]))
                s.commit()

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

    def get_videos(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The stored rows of the videos with these exact ids, by id, in two queries (ids not found are
        left out)."""
        found: dict[str, dict[str, Any]] = {}
        with self.session() as s:
            for start in range(0, len(ids), 500):
                for video in s.scalars(select(Video).where(Video.id.in_(ids[start:start + 500]))):
                    found[video.id] = video.to_dict()
        return found

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
        """Remember that ``item`` failed at ``stage``; repeated failures bump ``attempts``.

        One upsert, so two processes failing on the same item at once both count.
        """
        with self.session() as s:
            stmt = conflict_insert(s, ItemError).values(stage=stage, item=item, message=message,
                                                        video_id=video_id, attempts=1)
            s.execute(stmt.on_conflict_do_update(
                index_elements=["stage", "item"],
                set_={"message": message, "video_id": video_id, "attempts": ItemError.attempts + 1,
                      "updated_at": utcnow()}))
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


__all__ = ["ItemError", "MetadataStore", "Video", "VideoPath", "conflict_insert", "make_engine"]
