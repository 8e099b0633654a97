"""Text search over the library, and "more like this" for one video."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from vidlens.service import schemas
from vidlens.service.routers._common import API, not_available, thumbnail_url
from vidlens.service.routers.videos import resolve
from vidlens.service.state import ServiceState, get_state
from vidlens.service.textsearch import tokenize

router = APIRouter(prefix=API, tags=["search"])
State = Annotated[ServiceState, Depends(get_state)]


def _hit(h: Any) -> dict[str, Any]:
    return {"id": h.video_id, "score": h.score, "title": h.title, "duration": h.duration,
            "thumbnail_url": thumbnail_url(h.video_id, h.has_thumbnail), "matched": h.matched}


@router.get("/search", response_model=schemas.SearchResults)
async def search(
    state: State,
    q: Annotated[str, Query(min_length=1, max_length=500, description="free text, Chinese and/or English")],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1000)] = 0,
    min_duration: Annotated[float | None, Query(ge=0, le=1e7)] = None,
    max_duration: Annotated[float | None, Query(ge=0, le=1e7)] = None,
    has_speech: Annotated[bool | None, Query(description="only videos with (or without) a transcript")] = None,
    language: Annotated[str | None, Query(pattern=r"^[a-z]{2,3}$", description="transcript language")] = None,
    category: Annotated[str | None, Query(max_length=100, description="when a classifier is wired")] = None,
    engine: Annotated[Literal["keyword", "vector"], Query(
        description="keyword: in-memory index over all text fields; vector: the retrieval engine")] = "keyword",
) -> dict[str, Any]:
    """Videos whose title, summary, product text, transcript, on-screen text or visual concepts match.

    ``keyword`` (default) is answered in memory without a DB round trip; ``vector`` ranks by the
    retrieval engine's text → video vectors, when that engine is wired.
    """
    key = (q, limit, offset, min_duration, max_duration, has_speech, language, category, engine,
           state.search.version)
    cached = state.search_cache.get(key)
    if cached is not None:
        return Response(cached, media_type="application/json")  # type: ignore[return-value]
    allowed = None
    if category is not None and "category_members" in state.hooks:
        allowed = state.hooks["category_members"](state, category)
    if engine == "vector":
        if "vector_search" not in state.hooks:
            raise not_available("vector search")
        filters = [f"duration>={min_duration}"] if min_duration is not None else []
        filters += [f"duration<={max_duration}"] if max_duration is not None else []
        total, hits = await anyio.to_thread.run_sync(
            lambda: state.hooks["vector_search"](state, q, limit, offset, filters))
        if allowed is not None:
            hits = [h for h in hits if h.video_id in allowed]
    else:
        total, hits = state.search.search(q, limit=limit, offset=offset, min_duration=min_duration,
                                          max_duration=max_duration, has_speech=has_speech, language=language,
                                          allowed=allowed)
    # Serialised by hand and cached: the hot path skips re-validating its own output, and a repeated
    # query (search traffic is dominated by head queries) costs a dict look-up until the index changes.
    body = json.dumps({"query": q, "total": total, "offset": offset, "limit": limit, "engine": engine,
                       "items": [_hit(h) for h in hits]}, ensure_ascii=False, separators=(",", ":")).encode()
    if engine == "keyword" and category is None:
        state.search_cache.put(key, body)
    return Response(body, media_type="application/json")  # type: ignore[return-value]


@router.get("/videos/{video_id}/similar", response_model=schemas.SearchResults,
            responses={404: {"model": schemas.Problem}})
def similar(
    state: State,
    video_id: Annotated[str, Path(pattern=schemas.VIDEO_REF)],
    limit: Annotated[int, Query(ge=1, le=100)] = 12,
) -> dict[str, Any]:
    """Videos like this one: nearest neighbours in the retrieval index when it is wired, otherwise the
    keyword index queried with this video's own title, transcript and on-screen text."""
    vid = resolve(state, video_id)
    found = state.hooks["similar"](state, vid, limit) if "similar" in state.hooks else None
    if found is not None:
        hits, name = found
        return {"query": vid, "total": len(hits), "offset": 0, "limit": limit, "engine": name,
                "items": [_hit(h) for h in hits]}
    text = _own_text(state, vid)
    _total, hits = state.search.search(text, limit=limit + 1)
    hits = [h for h in hits if h.video_id != vid][:limit]
    return {"query": vid, "total": len(hits), "offset": 0, "limit": limit, "engine": "keyword",
            "items": [_hit(h) for h in hits]}


def _own_text(state: ServiceState, vid: str, max_tokens: int = 48) -> str:
    """The most telling words of a video: title first, then transcript and on-screen text."""
    from vidlens.store.models import Extraction

    record = state.lib.get(vid)
    parts = [record.get("title") or "", record.get("summary") or ""]
    with state.lib.store.session() as s:
        for feature in ("asr", "ocr"):
            row = s.get(Extraction, (vid, feature))
            if row is not None and row.status == "ok":
                parts.append((row.result or {}).get("text") or "")
    tokens = list(dict.fromkeys(tokenize(" ".join(parts))))[:max_tokens]
    # Bigram tokens re-tokenise to themselves, so joining with spaces keeps them intact.
    return " ".join(tokens)
