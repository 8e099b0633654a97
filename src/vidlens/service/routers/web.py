"""The browser app: one HTML page whose script talks to the API (no build step; files under ``web/``)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

router = APIRouter(include_in_schema=False)
INDEX = Path(__file__).resolve().parent.parent / "web" / "index.html"


@router.get("/")
def index() -> FileResponse:
    """The single page of the web app (routing happens after ``#``)."""
    return FileResponse(INDEX, media_type="text/html", headers={"Cache-Control": "no-cache"})


@router.get("/app")
def app_alias() -> RedirectResponse:
    return RedirectResponse("/")
