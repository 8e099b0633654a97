"""User feedback (clicks, plays, likes …) stored for ranking and retrieval training to read back."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String, Text, func, select
from sqlalchemy.orm import Mapped, mapped_column

from vidlens.store.db import MetadataStore
from vidlens.store.models import Base, utcnow


class FeedbackEvent(Base):
    """One user action on one video, with the query that led to it when there was one."""

    __tablename__ = "feedback_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event: Mapped[str] = mapped_column(String(16), index=True)
    # Not a foreign key: feedback outlives deleted videos and is written without a look-up per event.
    video_id: Mapped[str] = mapped_column(String(32), index=True)
    query: Mapped[str | None] = mapped_column(Text)
    position: Mapped[int | None] = mapped_column(Integer)
    session: Mapped[str | None] = mapped_column(String(64))
    user: Mapped[str | None] = mapped_column(String(64))
    dwell_ms: Mapped[int | None] = mapped_column(Integer)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the row."""
        return {"id": self.id, "event": self.event, "video_id": self.video_id, "query": self.query,
                "position": self.position, "session": self.session, "user": self.user,
                "dwell_ms": self.dwell_ms, "extra": self.extra or {},
                "created_at": self.created_at.isoformat() if self.created_at else None}


class FeedbackLog:
    """Writes and reads :class:`FeedbackEvent` rows.

    Args:
        store: the library's metadata DB (its migrations made the table).
    """

    def __init__(self, store: MetadataStore):
        self.store = store

    def record(self, events: Iterable[dict[str, Any]]) -> int:
        """Store events (dicts with the columns of :class:`FeedbackEvent`) in one transaction."""
        rows = [FeedbackEvent(**{**e, "extra": e.get("extra") or {}}) for e in events]
        with self.store.session() as s:
            s.add_all(rows)
            s.commit()
        return len(rows)

    def recent(self, limit: int = 100, video_id: str | None = None) -> list[dict[str, Any]]:
        """Newest events first."""
        with self.store.session() as s:
            q = select(FeedbackEvent).order_by(FeedbackEvent.id.desc()).limit(limit)
            if video_id is not None:
                q = q.where(FeedbackEvent.video_id == video_id)
            return [r.to_dict() for r in s.scalars(q)]

    def counts(self) -> dict[str, int]:
        """How many events of each kind are stored."""
        with self.store.session() as s:
            return {k: int(v) for k, v in s.execute(
                select(FeedbackEvent.event, func.count()).group_by(FeedbackEvent.event)).all()}
