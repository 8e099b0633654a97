"""``vidlens serve``: the HTTP API and web app over one library (FastAPI + uvicorn)."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import click

from vidlens.cli._app import CliContext, cli, err, pass_ctx
from vidlens.errors import MissingDependencyError


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="interface to listen on (0.0.0.0 exposes it to the network)")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="server processes sharing the port (more use more cores for search; each keeps its own "
                   "engines and caches, one at a time runs the background jobs)")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="file holding the API token (created with a new random token if missing) "
                   "[default: LIBRARY/service/api_token]")
@click.option("--cors-origin", "cors_origins", multiple=True,
              help="allow browser calls from this origin (repeatable; CORS is off by default)")
@click.option("--max-upload-mb", default=512, show_default=True, type=click.IntRange(1, 1_000_000),
              help="largest upload accepted")
@click.option("--max-sync-seconds", default=120.0, show_default=True, type=click.FloatRange(1, 3600),
              help="longest clip the synchronous classify/tag endpoints accept")
@click.option("--ingest-root", "ingest_roots", multiple=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="server folder whose files POST /api/v1/ingest may register (repeatable; none by default)")
@click.option("--job-workers", default=1, show_default=True, type=click.IntRange(1, 32),
              help="background job threads (encoders are heavy; 1 suits 2 cores)")
@click.option("--search-cache-size", default=4096, show_default=True, type=click.IntRange(0, 1_000_000),
              help="answered searches kept until the index changes (0: off; per worker process)")
@click.option("--analyse", "analyse_all", is_flag=True,
              help="on start, queue analysis of every video whose features are missing")
@click.option("--no-web", is_flag=True, help="serve the API only, not the web app")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@click.option("--no-access-log", is_flag=True, help="do not log every request")
@pass_ctx
def serve(ctx: CliContext, host: str, port: int, workers: int, token_file: Path | None,
          cors_origins: tuple[str, ...], max_upload_mb: int, max_sync_seconds: float, ingest_roots: tuple[Path, ...],
          job_workers: int, search_cache_size: int, analyse_all: bool, no_web: bool, log_level: str,
          no_access_log: bool) -> None:
    """Run the HTTP service: REST API (docs at /api/docs), web app at /, background analysis jobs.

    Write endpoints need the API token; a new one is generated into the library on first start and
    printed once. Uploaded files are kept under LIBRARY/uploads. The keyword index is kept as a snapshot
    under LIBRARY/index/textsearch, so later starts (and every worker process) map it in seconds.
    """
    try:
        import uvicorn

        from vidlens.service import ServiceSettings, create_app
        from vidlens.service.app import WORKER_SPEC_ENV, settle_heap, worker_spec
        from vidlens.service.jobs import JobQueue
        from vidlens.service.security import TOKEN_FILE, load_or_create_token
    except ImportError as exc:
        raise MissingDependencyError(f"vidlens serve ({exc.name} is missing)",
                                     "pip install 'vidlens[service]'") from None

    lib = ctx.lib()
    settings = ServiceSettings(
        token_file=token_file, cors_origins=list(cors_origins), max_upload_bytes=max_upload_mb * 1024 * 1024,
        max_sync_seconds=max_sync_seconds, ingest_roots=[p.resolve() for p in ingest_roots],
        job_workers=job_workers, search_cache_size=search_cache_size, web=not no_web,
    )
    where = token_file or lib.root / TOKEN_FILE
    token, created = load_or_create_token(where)
    if created:
        # Printed to the terminal once, never logged; later starts only say where it is kept.
        err.print(f"[bold]new API token[/] (kept in {where}): {token}", highlight=False)
    else:
        err.print(f"API token: see {where}", highlight=False)
    if analyse_all:
        job, _created = JobQueue(lib.store).submit("analyse", {"video_ids": None, "modalities": None, "force": False})
        err.print(f"queued analysis of the library (job {job['id']})", highlight=False)
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    processes = f", {workers} worker processes" if workers > 1 else ""
    err.print(f"vidlens serving {lib.root} at http://{shown}:{port}/  (API docs: /api/docs{processes})",
              highlight=False)
    options = {"host": host, "port": port, "log_level": log_level, "access_log": not no_access_log,
               "log_config": _log_config(log_level), "proxy_headers": False, "server_header": False}
    if workers == 1:
        app = create_app(lib, settings)
        settle_heap()
        uvicorn.run(app, **options)
        return
    # Several processes need an import string: each worker builds its own app from the spec.
    os.environ[WORKER_SPEC_ENV] = worker_spec(lib, settings, ctx.config_file, ctx.overrides)
    lib.close()
    uvicorn.run("vidlens.service.app:worker_app", factory=True, workers=workers, **options)


def _log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging set-up, with vidlens's own messages (index start-up, jobs) on the same stream."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["vidlens"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config
