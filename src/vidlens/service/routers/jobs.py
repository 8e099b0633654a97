"""Background jobs: submit extraction/analysis work, follow its progress, cancel it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status

from vidlens.service import schemas
from vidlens.service.routers._common import API, not_available
from vidlens.service.security import require_token
from vidlens.service.state import ServiceState, get_state
from vidlens.service.tasks import extraction_group

router = APIRouter(prefix=f"{API}/jobs", tags=["jobs"])
State = Annotated[ServiceState, Depends(get_state)]
JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=schemas.JobSubmitted,
             dependencies=[Depends(require_token)],
             responses={200: {"model": schemas.JobSubmitted, "description": "the same work is already queued"},
                        400: {"model": schemas.Problem}, 404: {"model": schemas.Problem}})
def submit(body: schemas.JobRequest, response: Response, state: State) -> dict[str, Any]:
    """Queue work on some videos (or all): ``extract`` features, ``analyse`` (extract, then classify and
    tag when those are wired), only ``classify`` / ``tag``, or ``dedup`` (near-duplicates, whole library).
    The same work already queued or running is returned instead of queued twice (``created: false``)."""
    if body.kind not in ("analyse", "extract", *state.steps, *state.job_kinds):
        raise not_available(body.kind)
    ids = None
    if body.video_ids is not None:
        with state.lib.store.session() as s:
            ids = sorted({state.lib.store.resolve_id(s, ref.lower()) for ref in body.video_ids})
    params = {"video_ids": ids, "modalities": sorted(body.modalities) if body.modalities else None,
              "force": body.force}
    job, created = state.queue.submit(body.kind, params, group=extraction_group(params))
    state.runner.wake()
    if not created:
        response.status_code = status.HTTP_200_OK
    return {"job": job, "created": created}


@router.get("", response_model=list[schemas.JobOut])
def list_jobs(state: State,
              status_: Annotated[Literal["queued", "running", "done", "failed", "cancelled"] | None,
                                 Query(alias="status")] = None,
              kind: Annotated[str | None, Query(max_length=32)] = None,
              offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
              limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[dict[str, Any]]:
    """Jobs, newest first."""
    return state.queue.list(status=status_, kind=kind, limit=limit, offset=offset)


@router.get("/{job_id}", response_model=schemas.JobOut, responses={404: {"model": schemas.Problem}})
def get_job(job_id: JobId, state: State) -> dict[str, Any]:
    """One job: status, progress (``done`` of ``total``), result or error."""
    job = state.queue.get(job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job {job_id}")
    return job


@router.post("/{job_id}/cancel", response_model=schemas.JobOut, dependencies=[Depends(require_token)],
             responses={404: {"model": schemas.Problem}})
def cancel_job(job_id: JobId, state: State) -> dict[str, Any]:
    """Cancel a queued job, or stop a running one after the video it is working on (work done is kept)."""
    job = state.queue.cancel(job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job {job_id}")
    return job
