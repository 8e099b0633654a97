"""SQLAlchemy tables of the metadata DB. The same models serve SQLite (default) and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

SCHEMA_VERSION = 1

# Byte counts and nanosecond times need 64 bits: BIGINT on PostgreSQL. SQLite's INTEGER already holds 64
# bits, and keeping that name there leaves libraries made before PostgreSQL support with the same schema.
Int64 = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """Timezone-aware now, the one clock all rows use."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of every vidlens table."""


class Video(Base):
    """One video (or audio-only item), identified by the hash of its content."""

    __tablename__ = "videos"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    title: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)
    product_titles: Mapped[list[str]] = mapped_column(JSON, default=list)
    product_categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    labels: Mapped[list[str]] = mapped_column(JSON, default=list)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    cover_file: Mapped[str | None] = mapped_column(Text)

    size_bytes: Mapped[int] = mapped_column(Int64)
    container: Mapped[str | None] = mapped_column(String(64))
    duration: Mapped[float] = mapped_column(Float, default=0.0)
    has_video: Mapped[bool] = mapped_column(Boolean)
    has_audio: Mapped[bool] = mapped_column(Boolean)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    fps: Mapped[float | None] = mapped_column(Float)
    rotation: Mapped[int] = mapped_column(Integer, default=0)
    video_codec: Mapped[str | None] = mapped_column(String(64))
    audio_codec: Mapped[str | None] = mapped_column(String(64))
    audio_sample_rate: Mapped[int | None] = mapped_column(Integer)
    audio_channels: Mapped[int | None] = mapped_column(Integer)
    keyframe_interval: Mapped[float | None] = mapped_column(Float)
    variable_frame_rate: Mapped[bool] = mapped_column(Boolean, default=False)

    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    # "selectin": a page of videos loads its paths in one more query, not one query per video.
    paths: Mapped[list[VideoPath]] = relationship(
        back_populates="video", cascade="all, delete-orphan", order_by="VideoPath.id", lazy="selectin"
    )

    METADATA_FIELDS = ("title", "summary", "product_titles", "product_categories", "labels", "extra",
                       "cover_file")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the row, its known paths included."""
        out = {col.name: getattr(self, col.name) for col in self.__table__.columns}
        for key in ("created_at", "updated_at"):
            if out[key] is not None:
                out[key] = out[key].isoformat()
        out["paths"] = [p.path for p in self.paths]
        return out


class VideoPath(Base):
    """A place on disk where a video's content was found; one video may live at several paths."""

    __tablename__ = "video_paths"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # The exact bytes of the path, so that names which are not valid UTF-8 can be opened again.
    path_raw: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    path: Mapped[str] = mapped_column(Text)
    video_id: Mapped[str] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    size_bytes: Mapped[int] = mapped_column(Int64)
    mtime_ns: Mapped[int] = mapped_column(Int64)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    video: Mapped[Video] = relationship(back_populates="paths")


class ItemError(Base):
    """The last failure of one item at one stage (``ingest``, ``extract:asr`` …); cleared on success."""

    __tablename__ = "item_errors"
    __table_args__ = (UniqueConstraint("stage", "item", name="uq_item_errors_stage_item"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    stage: Mapped[str] = mapped_column(String(64))
    item: Mapped[str] = mapped_column(Text)
    video_id: Mapped[str | None] = mapped_column(String(32), index=True)
    message: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the row."""
        return {
            "stage": self.stage,
            "item": self.item,
            "video_id": self.video_id,
            "message": self.message,
            "attempts": self.attempts,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }


class Meta(Base):
    """Key/value facts about the library itself (schema version, creation time)."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Extraction(Base):
    """The state of one feature of one video.

    ``key`` names the extractor, its version and parameters (and, for text vectors, a hash of the input
    text), so a re-run redoes exactly the features whose key changed. ``status`` is ``ok`` (vectors
    stored), ``absent`` (a documented degradation, e.g. "no audio track") or ``failed``. ``result``
    holds small structured outputs: the transcript and its segments, OCR lines, top visual concepts,
    shapes.
    """

    __tablename__ = "extractions"

    video_id: Mapped[str] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True)
    feature: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16))
    message: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow,
                                                 index=True)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the row."""
        return {
            "feature": self.feature,
            "key": self.key,
            "status": self.status,
            "message": self.message,
            "result": self.result,
            "seconds": round(self.seconds or 0.0, 4),
        }
