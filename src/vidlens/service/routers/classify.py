"""Classification wiring: the ``classify`` analysis step, category hooks, synchronous classify of a clip.

:func:`wire` looks for ``vidlens.classify``. When it is installed it registers the ``classify`` analysis
step (so every analysed upload gets categories), the hooks the core routes use (categories of a video,
category distribution, category filter for search) and ``POST /api/v1/classify``. Without it the route
is absent and uploads are analysed without categories.

The classifier is the newest trained model of the library (``LIBRARY/models``), or else the zero-shot
classifier over the library's taxonomy; tests inject one. Its latest answer per video is kept in the
``service_video_categories`` table.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import JSON, DateTime, Float, String, delete, func, or_, select
from sqlalchemy.orm import Mapped, mapped_column

from vidlens.service import schemas
from vidlens.service.jobs import JobContext
from vidlens.service.routers._common import API
from vidlens.service.security import require_token
from vidlens.service.state import ServiceState, get_state
from vidlens.store.models import Base, utcnow

log = logging.getLogger(__name__)
State = Annotated[ServiceState, Depends(get_state)]
TOP_K = 5


class VideoCategory(Base):
    """The latest classification of one video: its top category pair and the next ones."""

    __tablename__ = "service_video_categories"

    video_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    l1: Mapped[str] = mapped_column(String(128), index=True)
    l2: Mapped[str] = mapped_column(String(128), index=True)
    l1_confidence: Mapped[float] = mapped_column(Float)
    l2_confidence: Mapped[float] = mapped_column(Float)
    top_k: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    method: Mapped[str] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


def wire(state: ServiceState) -> APIRouter | None:
    """Register the classifier on ``state`` when ``vidlens.classify`` is installed; returns its router."""
    state.capabilities["taxonomy"] = True
    if state.engines.get("classifier") is None and importlib.util.find_spec("vidlens.classify") is None:
        return None
    state.steps["classify"] = classify_step
    state.hooks.update(video_categories=video_categories, category_distribution=category_distribution,
                       category_members=category_members)
    state.capabilities["classify"] = True
    return router


_load_lock = threading.Lock()


def classifier_of(state: ServiceState) -> Any:
    """The classifier in use: injected, else the library's newest trained model, else zero-shot."""
    with _load_lock:
        clf = state.engines.get("classifier")
        if clf is None:
            from vidlens.classify.runs import find_model, zero_shot_for_library
            from vidlens.classify.trained import TrainedClassifier
            from vidlens.service.routers.taxonomy import load as load_taxonomy

            folder = find_model(None, state.lib)
            if folder is not None:
                clf = TrainedClassifier.load(folder)
            else:
                clf = zero_shot_for_library(state.lib, load_taxonomy(state)[0])
            state.engines["classifier"] = clf
        return clf


def classify_step(state: ServiceState, ctx: JobContext, ids: list[str]) -> dict[str, Any]:
    """Classify ``ids`` from their stored features and keep the answers; a classifier that cannot run
    (no model, features of another encoder version) is reported in the job result, not raised."""
    try:
        from vidlens.classify.runs import classify_library

        records = classify_library(state.lib, classifier_of(state), ids=ids, top_k=TOP_K)
    except Exception as exc:  # a classifier that cannot run must not fail the extraction it follows
        log.warning("classification of %d video(s) failed: %s", len(ids), exc)
        return {"classified": 0, "error": f"{type(exc).__name__}: {exc}"}
    done, errors = 0, []
    with state.lib.store.session() as s:
        for r in records:
            if "error" in r:
                errors.append({"video_id": r.get("id"), "message": r["error"]})
                continue
            s.execute(delete(VideoCategory).where(VideoCategory.video_id == r["id"]))
            s.add(VideoCategory(video_id=r["id"], l1=r["l1"], l2=r["l2"], l1_confidence=r["confidence"]["l1"],
                                l2_confidence=r["confidence"]["l2"], top_k=r.get("top_k") or [],
                                method=r.get("method", ""), model=r.get("model")))
            done += 1
        s.commit()
    return {"classified": done, "errors": errors[:50]}


def video_categories(state: ServiceState, vid: str) -> list[dict[str, Any]]:
    """The stored categories of one video, best first: level 1, level 2 and confidence."""
    with state.lib.store.session() as s:
        row = s.get(VideoCategory, vid)
        if row is None:
            return []
        out = [{"level1": row.l1, "level2": row.l2, "score": row.l2_confidence, "level1_score": row.l1_confidence,
                "method": row.method, "model": row.model}]
        for alt in row.top_k or []:
            if alt.get("l2") != row.l2:
                out.append({"level1": alt.get("l1"), "level2": alt.get("l2"), "score": alt.get("confidence"),
                            "method": row.method, "model": row.model})
        return out


def category_distribution(state: ServiceState) -> list[dict[str, Any]]:
    """Videos per level-1 category, with their level-2 break-down, largest first."""
    with state.lib.store.session() as s:
        rows = s.execute(select(VideoCategory.l1, VideoCategory.l2, func.count())
                         .group_by(VideoCategory.l1, VideoCategory.l2)).all()
    by_l1: dict[str, dict[str, Any]] = {}
    for l1, l2, n in rows:
        entry = by_l1.setdefault(l1, {"name": l1, "count": 0, "children": []})
        entry["count"] += int(n)
        entry["children"].append({"name": l2, "count": int(n)})
    out = sorted(by_l1.values(), key=lambda e: -e["count"])
    for entry in out:
        entry["children"].sort(key=lambda c: -c["count"])
    return out


def category_members(state: ServiceState, name: str) -> set[str]:
    """Ids of the videos whose level-1 or level-2 category is ``name``."""
    with state.lib.store.session() as s:
        return set(s.scalars(select(VideoCategory.video_id).where(
            or_(VideoCategory.l1 == name, VideoCategory.l2 == name))))


router = APIRouter(prefix=API, tags=["classify"])


@router.post("/classify", dependencies=[Depends(require_token)], response_model=schemas.SyncAnalysis,
             openapi_extra={"requestBody": schemas.UPLOAD_BODY},
             responses={202: {"model": schemas.SyncAnalysis, "description": "still running; follow the job"},
                        **{code: {"model": schemas.Problem} for code in (400, 401, 403, 413, 415)}})
async def classify_clip(
    request: Request, response: Response, state: State,
    title: Annotated[str | None, Query(max_length=500)] = None,
    wait: Annotated[float, Query(ge=0, le=600, description="seconds to wait for the analysis")] = 120,
) -> dict[str, Any]:
    """Classify one uploaded clip synchronously: it is ingested (duration-limited), analysed as a job
    (so it never runs twice), and its categories returned; 202 with the job if ``wait`` ran out."""
    from vidlens.service.routers.videos import analyse_upload_sync

    return await analyse_upload_sync(request, response, state, title=title, wait=wait,
                                     answer=lambda vid: {"categories": video_categories(state, vid)})
