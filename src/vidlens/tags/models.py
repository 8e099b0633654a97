"""Tables of the tag library, on the metadata DB's declarative ``Base`` (SQLite and PostgreSQL alike).

``tags`` holds one row per tag (display name, normal-form key, kind, atomic class or phrase dimensions,
status with reviewer and time, source, counts, mining evidence); ``tag_aliases`` its synonyms;
``tag_links`` parent / related / component links; ``tag_revisions`` + ``tag_changes`` the versioned
history (each change keeps the tag's snapshot before and after, so any revision can be diffed and rolled
back); ``video_tags`` tags assigned to videos (gold, manual or by the tagger); ``tag_clicks`` click logs.

``video_tags.video_id`` and ``tag_clicks.video_id`` are plain keys, not foreign keys: click logs and tag
assignments may name videos that live in another system.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vidlens.store.models import Base, utcnow

NAME_COLUMN_CHARS = 200


class Tag(Base):
    """One tag of the library."""

    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(NAME_COLUMN_CHARS))
    norm: Mapped[str] = mapped_column(String(NAME_COLUMN_CHARS), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="atomic")
    atomic_class: Mapped[str | None] = mapped_column(String(64))
    dimensions: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="candidate", index=True)
    source: Mapped[str] = mapped_column(String(64), default="manual")
    created_by: Mapped[str | None] = mapped_column(String(64))
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    count: Mapped[int] = mapped_column(Integer, default=0)
    video_count: Mapped[int] = mapped_column(Integer, default=0)
    click_count: Mapped[int] = mapped_column(Integer, default=0)
    score: Mapped[float | None] = mapped_column(Float)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class TagAlias(Base):
    """A synonym of a tag; its normal form is unique across aliases (and never another tag's key)."""

    __tablename__ = "tag_aliases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), index=True)
    alias: Mapped[str] = mapped_column(String(NAME_COLUMN_CHARS))
    norm: Mapped[str] = mapped_column(String(NAME_COLUMN_CHARS), unique=True)


class TagLink(Base):
    """A directed link ``src → dst``: ``parent`` (dst is src's parent), ``related``, or ``component``
    (dst is the atomic tag at ``position`` inside phrase src)."""

    __tablename__ = "tag_links"
    __table_args__ = (UniqueConstraint("src_id", "dst_id", "relation", name="uq_tag_links"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    src_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), index=True)
    dst_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), index=True)
    relation: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(Integer, default=0)


class TagRevision(Base):
    """One versioned edit of the library (one CLI command or API call); its id is the version number."""

    __tablename__ = "tag_revisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    who: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    message: Mapped[str] = mapped_column(Text, default="")
    n_changes: Mapped[int] = mapped_column(Integer, default=0)


class TagChange(Base):
    """One tag's state before and after a revision (``None`` before a create, ``None`` after a delete)."""

    __tablename__ = "tag_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    revision_id: Mapped[int] = mapped_column(ForeignKey("tag_revisions.id", ondelete="CASCADE"), index=True)
    tag_id: Mapped[int] = mapped_column(Integer, index=True)
    action: Mapped[str] = mapped_column(String(32))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class VideoTag(Base):
    """A tag on a video, from one source (``gold`` labels, ``manual`` edits, ``tagger`` output)."""

    __tablename__ = "video_tags"
    __table_args__ = (
        UniqueConstraint("video_id", "tag_id", "source", name="uq_video_tags"),
        Index("ix_video_tags_tag", "tag_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    video_id: Mapped[str] = mapped_column(String(64), index=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(32), default="gold")
    role: Mapped[str | None] = mapped_column(String(16))
    score: Mapped[float | None] = mapped_column(Float)
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class TagClick(Base):
    """Clicks from a log: ``video_tag`` (a user clicked tag on video) or ``query_video`` (a search for
    query led to a click on video)."""

    __tablename__ = "tag_clicks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    video_id: Mapped[str] = mapped_column(String(64), index=True)
    tag_id: Mapped[int | None] = mapped_column(ForeignKey("tags.id", ondelete="SET NULL"), index=True)
    text: Mapped[str] = mapped_column(String(NAME_COLUMN_CHARS))
    clicks: Mapped[int] = mapped_column(Integer, default=1)
    at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


TAG_TABLES = [t.__table__ for t in (Tag, TagAlias, TagLink, TagRevision, TagChange, VideoTag, TagClick)]

__all__ = ["TAG_TABLES", "Tag", "TagAlias", "TagChange", "TagClick", "TagLink", "TagRevision", "VideoTag"]
