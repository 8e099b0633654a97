"""Retrieval wiring: vector search, similar videos and near-duplicates from ``vidlens.retrieval``.

:func:`wire` looks for ``vidlens.retrieval``. When it is installed:

- ``GET /api/v1/search?engine=vector`` ranks by the retrieval engine's text → video vectors (the
  default ``engine=keyword`` stays the in-memory keyword index, which answers in about a millisecond);
- "similar videos" come from the fused video vectors, falling back to the keyword index for a video
  without vectors (or a library whose index cannot be opened);
- near-duplicate detection runs as a ``dedup`` background job; ``GET /api/v1/duplicates`` returns the
  groups the latest finished one found.

Without the engine the keyword index answers everything and ``/api/v1/duplicates`` is absent.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from vidlens.service.jobs import DONE, Job, JobContext, JobHandler
from vidlens.service.routers._common import API
from vidlens.service.state import ServiceState, get_state
from vidlens.service.textsearch import SearchHit

log = logging.getLogger(__name__)
State = Annotated[ServiceState, Depends(get_state)]

# Opening a library's vector index checks it against the stored features; one request at a time.
_index_lock = threading.Lock()


def wire(state: ServiceState) -> APIRouter | None:
    """Register vector search, similar and dedup on ``state`` when ``vidlens.retrieval`` is installed."""
    if importlib.util.find_spec("vidlens.retrieval") is None:
        return None
    state.hooks["vector_search"] = vector_search
    state.hooks["similar"] = similar
    state.job_kinds["dedup"] = JobHandler(lambda ctx, jobs: run_dedup(state, ctx, jobs))
    state.capabilities["retrieval"] = True
    state.capabilities["duplicates"] = True
    return router


def _hits(state: ServiceState, results: list[dict[str, Any]]) -> list[SearchHit]:
    from vidlens.service.routers.videos import thumbnails_of

    thumbs = thumbnails_of(state, [r["id"] for r in results])
    return [SearchHit(video_id=r["id"], score=float(r["score"]), title=r.get("title") or "",
                      duration=float(r.get("duration") or 0.0), has_thumbnail=r["id"] in thumbs, matched=["vector"])
            for r in results]


def vector_search(state: ServiceState, query: str, limit: int, offset: int,
                  filters: list[str]) -> tuple[int, list[SearchHit]]:
    """Text → video search with the retrieval engine (results of the page, after ``offset``)."""
    from vidlens.retrieval import search

    with _index_lock:
        results = search(state.lib, query, filters=filters or None, k=offset + limit)
    hits = _hits(state, results)
    return len(hits), hits[offset:offset + limit]


def similar(state: ServiceState, vid: str, limit: int) -> tuple[list[SearchHit], str] | None:
    """Nearest videos in the fused vector space, or None when the engine cannot answer for this video."""
    try:
        from vidlens.retrieval import similar as nearest

        with _index_lock:
            results = nearest(state.lib, vid, k=limit)
    except Exception as exc:  # no vectors yet, an index that cannot open…: the keyword fallback answers
        log.info("vector similar unavailable for %s: %s", vid, exc)
        return None
    return _hits(state, results), "vector"


def run_dedup(state: ServiceState, ctx: JobContext, jobs: list[Job]) -> dict[str, dict[str, Any]]:
    """Handler of ``dedup`` jobs: groups of near-duplicate videos over the whole library."""
    from vidlens.retrieval import dedup

    ctx.progress(jobs[0].id, 0, None, "comparing videos")
    with _index_lock:
        groups = dedup(state.lib)
    return {job.id: {"groups": groups[:1000], "n_groups": len(groups)} for job in jobs}


router = APIRouter(prefix=API, tags=["search"])


@router.get("/duplicates", response_model=dict[str, Any])
def duplicates(state: State) -> dict[str, Any]:
    """Near-duplicate groups found by the latest finished ``dedup`` job (queue one with
    ``POST /api/v1/jobs {"kind": "dedup"}``). Exact copies are one video already: ids are content hashes."""
    done = state.queue.list(status=DONE, kind="dedup", limit=1)
    if not done:
        return {"job": None, "groups": [], "n_groups": 0}
    job = done[0]
    return {"job": job["id"], "finished_at": job["finished_at"], "groups": job["result"].get("groups", []),
            "n_groups": job["result"].get("n_groups", 0)}
