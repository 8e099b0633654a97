"""The HTTP routes, one module per area.

``system`` (health, metrics, status), ``videos`` (list, upload, detail, media, thumbnails), ``ingest``
(server paths), ``jobs``, ``search``, ``feedback``, ``taxonomy``, ``reports`` and ``web`` (the browser
app). ``classify``, ``tags`` and ``retrieval`` wire the optional engines: each checks whether its engine is
installed and, when it is, adds its analysis step, its hooks and its routes (absent otherwise).
"""

from __future__ import annotations

from fastapi import APIRouter

from vidlens.service.routers import (
    classify,
    feedback,
    ingest,
    jobs,
    reports,
    retrieval,
    search,
    system,
    tags,
    taxonomy,
    videos,
    web,
)
from vidlens.service.state import ServiceState

_ENGINES = (classify, tags, retrieval)


def all_routers(web_app: bool = True) -> list[APIRouter]:
    """The core routers, in the order their routes are matched."""
    out = [system.router, videos.router, ingest.router, jobs.router, search.router, taxonomy.router,
           feedback.router, reports.router]
    return [*out, web.router] if web_app else out


def wire_engines(state: ServiceState) -> list[APIRouter]:
    """Let each optional engine that is available register its steps and hooks; returns their routers."""
    return [r for engine in _ENGINES if (r := engine.wire(state)) is not None]
