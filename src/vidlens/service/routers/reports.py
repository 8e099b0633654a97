"""Evaluation reports written under ``LIBRARY/reports`` (by training and evaluation runs), for the viewer."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, status
from fastapi.responses import FileResponse, JSONResponse, Response

from vidlens.service import schemas
from vidlens.service.routers._common import API
from vidlens.service.state import ServiceState, get_state

router = APIRouter(prefix=f"{API}/reports", tags=["reports"])
State = Annotated[ServiceState, Depends(get_state)]

KINDS = {".json": "json", ".html": "html", ".htm": "html", ".md": "markdown", ".txt": "text", ".csv": "csv",
         ".png": "image", ".svg": "image", ".jpg": "image"}
_NAME = re.compile(r"^[\w\-.]+(/[\w\-.]+){0,4}$")
MAX_JSON_BYTES = 20 * 1024 * 1024


def _listing(root: FsPath) -> list[dict[str, Any]]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = FsPath(dirpath) / name
            kind = KINDS.get(path.suffix.lower())
            if kind is None or name.startswith("."):
                continue
            rel = path.relative_to(root).as_posix()
            if not _NAME.match(rel):
                continue
            st = path.stat()
            out.append({"name": rel, "kind": kind, "size_bytes": st.st_size,
                        "modified": datetime.fromtimestamp(st.st_mtime, UTC).isoformat()})
    return sorted(out, key=lambda r: r["modified"], reverse=True)


@router.get("", response_model=list[schemas.ReportEntry])
def list_reports(state: State) -> list[dict[str, Any]]:
    """Report files, newest first."""
    return _listing(state.lib.folder("reports"))


@router.get("/{name:path}", responses={200: {"content": {"application/json": {}, "text/html": {}}},
                                       404: {"model": schemas.Problem}})
def get_report(name: Annotated[str, Path(max_length=300)], state: State) -> Response:
    """One report. JSON comes back as JSON; HTML is served sandboxed (its scripts cannot run here)."""
    root = state.lib.folder("reports").resolve()
    if not _NAME.match(name) or ".." in name.split("/"):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such report")
    path = (root / name).resolve()
    kind = KINDS.get(path.suffix.lower())
    if not path.is_relative_to(root) or not path.is_file() or kind is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such report")
    if kind == "json":
        if path.stat().st_size > MAX_JSON_BYTES:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "report too large to view")
        try:
            return JSONResponse(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, UnicodeDecodeError):
            media = "text/plain"  # not valid JSON: shown as the text it is
    else:
        media = {"html": "text/html", "markdown": "text/markdown", "text": "text/plain", "csv": "text/csv"}.get(kind)
    if kind == "image":
        media = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg"}[path.suffix.lower()]
    return FileResponse(path, media_type=media, headers={
        "Content-Security-Policy": "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'",
        "X-Content-Type-Options": "nosniff"})
