"""The app factory: one FastAPI app serving one library (API, web app, background jobs).

``vidlens serve --workers N`` runs N processes of the same app on one port; uvicorn imports
:func:`worker_app` in each. They share the library: the keyword index of each maps the same snapshot
files, and one process at a time (the holder of ``LIBRARY/service/job-runner.lock``) runs the
background jobs, so the per-video locks of :class:`~vidlens.service.jobs.VideoLocks` still cover every
job; when it exits another takes over.
"""

from __future__ import annotations

import gc
import json
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
from vidlens.service.filelock import FileLock
from vidlens.service.jobs import JobQueue, JobRunner
from vidlens.service.metrics import Metrics, MetricsMiddleware
from vidlens.service.security import TOKEN_FILE, install_log_redaction, load_or_create_token
from vidlens.service.settings import ServiceSettings
from vidlens.service.state import ResponseCache, ServiceState
from vidlens.service.tasks import handlers
from vidlens.service.textsearch import TextSearchIndex

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).parent / "web"
JOB_RUNNER_LOCK = Path("service") / "job-runner.lock"
SEARCH_SNAPSHOT = Path("index") / "textsearch"
# The environment variable through which ``vidlens serve --workers N`` hands :func:`worker_app` its library
# (not ``VIDLENS_…``: those are configuration settings).
WORKER_SPEC_ENV = "_VIDLENS_SERVICE_WORKER_SPEC"
_LEASE_RETRY_S = 2.0
API_DESCRIPTION = """\
vidlens over HTTP: upload or register videos, follow their analysis as background jobs, read what was
found (transcript, on-screen text, categories, tags), search, and send click feedback.

**Auth**: write endpoints (POST/PUT/DELETE) need `Authorization: Bearer <token>`; `vidlens serve` prints
the token it generated (stored in `LIBRARY/service/api_token`). Reads are open.
"""


def create_app(library: Library | str | os.PathLike, settings: ServiceSettings | None = None, *,
               encoders: Any = None, engines: dict[str, Any] | None = None,
               close_library: bool | None = None) -> FastAPI:
    """Build the service for one library.

    Args:
        library: an open :class:`~vidlens.Library`, or its folder (opened here, closed at shutdown).
        settings: service settings (defaults: see :class:`ServiceSettings`).
        encoders: the encoder bank background extraction uses; None loads the real pretrained
            encoders on first use. Tests pass tiny stand-ins.
        engines: objects to use instead of loading an optional engine, by role (``classifier``: anything
            :func:`vidlens.classify.runs.classify_library` accepts). Tests pass small fakes.
        close_library: close the library at shutdown (default: when it was opened here from a folder).

    Returns:
        The app. Its lifespan (run by uvicorn, or by ``with TestClient(app)``) maps or builds the search
        index, and, in the one process of the library that holds the job-runner lock, takes over orphaned
        jobs and starts the job workers.
    """
    settings = settings or ServiceSettings()
    owns_library = not isinstance(library, Library) if close_library is None else close_library
    lib = library if isinstance(library, Library) else vidlens.open(library)
    if settings.token is not None:
        token, created = settings.token, False
    else:
        token, created = load_or_create_token(settings.token_file or lib.root / TOKEN_FILE)
    queue = JobQueue(lib.store)
    state = ServiceState(lib=lib, settings=settings, token=token, token_created=created, queue=queue,
                         search=TextSearchIndex(lib.store, folder=lib.root / SEARCH_SNAPSHOT),
                         feedback=FeedbackLog(lib.store), metrics=Metrics(),
                         encoders=encoders, search_cache=ResponseCache(settings.search_cache_size),
                         engines=dict(engines or {}))
    engine_routers = routers.wire_engines(state)
    state.runner = JobRunner(queue, handlers(state), workers=settings.job_workers,
                             stale_after=settings.job_stale_after_s)
    _register_gauges(state)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        install_log_redaction()
        await anyio.to_thread.run_sync(state.search.load_or_build)
        log.info("search index: %d videos (%s) in %.2f s", len(state.search), state.search.started_from,
                 state.search.build_seconds)
        stop = threading.Event()
        lease = FileLock(lib.root / JOB_RUNNER_LOCK)
        threads = [threading.Thread(target=_refresh_loop, args=(state, stop), name="vidlens-index-refresh",
                                    daemon=True)]
        if lease.acquire(blocking=False):
            state.runner.start()
        else:
            log.info("another process of this library runs the background jobs; this one takes over if it stops")
            threads.append(threading.Thread(target=_run_jobs_when_free, args=(state, lease, stop),
                                            name="vidlens-job-lease", daemon=True))
        for t in threads:
            t.start()
        try:
            yield
        finally:
            stop.set()
            for t in threads:
                await anyio.to_thread.run_sync(t.join, 5)
            await anyio.to_thread.run_sync(state.runner.stop)
            lease.release()
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
    # Innermost, so CORS and the metrics see its answers like any other.
    search_route = next(r for r in routers.search.router.routes if getattr(r, "name", None) == "search")
    app.add_middleware(routers.search.KeywordSearchFastPath, state=state, route=search_route)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST", "PUT", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "X-API-Token"])
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    return app


def worker_app() -> FastAPI:
    """The app of one worker process of ``vidlens serve --workers N`` (uvicorn calls this factory in each).

    Opens the library and settings that the command put in the ``_VIDLENS_SERVICE_WORKER_SPEC``
    environment variable (JSON: ``library``, ``config_file``, ``overrides``, ``settings``).
    """
    spec = json.loads(os.environ[WORKER_SPEC_ENV])
    lib = vidlens.open(spec["library"], create=False, config_file=spec.get("config_file"),
                       overrides=spec.get("overrides"))
    app = create_app(lib, ServiceSettings.model_validate(spec["settings"]), close_library=True)
    settle_heap()
    return app


def settle_heap() -> None:
    """Collect once, then move everything alive (modules, the app and its routes: what lasts as long as a
    server process) out of the garbage collector's reach. A full collection of the ~130k objects of a
    started server takes about 0.1 s, a pause every request in flight would wait for; after this only
    what requests create is scanned. For server processes, not for a process that makes many apps."""
    gc.collect()
    gc.freeze()


def worker_spec(lib: Library, settings: ServiceSettings, config_file: str | None = None,
                overrides: dict[str, Any] | None = None) -> str:
    """The value of ``_VIDLENS_SERVICE_WORKER_SPEC`` that makes :func:`worker_app` serve ``lib``.

    ``settings.token`` is left out (no secret in the environment): the workers read the token file.
    """
    return json.dumps({"library": str(lib.root.resolve()), "config_file": config_file, "overrides": overrides,
                       "settings": settings.model_dump(mode="json", exclude={"token"})})


def _run_jobs_when_free(state: ServiceState, lease: FileLock, stop: threading.Event) -> None:
    """Wait for the job-runner lock (its holder stopped or died), then run the background jobs here."""
    while not stop.wait(_LEASE_RETRY_S):
        if lease.acquire(blocking=False):
            if not stop.is_set():
                log.info("this process now runs the background jobs")
                state.runner.start()
            return


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
