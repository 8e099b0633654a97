"""Feedback: click, play, like … events, stored for ranking and retrieval training."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status

from vidlens.service import schemas
from vidlens.service.routers._common import API
from vidlens.service.security import require_token
from vidlens.service.state import ServiceState, get_state

router = APIRouter(prefix=f"{API}/feedback", tags=["feedback"])
State = Annotated[ServiceState, Depends(get_state)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=schemas.FeedbackStored,
             dependencies=[Depends(require_token)])
def record(body: schemas.FeedbackBatch, state: State) -> dict[str, Any]:
    """Store a batch of events (up to 1000) in one transaction."""
    n = state.feedback.record(e.model_dump() for e in body.events)
    for e in body.events:
        state.metrics.inc("vidlens_feedback_events_total", "Feedback events stored, by kind.", event=e.event)
    return {"stored": n}


@router.get("", response_model=list[dict[str, Any]], dependencies=[Depends(require_token)])
def recent(state: State, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
           video_id: Annotated[str | None, Query(pattern=schemas.VIDEO_REF)] = None) -> list[dict[str, Any]]:
    """Newest events first (they describe users, so reading them needs the token too)."""
    return state.feedback.recent(limit=limit, video_id=video_id)
