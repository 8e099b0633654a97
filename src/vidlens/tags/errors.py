"""Errors of the tag library."""

from __future__ import annotations

from vidlens.errors import VidlensError


class TagError(VidlensError):
    """A tag name or edit is invalid (too long, empty, a conflicting alias …); the message names it."""


__all__ = ["TagError"]
