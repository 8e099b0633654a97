"""The HTTP service: REST API (OpenAPI at ``/openapi.json``), background jobs, and the web app.

    from vidlens.service import create_app, ServiceSettings
    app = create_app("mylib/", ServiceSettings(max_upload_bytes=200_000_000))

``vidlens serve`` runs it with uvicorn. Inside: ``app`` (the factory), ``routers/`` (one module per
area of the API; ``classify``, ``tags`` and ``retrieval`` wire the optional engines), ``jobs`` (the
persistent queue and its workers), ``tasks`` (what the jobs do), ``uploads`` (streamed, size-limited,
content-checked uploads), ``textsearch/`` (the keyword index and its on-disk snapshot), ``security`` (the
API token), ``metrics`` (Prometheus), ``feedback`` (click events), ``filelock`` (the lock that lets one
worker process at a time run the jobs), ``web/`` (HTML/JS/CSS of the browser app).
"""

from vidlens.service.app import create_app
from vidlens.service.settings import ServiceSettings

__all__ = ["ServiceSettings", "create_app"]
