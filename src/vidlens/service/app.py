"""The app factory: one FastAPI app serving one library (API, web app, background jobs)."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

import vidlens
from vidlens.errors import MediaError, NotFoundError, VidlensError
from vidlens.library import Library
from vidlens.service import routers
from vidlens.service.feedback import FeedbackLog
from vidlens.service.jobs import JobQueue, JobRunner
from vidlens.service.metrics import Metrics, MetricsMiddleware
from vidlens.service.security import TOKEN_FILE, install_log_redaction, load_or_create_token
from vidlens.service.settings import ServiceSettings
from vidlens.service.state import ResponseCache, ServiceState
from vidlens.service.tasks import handlers
from vidlens.service.textsearch import TextSearchIndex

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).parent / "web"
API_DESCRIPTION = """\
vidlens over HTTP: upload or register videos, follow their analysis as background jobs, read what was
found (transcript, on-screen text, categories, tags), search, and send click feedback.

**Auth**: write endpoints (POST/PUT/DELETE) need `Authorization: Bearer <token>`; `vidlens serve` prints
the token it generated (stored in `LIBRARY/service/api_token`). Reads are open.
"""


def create_app(library: Library | str | os.PathLike, settings: ServiceSettings | None = None, *,
               encoders: Any = None, engines: dict[str, Any] | None = None) -> FastAPI:
    """Build the service for one library.

    Args:
        library: an open :class:`~vidlens.Library`, or its folder (opened here, closed at shutdown).
        settings: service settings (defaults: see :class:`ServiceSettings`).
        encoders: the encoder bank background extraction uses; None loads the real pretrained
            encoders on first use. Tests pass tiny stand-ins.
        engines: objects to use instead of loading an optional engine, by role (``classifier``: anything
            :func:`vidlens.classify.runs.classify_library` accepts). Tests pass small fakes.

    Returns:
        The app. Its lifespan (run by uvicorn, or by ``with TestClient(app)``) builds the search index,
        takes over orphaned jobs and starts the job workers.
    """
    settings = settings or ServiceSettings()
    owns_library = not isinstance(library, Library)
    lib = vidlens.open(library) if owns_library else library
    if settings.token is not None:
        token, created = settings.token, False
    else:
        token, created = load_or_create_token(settings.token_file or lib.root / TOKEN_FILE)
    queue = JobQueue(lib.store)
    state = ServiceState(lib=lib, settings=settings, token=token, token_created=created, queue=queue,
                         search=TextSearchIndex(lib.store), feedback=FeedbackLog(lib.store), metrics=Metrics(),
                         encoders=encoders, search_cache=ResponseCache(settings.search_cache_size),
                         engines=dict(engines or {}))
    engine_routers = routers.wire_engines(state)
    state.runner = JobRunner(queue, handlers(state), workers=settings.job_workers,
                             stale_after=settings.job_stale_after_s)
    _register_gauges(state)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        install_log_redaction()
        await anyio.to_thread.run_sync(state.search.rebuild)
        log.info("search index: %d videos in %.2f s", len(state.search), state.search.build_seconds)
        state.runner.start()
        stop = threading.Event()
        refresher = threading.Thread(target=_refresh_loop, args=(state, stop), name="vidlens-index-refresh",
                                     daemon=True)
        refresher.start()
        try:
            yield
        finally:
            stop.set()
            await anyio.to_thread.run_sync(state.runner.stop)
            refresher.join(5)
            if owns_library:
                lib.close()

    app = FastAPI(title="vidlens", version=vidlens.__version__, description=API_DESCRIPTION,
                  lifespan=lifespan, docs_url="/api/docs", redoc_url=None, openapi_url="/openapi.json")
    app.state.vidlens = state
    _add_error_handlers(app)
    for router in [*engine_routers, *routers.all_routers(settings.web)]:
        app.include_router(router)
    if settings.web:
        app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST", "PUT", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "X-API-Token"])
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    return app


def _refresh_loop(state: ServiceState, stop: threading.Event) -> None:
    """Pick up what other processes (a CLI ingest, another server) changed in the library."""
    while not stop.wait(state.settings.search_refresh_s):
        try:
            state.search.refresh()
        except Exception:
            log.exception("refreshing the search index failed")


def _register_gauges(state: ServiceState) -> None:
    m = state.metrics
    m.gauge("vidlens_videos", "Videos in the library.", lambda: {(): float(state.lib.store.counts()["videos"])})
    m.gauge("vidlens_jobs", "Background jobs by status.",
            lambda: {(("status", k),): float(v) for k, v in state.queue.counts().items()})
    m.gauge("vidlens_search_documents", "Videos in the keyword index.", lambda: {(): float(len(state.search))})


def _add_error_handlers(app: FastAPI) -> None:
    """Library errors become clear 4xx answers; nothing a client sends may produce a 500."""

    @app.exception_handler(NotFoundError)
    async def not_found(_request: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(MediaError)
    async def bad_media(_request: Request, exc: MediaError) -> JSONResponse:
        return JSONResponse({"detail": f"not a readable video or audio file: {exc.reason}"}, status_code=415)

    @app.exception_handler(VidlensError)
    async def bad_request(_request: Request, exc: VidlensError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # The default handler echoes the input back, which may hold bytes JSON cannot carry.
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
                  for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)
