"""Text search over the library, and "more like this" for one video.

``GET /api/v1/search`` is the hot path: its simplest form is answered by :class:`KeywordSearchFastPath`
before FastAPI's routing, everything else by the route; both through :func:`keyword_answer`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from vidlens.service import schemas
from vidlens.service.routers._common import API, not_available, thumbnail_url
from vidlens.service.routers.videos import resolve
from vidlens.service.state import ServiceState, get_state
from vidlens.service.textsearch import tokenize

router = APIRouter(prefix=API, tags=["search"])
State = Annotated[ServiceState, Depends(get_state)]
MAX_QUERY, MAX_LIMIT, MAX_OFFSET = 500, 100, 1000
_SIMPLE_KEYS = {"q", "limit", "offset"}


def _json_dumps() -> Callable[[Any], bytes]:
    """Compact UTF-8 JSON: orjson when installed (several times faster), the standard library otherwise."""
    try:
        import orjson
    except ImportError:
        return lambda obj: json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
    return orjson.dumps


dumps = _json_dumps()


def _hit(h: Any) -> dict[str, Any]:
    return {"id": h.video_id, "score": h.score, "title": h.title, "duration": h.duration,
            "thumbnail_url": thumbnail_url(h.video_id, h.has_thumbnail), "matched": h.matched}


@router.get("/search", response_model=schemas.SearchResults)
async def search(
    state: State,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY, description="free text, Chinese and/or English")],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
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
    if engine == "keyword":
        body = keyword_answer(state, q, limit, offset, min_duration, max_duration, has_speech, language, category)
        return Response(body, media_type="application/json")  # type: ignore[return-value]
    if "vector_search" not in state.hooks:
        raise not_available("vector search")
    allowed = _category_members(state, category)
    filters = [f"duration>={min_duration}"] if min_duration is not None else []
    filters += [f"duration<={max_duration}"] if max_duration is not None else []
    total, hits = await anyio.to_thread.run_sync(
        lambda: state.hooks["vector_search"](state, q, limit, offset, filters))
    if allowed is not None:
        hits = [h for h in hits if h.video_id in allowed]
    return Response(_body(q, total, offset, limit, engine, hits), media_type="application/json")  # type: ignore[return-value]


def keyword_answer(state: ServiceState, q: str, limit: int = 20, offset: int = 0, min_duration: float | None = None,
                   max_duration: float | None = None, has_speech: bool | None = None, language: str | None = None,
                   category: str | None = None) -> bytes:
    """The JSON body answering a keyword search (validated arguments), from the answer cache when the
    index has not changed since: search traffic is dominated by head queries, and a cached answer costs
    a dict look-up. Touches no DB unless ``category`` asks the classifier's hook."""
    key = (q, limit, offset, min_duration, max_duration, has_speech, language, category, state.search.version)
    cached = state.search_cache.get(key)
    if cached is not None:
        return cached
    total, hits = state.search.search(q, limit=limit, offset=offset, min_duration=min_duration,
                                      max_duration=max_duration, has_speech=has_speech, language=language,
                                      allowed=_category_members(state, category))
    body = _body(q, total, offset, limit, "keyword", hits)
    if category is None:  # category members change without the index knowing
        state.search_cache.put(key, body)
    return body


def _category_members(state: ServiceState, category: str | None) -> set[str] | None:
    if category is None or "category_members" not in state.hooks:
        return None
    return state.hooks["category_members"](state, category)


def _body(q: str, total: int, offset: int, limit: int, engine: str, hits: list[Any]) -> bytes:
    # Serialised by hand: the hot path skips re-validating its own output.
    return dumps({"query": q, "total": total, "offset": offset, "limit": limit, "engine": engine,
                  "items": [_hit(h) for h in hits]})


class KeywordSearchFastPath:
    """ASGI middleware that answers the commonest request, ``GET /api/v1/search?q=…`` with at most
    ``limit`` and ``offset`` besides, without FastAPI's routing and parameter machinery (which costs
    several times the search itself).

    It takes only requests whose parameters it can check beyond doubt (each at most once, integers as
    plain digits, within the route's bounds) and answers them with :func:`keyword_answer`, exactly as the
    route would; everything else, errors included, goes on to the route, so the API and its OpenAPI
    description do not change.

    Args:
        app: the next ASGI app.
        state: the service state.
        route: the FastAPI route of ``GET /api/v1/search`` (recorded in the scope for the metrics).
    """

    def __init__(self, app: ASGIApp, state: ServiceState, route: Any):
        self.app = app
        self.state = state
        self.route = route
        self.path = f"{API}/search"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == self.path and scope["method"] == "GET":
            args = _simple_search_args(scope["query_string"])
            if args is not None:
                scope["route"] = self.route
                body = keyword_answer(self.state, *args)
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-length", str(len(body)).encode()),
                                        (b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def _simple_search_args(query_string: bytes) -> tuple[str, int, int] | None:
    """(q, limit, offset) when the query string holds ``q`` and at most ``limit`` and ``offset``, each
    once and valid; None for anything the route must judge."""
    params = QueryParams(query_string)
    keys = [k for k, _v in params.multi_items()]
    if len(keys) > len(_SIMPLE_KEYS) or len(set(keys)) != len(keys) or not set(keys) <= _SIMPLE_KEYS:
        return None
    q = params.get("q")
    if q is None or not 1 <= len(q) <= MAX_QUERY:
        return None
    limit, offset = params.get("limit", "20"), params.get("offset", "0")
    if not (limit.isascii() and limit.isdigit() and offset.isascii() and offset.isdigit()
            and len(limit) <= 4 and len(offset) <= 5):
        return None
    limit_n, offset_n = int(limit), int(offset)
    if not (1 <= limit_n <= MAX_LIMIT and 0 <= offset_n <= MAX_OFFSET):
        return None
    return q, limit_n, offset_n


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
