"""Health, Prometheus metrics, library status and recorded per-item errors."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy import func, select

import vidlens
from vidlens.service import schemas
from vidlens.service.metrics import CONTENT_TYPE
from vidlens.service.routers._common import API, is_trusted
from vidlens.service.security import redact
from vidlens.service.state import ServiceState, get_state
from vidlens.store.models import Extraction

router = APIRouter(tags=["system"])
State = Annotated[ServiceState, Depends(get_state)]


@router.get("/healthz", response_model=schemas.Health)
def health(state: State) -> dict[str, Any]:
    """Liveness and readiness: answers only once the library DB is reachable."""
    return {"status": "ok", "version": vidlens.__version__, "videos": state.lib.store.counts()["videos"],
            "search_documents": len(state.search), "jobs": state.queue.counts()}


@router.get("/metrics", response_class=PlainTextResponse,
            responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}})
def metrics(state: State) -> PlainTextResponse:
    """Request counts and latencies by route, videos, jobs by status (Prometheus text format 0.0.4)."""
    return PlainTextResponse(state.metrics.render(), media_type=CONTENT_TYPE)


def feature_counts(state: ServiceState) -> dict[str, dict[str, int]]:
    """feature → {status: number of videos}."""
    out: dict[str, dict[str, int]] = {}
    with state.lib.store.session() as s:
        rows = s.execute(select(Extraction.feature, Extraction.status, func.count())
                         .group_by(Extraction.feature, Extraction.status))
        for feature, status_name, n in rows:
            out.setdefault(feature, {})[status_name] = int(n)
    return out


@router.get(f"{API}/status", response_model=schemas.LibraryStatus)
def library_status(request: Request, state: State) -> dict[str, Any]:
    """What is in the library: counts, features done, jobs, category distribution, wired engines."""
    counts = state.lib.store.counts()
    categories_of = state.hooks.get("category_distribution")
    out: dict[str, Any] = {
        **{k: counts[k] for k in ("videos", "total_duration_s", "with_audio", "with_video", "errors",
                                  "errors_by_stage")},
        "features": feature_counts(state),
        "jobs": state.queue.counts(),
        "search_documents": len(state.search),
        "categories": categories_of(state) if categories_of else None,
        "capabilities": capabilities(state),
    }
    if is_trusted(request, state):
        out["library"] = str(state.lib.root)
        out["database"] = redact(state.lib.store.url)
    return out


def capabilities(state: ServiceState) -> dict[str, bool]:
    """Which optional engines are wired (all False until their modules land)."""
    return {k: bool(state.capabilities.get(k)) for k in ("classify", "tags", "retrieval", "duplicates",
                                                          "taxonomy")}


@router.get(f"{API}/errors", response_model=list[dict[str, Any]])
def errors(state: State, stage: Annotated[str | None, Query(max_length=64)] = None,
           limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    """Per-item errors still standing (ingest and extraction), newest first."""
    return state.lib.errors(stage=stage, limit=limit)
