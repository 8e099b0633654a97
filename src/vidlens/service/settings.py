"""Typed settings of the HTTP service (``vidlens serve`` options map onto these one to one)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class ServiceSettings(BaseModel):
    """How one service process behaves.

    Attributes:
        token: the API token write endpoints require; None reads (or creates) the library's token file.
        token_file: where the token lives; default ``LIBRARY/service/api_token`` (mode 0600).
        cors_origins: origins allowed to call the API from a browser; empty (the default) sends no CORS
            headers at all.
        max_upload_bytes: uploads larger than this are refused (413) while they stream in.
        max_sync_seconds: longest clip the synchronous classify/tag endpoints accept.
        ingest_roots: server folders from which ``POST /api/v1/ingest`` may register files; empty refuses
            every server path, so an API token alone cannot read arbitrary files of the server.
        job_workers: background job threads (encoders are heavy: 1 suits a 2-core machine).
        job_stale_after_s: a running job whose heartbeat is older than this is taken over (its process died).
        search_refresh_s: how often the text index looks for changes made by other processes.
        search_cache_size: answered searches kept per index version (0 turns the cache off).
        web: serve the web app at ``/``.
    """

    model_config = ConfigDict(extra="forbid")

    token: str | None = Field(None, min_length=16, repr=False)
    token_file: Path | None = None
    cors_origins: list[str] = Field(default_factory=list)
    max_upload_bytes: int = Field(512 * 1024 * 1024, ge=1024)
    max_sync_seconds: float = Field(120.0, gt=0)
    ingest_roots: list[Path] = Field(default_factory=list)
    job_workers: int = Field(1, ge=1, le=32)
    job_stale_after_s: float = Field(20.0, gt=0)
    search_refresh_s: float = Field(10.0, gt=0)
    search_cache_size: int = Field(4096, ge=0, le=1_000_000)
    web: bool = True
