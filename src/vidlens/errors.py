"""Exceptions raised by vidlens. Every message names the item and the problem."""

from __future__ import annotations

import os


def display_path(path: str | bytes | os.PathLike) -> str:
    """A printable form of a path, also when its bytes are not valid UTF-8."""
    raw = os.fsencode(path)
    return raw.decode("utf-8", errors="backslashreplace")


class VidlensError(Exception):
    """Base class of all errors vidlens raises on purpose."""


class ConfigError(VidlensError):
    """A configuration value is missing or invalid; the message names the key."""


class MediaError(VidlensError):
    """A media file cannot be read as asked.

    Attributes:
        path: the file, as given.
        reason: a short human sentence saying what is wrong with it.
    """

    def __init__(self, path: str | os.PathLike | bytes, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"{display_path(path)}: {reason}")


class IngestError(VidlensError):
    """One item of an ingest batch could not be taken in."""

    def __init__(self, item: str, reason: str):
        self.item = item
        self.reason = reason
        super().__init__(f"{item}: {reason}")


class MissingDependencyError(VidlensError):
    """An optional package is not installed; the message gives the pip line."""

    def __init__(self, what: str, pip_line: str):
        self.pip_line = pip_line
        super().__init__(f"{what} needs a package that is not installed: {pip_line}")


class NotFoundError(VidlensError):
    """A video, model or other named thing does not exist in the library."""


class StorageError(VidlensError):
    """The library cannot be stored to or read from (a full disk, a metadata DB that is gone).

    Raised by a whole run, not per item: the run stops, what was stored before stays, and a re-run once
    the problem is fixed does the rest.
    """


__all__ = [
    "ConfigError",
    "IngestError",
    "MediaError",
    "MissingDependencyError",
    "NotFoundError",
    "StorageError",
    "VidlensError",
    "display_path",
]
