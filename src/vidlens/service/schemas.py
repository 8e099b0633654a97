"""Request and response bodies of the HTTP API (they make up the OpenAPI spec at ``/openapi.json``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

VIDEO_REF = r"^[0-9a-fA-F]{4,32}$"
MODALITIES = Literal["frames", "cover", "audio", "ocr", "asr", "text"]


class Problem(BaseModel):
    """An error: ``detail`` says what went wrong in one sentence."""

    detail: Any


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    videos: int
    search_documents: int
    jobs: dict[str, int]


class Capabilities(BaseModel):
    """Which optional engines this server has wired in."""

    classify: bool
    tags: bool
    retrieval: bool
    duplicates: bool
    taxonomy: bool


class LibraryStatus(BaseModel):
    videos: int
    total_duration_s: float
    with_audio: int
    with_video: int
    errors: int
    errors_by_stage: dict[str, int]
    features: dict[str, dict[str, int]] = Field(description="feature → {status: count}")
    jobs: dict[str, int]
    search_documents: int
    categories: list[dict[str, Any]] | None = Field(
        None, description="category distribution (level 1 with level-2 children), when a classifier is wired")
    capabilities: Capabilities
    library: str | None = Field(None, description="library folder (only shown to token holders)")
    database: str | None = Field(None, description="DB URL without password (only shown to token holders)")


class VideoSummary(BaseModel):
    id: str
    title: str | None
    duration: float
    has_video: bool
    has_audio: bool
    thumbnail_url: str | None
    created_at: str | None = None


class VideoPage(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[VideoSummary]


class Segment(BaseModel):
    start: float
    end: float
    text: str


class Transcript(BaseModel):
    language: str | None = None
    text: str = ""
    segments: list[Segment] = Field(default_factory=list)


class OcrLine(BaseModel):
    text: str
    start: float | None = None
    end: float | None = None
    score: float | None = None


class Concept(BaseModel):
    name: str
    score: float


class FeatureState(BaseModel):
    status: str
    message: str | None = None


class VideoDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    title: str | None
    summary: str | None
    labels: list[str]
    product_titles: list[str]
    product_categories: list[str]
    extra: dict[str, Any]
    duration: float
    size_bytes: int
    container: str | None
    has_video: bool
    has_audio: bool
    width: int | None
    height: int | None
    fps: float | None
    created_at: str | None
    updated_at: str | None
    media_url: str
    media_type: str
    thumbnail_url: str | None
    features: dict[str, FeatureState]
    transcript: Transcript | None
    ocr: list[OcrLine]
    concepts: list[Concept]
    categories: list[dict[str, Any]] = Field(default_factory=list, description="when a classifier is wired")
    tags: list[dict[str, Any]] = Field(default_factory=list, description="when a tagger is wired")
    errors: list[dict[str, Any]]
    paths: list[str] | None = Field(None, description="server paths (only shown to token holders)")


class SearchHitOut(BaseModel):
    id: str
    score: float
    title: str | None
    duration: float
    thumbnail_url: str | None
    matched: list[str] = Field(description="fields in which the query matched")


class SearchResults(BaseModel):
    query: str
    total: int
    offset: int
    limit: int
    engine: str = Field(description="which engine answered: 'keyword' until vector retrieval is wired")
    items: list[SearchHitOut]


class JobOut(BaseModel):
    id: str
    kind: str
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    params: dict[str, Any]
    done: int
    total: int | None
    message: str | None
    result: dict[str, Any]
    error: str | None
    attempts: int
    created_at: str | None
    started_at: str | None
    finished_at: str | None


class JobSubmitted(BaseModel):
    job: JobOut
    created: bool = Field(description="False when the same work was already queued or running")


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["analyse", "extract", "classify", "tag", "dedup"]
    video_ids: list[str] | None = Field(
        None, max_length=100_000, description="ids or unique prefixes; omit for every video")
    modalities: list[MODALITIES] | None = Field(None, max_length=6)
    force: bool = False


class IngestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paths: list[str] = Field(min_length=1, max_length=1000,
                             description="files, folders or manifests on the server, under an allowed root")
    analyse: bool = Field(True, description="queue analysis of the new videos when ingest finishes")


UPLOAD_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {"schema": {
            "type": "object",
            "required": ["file"],
            "properties": {
                "file": {"type": "string", "format": "binary"},
                "title": {"type": "string", "maxLength": 500},
                "summary": {"type": "string", "maxLength": 5000},
                "labels": {"type": "string", "description": "comma-separated"},
                "analyse": {"type": "boolean"},
            },
        }},
    },
}


class UploadResult(BaseModel):
    video_id: str
    status: Literal["added", "updated", "unchanged"]
    duration: float
    has_video: bool
    has_audio: bool
    job: JobOut | None = Field(None, description="the analysis job (when analyse=true)")


class SyncAnalysis(BaseModel):
    """The answer of a synchronous classify/tag call."""

    model_config = ConfigDict(extra="allow")

    video_id: str
    duration: float
    job: JobOut
    categories: list[dict[str, Any]] | None = None
    tags: list[dict[str, Any]] | None = None


class FeedbackEventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: Literal["click", "view", "play", "like", "dislike", "share", "skip"]
    video_id: str = Field(pattern=VIDEO_REF)
    query: str | None = Field(None, max_length=1000)
    position: int | None = Field(None, ge=0, le=100_000)
    session: str | None = Field(None, max_length=64)
    user: str | None = Field(None, max_length=64)
    dwell_ms: int | None = Field(None, ge=0, le=86_400_000)
    extra: dict[str, Any] | None = None


class FeedbackBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[FeedbackEventIn] = Field(min_length=1, max_length=1000)


class FeedbackStored(BaseModel):
    stored: int


class ReportEntry(BaseModel):
    name: str
    kind: Literal["json", "html", "markdown", "text", "csv", "image"]
    size_bytes: int
    modified: str


class TaxonomyBody(BaseModel):
    categories: list[dict[str, Any]] = Field(
        max_length=10_000, description="level-1 records with nested 'children' (or flat records with 'parent')")


class TaxonomyOut(BaseModel):
    source: Literal["library", "default"]
    level1: int
    level2: int
    fingerprint: str
    categories: list[dict[str, Any]]
