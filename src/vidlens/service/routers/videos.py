"""Videos: list, upload, detail (metadata, transcript, OCR, concepts, categories, tags), media, thumbnail."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from sqlalchemy import func, select
from starlette.requests import ClientDisconnect

from vidlens.ingest import IngestItem, Ingestor, ItemResult
from vidlens.media import MediaInfo, first_readable, probe
from vidlens.service import schemas
from vidlens.service.routers._common import API, is_trusted, thumbnail_url
from vidlens.service.security import require_token
from vidlens.service.state import ServiceState, get_state
from vidlens.service.tasks import extraction_group
from vidlens.service.uploads import INCOMING, ReceivedUpload, accept_media, media_type_of, receive_upload
from vidlens.store.models import Extraction, ItemError, Video, VideoPath

router = APIRouter(prefix=f"{API}/videos", tags=["videos"])
State = Annotated[ServiceState, Depends(get_state)]
VideoRef = Annotated[str, PathParam(pattern=schemas.VIDEO_REF, description="video id or unique prefix (≥ 4)")]

def resolve(state: ServiceState, ref: str) -> str:
    """A full video id from an id or unique prefix (404 otherwise)."""
    with state.lib.store.session() as s:
        return state.lib.store.resolve_id(s, ref.lower())


def thumbnails_of(state: ServiceState, ids: list[str]) -> set[str]:
    """Which of ``ids`` have a cover thumbnail."""
    if not ids:
        return set()
    with state.lib.store.session() as s:
        rows = s.execute(select(Extraction.video_id, Extraction.result).where(
            Extraction.video_id.in_(ids), Extraction.feature == "cover", Extraction.status == "ok"))
        return {vid for vid, result in rows if (result or {}).get("thumbnail")}


@router.get("", response_model=schemas.VideoPage)
def list_videos(state: State, offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
                limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
    """Videos, newest first."""
    with state.lib.store.session() as s:
        total = s.scalar(select(func.count(Video.id))) or 0
        videos = list(s.scalars(select(Video).order_by(Video.created_at.desc(), Video.id)
                                .offset(offset).limit(limit)))
    thumbs = thumbnails_of(state, [v.id for v in videos])
    items = [{"id": v.id, "title": v.title, "duration": float(v.duration or 0.0), "has_video": bool(v.has_video),
              "has_audio": bool(v.has_audio), "thumbnail_url": thumbnail_url(v.id, v.id in thumbs),
              "created_at": v.created_at.isoformat() if v.created_at else None} for v in videos]
    return {"total": int(total), "offset": offset, "limit": limit, "items": items}


async def receive_and_ingest(request: Request, state: ServiceState, title: str | None, summary: str | None,
                             labels: str | None, max_seconds: float | None = None
                             ) -> tuple[ItemResult, dict[str, str]]:
    """Stream an upload to disk, check it is media (and not longer than ``max_seconds``), ingest it.

    Returns:
        The ingest result and the multipart text fields (empty for a raw body).
    """
    try:
        received = await receive_upload(request, state.uploads / INCOMING, state.settings.max_upload_bytes)
    except ClientDisconnect:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "client went away during the upload") from None
    form = received.fields
    if max_seconds is not None:
        info = await anyio.to_thread.run_sync(probe_or_discard, received)
        if info.duration > max_seconds:
            received.discard()
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"the clip is {info.duration:.1f} s long; this "
                                f"endpoint takes clips of at most {max_seconds:g} s (upload it instead)")
    path, _info = await anyio.to_thread.run_sync(accept_media, received, state.uploads)
    metadata: dict[str, Any] = {}
    title, summary, labels = form.get("title", title), form.get("summary", summary), form.get("labels", labels)
    if title is not None:
        metadata["title"] = title.strip()[:500] or None
    if summary is not None:
        metadata["summary"] = summary.strip()[:5000] or None
    if labels is not None:
        metadata["labels"] = [x.strip() for x in labels.split(",") if x.strip()][:100]
    item = IngestItem(path=str(path), source="upload", metadata=metadata)
    report = await anyio.to_thread.run_sync(lambda: Ingestor(state.lib.store, workers=1).run([item]))
    result = report.results[0]
    state.metrics.inc("vidlens_uploads_total", "Uploads by outcome.", outcome=result.status)
    if result.status == "failed" or result.video_id is None:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"could not ingest the upload: {result.message}")
    await anyio.to_thread.run_sync(state.search.update, [result.video_id])
    return result, form


def probe_or_discard(received: ReceivedUpload) -> MediaInfo:
    """Probe an upload; the temporary file is removed when it is not media."""
    try:
        return probe(received.path)
    except BaseException:
        received.discard()
        raise


def submit_analysis(state: ServiceState, video_id: str) -> dict[str, Any]:
    """Queue (or find already queued) the analysis of one video."""
    params = {"video_ids": [video_id], "modalities": None, "force": False}
    job, _created = state.queue.submit("analyse", params, group=extraction_group(params))
    state.runner.wake()
    return job


def _video_facts(state: ServiceState, vid: str) -> dict[str, Any]:
    with state.lib.store.session() as s:
        video = s.get(Video, vid)
        assert video is not None
        return {"video_id": video.id, "duration": float(video.duration or 0.0), "has_video": bool(video.has_video),
                "has_audio": bool(video.has_audio)}


@router.post("", status_code=status.HTTP_201_CREATED, response_model=schemas.UploadResult,
             dependencies=[Depends(require_token)], openapi_extra={"requestBody": schemas.UPLOAD_BODY},
             responses={200: {"model": schemas.UploadResult, "description": "content already in the library"},
                        **{code: {"model": schemas.Problem} for code in (400, 401, 403, 413, 415)}})
async def upload(
    request: Request,
    response: Response,
    state: State,
    title: Annotated[str | None, Query(max_length=500)] = None,
    summary: Annotated[str | None, Query(max_length=5000)] = None,
    labels: Annotated[str | None, Query(max_length=2000, description="comma-separated")] = None,
    analyse: Annotated[bool, Query(description="queue extraction and analysis")] = True,
) -> dict[str, Any]:
    """Upload one video or audio file: the raw body, or multipart with a ``file`` part (+ text fields).

    The body streams to disk under the size limit; the file is then decoded to check it really is media
    (the client's name and type are ignored), stored under its content id, and ingested. Uploading the
    same bytes again returns the existing video (200) and queues no second analysis.
    """
    result, form = await receive_and_ingest(request, state, title, summary, labels)
    if "analyse" in form:
        analyse = form["analyse"].strip().lower() in ("1", "true", "yes", "on")
    job = submit_analysis(state, result.video_id) if analyse else None
    if result.status != "added":
        response.status_code = status.HTTP_200_OK
    return {**_video_facts(state, result.video_id), "status": result.status, "job": job}


async def analyse_upload_sync(request: Request, response: Response, state: ServiceState, *, title: str | None,
                              wait: float, answer: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    """What the synchronous classify/tag endpoints share: a duration-limited upload, analysed as a job
    (so concurrent and repeated calls never analyse a clip twice), waited for up to ``wait`` seconds."""
    result, _form = await receive_and_ingest(request, state, title, None, None,
                                             max_seconds=state.settings.max_sync_seconds)
    job = submit_analysis(state, result.video_id)
    deadline = time.monotonic() + wait
    while job["status"] in ("queued", "running") and time.monotonic() < deadline:
        await anyio.sleep(0.1)
        job = state.queue.get(job["id"]) or job
    out = {**_video_facts(state, result.video_id), "job": job}
    if job["status"] in ("queued", "running"):
        response.status_code = status.HTTP_202_ACCEPTED
        return out
    return {**out, **answer(result.video_id)}


@router.get("/{video_id}", response_model=schemas.VideoDetail,
            responses={404: {"model": schemas.Problem}})
def video_detail(video_id: VideoRef, request: Request, state: State) -> dict[str, Any]:
    """Everything known about one video: metadata, feature states, transcript, OCR lines, visual concepts,
    categories and tags (when those engines are wired), and its standing errors."""
    vid = resolve(state, video_id)
    with state.lib.store.session() as s:
        video = s.get(Video, vid)
        assert video is not None
        record = video.to_dict()
        rows = {r.feature: r for r in s.scalars(select(Extraction).where(Extraction.video_id == vid))}
        errors = [e.to_dict() for e in s.scalars(select(ItemError).where(ItemError.video_id == vid))]

    def ok(feature: str) -> dict[str, Any] | None:
        row = rows.get(feature)
        return (row.result or {}) if row is not None and row.status == "ok" else None

    asr, ocr, frames, cover = ok("asr"), ok("ocr"), ok("frames"), ok("cover")
    transcript = None
    if asr is not None:
        transcript = {"language": asr.get("language"), "text": asr.get("text") or "",
                      "segments": [{"start": float(seg.get("start", 0.0)), "end": float(seg.get("end", 0.0)),
                                    "text": str(seg.get("text", ""))} for seg in asr.get("segments") or []]}
    out = {k: record.get(k) for k in ("id", "title", "summary", "extra", "size_bytes", "container", "width",
                                      "height", "fps", "created_at", "updated_at")}
    out.update(
        labels=record.get("labels") or [], product_titles=record.get("product_titles") or [],
        product_categories=record.get("product_categories") or [], duration=float(record.get("duration") or 0.0),
        has_video=bool(record.get("has_video")), has_audio=bool(record.get("has_audio")),
        media_url=f"{API}/videos/{vid}/media",
        media_type=media_type_of(record.get("container"), bool(record.get("has_video"))),
        thumbnail_url=thumbnail_url(vid, bool(cover and cover.get("thumbnail"))),
        features={f: {"status": r.status, "message": r.message} for f, r in sorted(rows.items())},
        transcript=transcript,
        ocr=[{"text": str(line.get("text", "")), "start": line.get("start"), "end": line.get("end"),
              "score": line.get("score")} for line in (ocr or {}).get("lines") or []],
        concepts=[{"name": str(c.get("name", "")), "score": float(c.get("score", 0.0))}
                  for c in (frames or {}).get("concepts") or []],
        categories=state.hooks["video_categories"](state, vid) if "video_categories" in state.hooks else [],
        tags=state.hooks["video_tags"](state, vid) if "video_tags" in state.hooks else [],
        errors=errors,
        paths=record.get("paths") if is_trusted(request, state) else None,
    )
    return out


def readable_file(state: ServiceState, vid: str) -> Path | None:
    """The first of a video's known paths that is a readable file."""
    with state.lib.store.session() as s:
        raws = list(s.scalars(select(VideoPath.path_raw).where(VideoPath.video_id == vid).order_by(VideoPath.id)))
    path = first_readable(raws)
    return Path(path) if path is not None else None


@router.get("/{video_id}/media", response_class=FileResponse,
            responses={200: {"content": {"video/mp4": {}}, "description": "the file (HTTP Range supported)"},
                       206: {"description": "a byte range of the file"}, 404: {"model": schemas.Problem}})
def media(video_id: VideoRef, state: State) -> FileResponse:
    """The video file itself, for the player; honours ``Range`` requests (seeking)."""
    vid = resolve(state, video_id)
    path = readable_file(state, vid)
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "the video's file is not readable on the server any more")
    record = state.lib.get(vid)
    return FileResponse(path, media_type=media_type_of(record.get("container"), bool(record.get("has_video"))),
                        headers={"Cache-Control": "private, max-age=3600"}, content_disposition_type="inline")


@router.get("/{video_id}/thumbnail", response_class=FileResponse,
            responses={200: {"content": {"image/jpeg": {}}}, 404: {"model": schemas.Problem}})
def thumbnail(video_id: VideoRef, state: State) -> FileResponse:
    """The cover thumbnail (JPEG, at most 320 px), made during extraction."""
    vid = resolve(state, video_id)
    with state.lib.store.session() as s:
        row = s.get(Extraction, (vid, "cover"))
        name = (row.result or {}).get("thumbnail") if row is not None and row.status == "ok" else None
    # The name comes from our own DB, but is still checked to be a plain file name in the folder.
    if not name or name != os.path.basename(name) or name.startswith("."):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "this video has no thumbnail (yet)")
    path = state.lib.folder("thumbnails") / name
    if not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "this video has no thumbnail (yet)")
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=86400"})
