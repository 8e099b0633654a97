"""The API token: where it lives, how requests present it, and keeping it out of logs.

Write endpoints require ``Authorization: Bearer <token>`` (or ``X-API-Token: <token>``). The token is
never accepted in a query string, so it cannot end up in access logs or browser history.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import secrets
from pathlib import Path

from fastapi import HTTPException, Request, status

TOKEN_FILE = Path("service") / "api_token"
TOKEN_HEADER = "X-API-Token"

_SECRET_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)(x-api-token[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(://[^:/@\s]+:)[^@\s]+(@)"),  # passwords in URLs
]


def load_or_create_token(path: Path) -> tuple[str, bool]:
    """The token stored at ``path``, creating a fresh random one (mode 0600) when there is none.

    Returns:
        (token, created): ``created`` is True when this call generated it.
    """
    if path.is_file():
        token = path.read_text(encoding="utf-8").strip()
        if len(token) >= 16:
            return token, False
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    return token, True


def presented_token(request: Request) -> str | None:
    """The token a request carries, from ``Authorization: Bearer`` or ``X-API-Token``."""
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.headers.get(TOKEN_HEADER)


def require_token(request: Request) -> None:
    """FastAPI dependency of every write endpoint: 401 without a token, 403 with a wrong one."""
    expected: str = request.app.state.vidlens.token
    given = presented_token(request)
    if not given:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "this endpoint needs an API token",
                            headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8")):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "wrong API token")


def redact(text: str) -> str:
    """``text`` with bearer tokens and URL passwords replaced by ``***``."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + "***" + (m.group(2) if m.lastindex == 2 else ""), text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that removes secrets from every record it passes (attached to uvicorn's loggers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Redact inside the arguments rather than formatting them in: uvicorn's access formatter
        # unpacks ``record.args`` itself.
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install_log_redaction(names: tuple[str, ...] = ("uvicorn", "uvicorn.access", "uvicorn.error", "vidlens")
                          ) -> None:
    """Attach :class:`RedactingFilter` to the handlers of the service's loggers (idempotent)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
