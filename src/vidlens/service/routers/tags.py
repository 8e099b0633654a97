"""Tagging wiring: the tag library (read, add, review candidates), the ``tag`` analysis step, video tags.

:func:`wire` looks for ``vidlens.tags``. When it is installed the service offers the tag library under
``/api/v1/tags`` (listing, statistics, adding, approving and rejecting mined candidates), shows each
video's tags (score, core/related role and the recall channels that found them), and, when a
:class:`vidlens.tags.Tagger` can be built (or one is injected as ``engines["tagger"]``), tags every
analysed video and answers ``POST /api/v1/tag`` for a single clip. Tags assigned by the service are kept
in the tag library under source ``tagger``.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from vidlens.service import schemas
from vidlens.service.jobs import JobContext
from vidlens.service.routers._common import API
from vidlens.service.security import require_token
from vidlens.service.state import ServiceState, get_state

log = logging.getLogger(__name__)
State = Annotated[ServiceState, Depends(get_state)]
SOURCE = "tagger"


def wire(state: ServiceState) -> APIRouter | None:
    """Register the tag library (and the tagger step) on ``state`` when ``vidlens.tags`` is installed."""
    if importlib.util.find_spec("vidlens.tags") is None:
        return None
    # The engine itself is imported on first use: importing it takes seconds, which start-up should not pay.
    state.steps["tag"] = tag_step
    state.hooks["video_tags"] = video_tags
    state.capabilities["tags"] = True
    return router


_load_lock = threading.RLock()


def library_of(state: ServiceState) -> Any:
    """The library's :class:`vidlens.tags.TagLibrary` (opened on first use)."""
    with _load_lock:
        library = state.engines.get("tag_library")
        if library is None:
            from vidlens.tags import TagLibrary

            library = state.engines["tag_library"] = TagLibrary(state.lib, user="vidlens-service")
        return library


def tagger_of(state: ServiceState) -> Any:
    """The tagger in use: injected, else one built over the library's tags with the real text encoder."""
    library = library_of(state)
    with _load_lock:
        tagger = state.engines.get("tagger")
        if tagger is None:
            from vidlens.encoders import create_encoder
            from vidlens.features.encoding import DEFAULT_ENCODERS
            from vidlens.tags.tagger import Tagger

            tagger = Tagger(library, encoder=create_encoder(DEFAULT_ENCODERS["text"]))
            state.engines["tagger"] = tagger
        return tagger


def tag_step(state: ServiceState, ctx: JobContext, ids: list[str]) -> dict[str, Any]:
    """Tag ``ids`` from their stored features and keep the tags; a tagger that cannot run is reported in
    the job result, not raised (the extraction it follows stays done)."""
    try:
        from vidlens.tags.recall import VideoDoc

        tagger = tagger_of(state)
        library = library_of(state)
        done = 0
        for vid in ids:
            out = tagger.tag(VideoDoc.from_features(state.lib.features(vid)))
            for i, role in enumerate(("core", "related")):
                chosen = out.get(role) or []
                scores = {t["tag"]: t["score"] for t in chosen}
                channels = {}
                for t in chosen:
                    found = library.find(t["tag"])
                    if found is not None:
                        channels[found["id"]] = list(t.get("channels") or [])
                library.assign(vid, scores, source=SOURCE, role=role, channels=channels, replace=(i == 0),
                               create=False)
            done += 1
    except Exception as exc:
        log.warning("tagging of %d video(s) failed: %s", len(ids), exc)
        return {"tagged": 0, "error": f"{type(exc).__name__}: {exc}"}
    return {"tagged": done}


def video_tags(state: ServiceState, vid: str) -> list[dict[str, Any]]:
    """The tags on one video, best first: name, score, role, recall channels and where they came from."""
    from vidlens.tags.models import Tag, VideoTag

    library = library_of(state)
    with library.session() as s:
        rows = s.execute(select(Tag.name, Tag.kind, VideoTag.score, VideoTag.role, VideoTag.channels, VideoTag.source)
                         .join(Tag, Tag.id == VideoTag.tag_id).where(VideoTag.video_id == vid)).all()
    out = [{"name": name, "kind": kind, "score": score, "role": role, "channels": list(channels or []),
            "source": source} for name, kind, score, role, channels, source in rows]
    return sorted(out, key=lambda t: (t["role"] != "core", -(t["score"] or 0.0)))


router = APIRouter(prefix=API, tags=["tags"])
TagId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class TagIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: Literal["atomic", "phrase"] | None = None
    status: Literal["approved", "candidate"] = "approved"
    aliases: list[str] = Field(default_factory=list, max_length=50)


class ReviewNote(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, max_length=1000)


@router.get("/tags", response_model=list[dict[str, Any]])
def list_tags(
    state: State,
    status_: Annotated[Literal["approved", "candidate", "rejected"] | None, Query(alias="status")] = None,
    kind: Annotated[Literal["atomic", "phrase"] | None, Query()] = None,
    order: Annotated[Literal["id", "name", "-score", "-count", "-updated"], Query()] = "id",
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Tags of the library, filtered and paged."""
    return library_of(state).list(status=status_, kind=kind, order=order, offset=offset, limit=limit)


@router.get("/tags/stats", response_model=dict[str, Any])
def tag_stats(state: State) -> dict[str, Any]:
    """Counts by status, kind, source and class; tagged videos; the library version."""
    return library_of(state).stats()


@router.get("/tags/candidates", response_model=list[dict[str, Any]])
def candidates(state: State, offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    """Mined tags waiting for review, best scored first."""
    return library_of(state).list(status="candidate", order="-score", offset=offset, limit=limit)


@router.post("/tags", status_code=status.HTTP_201_CREATED, response_model=dict[str, Any],
             dependencies=[Depends(require_token)], responses={400: {"model": schemas.Problem}})
def add_tag(body: TagIn, state: State) -> dict[str, Any]:
    """Add a tag (an existing one with the same normal form is returned instead)."""
    return library_of(state).add(body.name, kind=body.kind, status=body.status, aliases=body.aliases)


@router.post("/tags/{tag_id}/{decision}", response_model=dict[str, Any], dependencies=[Depends(require_token)],
             responses={404: {"model": schemas.Problem}})
def review(tag_id: TagId, decision: Literal["approve", "reject"], state: State,
           body: ReviewNote | None = None) -> dict[str, Any]:
    """Approve or reject a tag (typically a mined candidate); recorded in the library's history."""
    library = library_of(state)
    if library.find(tag_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no tag {tag_id}")
    act = library.approve if decision == "approve" else library.reject
    act(tag_id, note=body.note if body else None)
    return library.get(tag_id)


@router.post("/tag", dependencies=[Depends(require_token)], response_model=schemas.SyncAnalysis,
             openapi_extra={"requestBody": schemas.UPLOAD_BODY},
             responses={202: {"model": schemas.SyncAnalysis, "description": "still running; follow the job"},
                        **{code: {"model": schemas.Problem} for code in (400, 401, 403, 413, 415)}})
async def tag_clip(
    request: Request, response: Response, state: State,
    title: Annotated[str | None, Query(max_length=500)] = None,
    wait: Annotated[float, Query(ge=0, le=600, description="seconds to wait for the analysis")] = 120,
) -> dict[str, Any]:
    """Tag one uploaded clip synchronously: ingested (duration-limited), analysed as a job (never twice),
    and its tags returned; 202 with the job if ``wait`` ran out."""
    from vidlens.service.routers.videos import analyse_upload_sync

    return await analyse_upload_sync(request, response, state, title=title, wait=wait,
                                     answer=lambda vid: {"tags": video_tags(state, vid)})
