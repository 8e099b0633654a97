"""Small helpers the routers share."""

from __future__ import annotations

from fastapi import HTTPException, Request, status

from vidlens.service.security import presented_token
from vidlens.service.state import ServiceState

API = "/api/v1"


def thumbnail_url(video_id: str, has_thumbnail: bool) -> str | None:
    """Where a video's cover thumbnail is served, or None when it has none."""
    return f"{API}/videos/{video_id}/thumbnail" if has_thumbnail else None


def is_trusted(request: Request, state: ServiceState) -> bool:
    """Whether the request carries the right API token (server paths are shown only then)."""
    import hmac

    given = presented_token(request)
    return bool(given) and hmac.compare_digest(given.encode("utf-8", "replace"), state.token.encode())


def not_available(what: str) -> HTTPException:
    """The answer for work that needs an optional engine this server does not have (400: never a 5xx)."""
    return HTTPException(status.HTTP_400_BAD_REQUEST, f"{what} is not available on this server")
