"""Turn what the user names (files, folders, manifests) into a stream of ingest items.

A manifest is a JSONL, JSON (a list of objects) or CSV file with one row per video. Recognised columns:

- ``path`` (required): the video file, relative to the manifest's folder or absolute;
- ``title``; ``summary`` (also read from ``desc`` / ``description``);
- ``product_titles`` and ``product_categories``: a list, or a string split on ``|``;
- ``labels`` (also ``label`` / ``category``): a list, or a string split on ``|`` or ``,``;
- ``cover``: an image file used as the cover;
- anything else is kept as metadata in ``extra``.

Text that is not valid UTF-8 is decoded as GB18030 (the common legacy Chinese encoding) and, if that
fails too, with replacement characters; a warning is kept with the item in either case.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidlens.errors import display_path

MANIFEST_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv")

_ALIASES = {
    "desc": "summary",
    "description": "summary",
    "label": "labels",
    "category": "labels",
    "categories": "labels",
    "cover_file": "cover",
    "file": "path",
    "video": "path",
    "filename": "path",
}
_LIST_FIELDS = ("product_titles", "product_categories", "labels")
_TEXT_FIELDS = ("title", "summary")


@dataclass
class IngestItem:
    """One thing to ingest: a path plus optional metadata, or an error found before opening it.

    Attributes:
        path: file system path (``str`` with surrogate escapes for non-UTF-8 names).
        source: where the item came from, for messages (``folder/``, ``manifest.jsonl:12``).
        metadata: fields from a manifest row; ``None`` when the item came from a folder or file.
        error: set when the item is known to be bad already (e.g. a manifest line with no path).
        warnings: degradations applied to the metadata, kept with the video.
    """

    path: str | None
    source: str
    metadata: dict[str, Any] | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """How the item is named in messages and in the error table."""
        if self.path is None:
            return self.source
        return display_path(self.path)


def decode_text(raw: bytes) -> tuple[str, str | None]:
    """Decode manifest bytes: UTF-8, else GB18030, else UTF-8 with replacement. Returns (text, warning)."""
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030"), "text was not UTF-8; decoded as GB18030"
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), "text was not UTF-8; undecodable bytes replaced"


def _split_list(value: Any, seps: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    text = str(value)
    for sep in seps[1:]:
        text = text.replace(sep, seps[0])
    return [part.strip() for part in text.split(seps[0]) if part.strip()]


def normalise_row(row: dict[str, Any]) -> dict[str, Any]:
    """Map a manifest row's columns onto vidlens metadata fields; unknown columns go to ``extra``."""
    out: dict[str, Any] = {"extra": {}}
    for key, value in row.items():
        if key is None:
            continue
        name = _ALIASES.get(str(key).strip().lower(), str(key).strip().lower())
        if name in _LIST_FIELDS:
            out[name] = _split_list(value, "|" if name != "labels" else "|,")
        elif name in _TEXT_FIELDS:
            out[name] = None if value is None else str(value).strip() or None
        elif name in ("path", "cover"):
            out[name] = None if value in (None, "") else str(value)
        else:
            out["extra"][str(key)] = value
    return out


def _manifest_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None, str | None]]:
    """Yield (line number, row, error, warning) for each record of a manifest."""
    raw = path.read_bytes()
    suffix = path.suffix.lower()
    if suffix == ".csv":
        text, warning = decode_text(raw)
        reader = csv.DictReader(io.StringIO(text, newline=""))
        for i, row in enumerate(reader, start=2):
            yield i, dict(row), None, warning
        return
    if suffix == ".json":
        text, warning = decode_text(raw)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            yield 1, None, f"not valid JSON: {exc.msg} at line {exc.lineno}", None
            return
        if not isinstance(data, list):
            yield 1, None, "a .json manifest must hold a list of objects", None
            return
        for i, row in enumerate(data, start=1):
            if isinstance(row, dict):
                yield i, row, None, warning
            else:
                yield i, None, f"entry {i} is not an object", None
        return
    for i, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        text, warning = decode_text(line)
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            yield i, None, f"not valid JSON: {exc.msg}", None
            continue
        if not isinstance(row, dict):
            yield i, None, "line is not a JSON object", None
            continue
        yield i, row, None, warning


def iter_manifest(path: Path) -> Iterator[IngestItem]:
    """Items of one manifest file; bad lines become items with an ``error``."""
    base = path.parent
    name = display_path(path)
    for line_no, row, error, warning in _manifest_rows(path):
        source = f"{name}:{line_no}"
        if error is not None:
            yield IngestItem(path=None, source=source, error=error)
            continue
        meta = normalise_row(row or {})
        video_path = meta.pop("path", None)
        if not video_path:
            yield IngestItem(path=None, source=source, error="manifest row has no 'path'")
            continue
        full = video_path if os.path.isabs(video_path) else os.path.join(base, video_path)
        cover = meta.pop("cover", None)
        if cover:
            meta["cover_file"] = cover if os.path.isabs(cover) else os.path.join(base, cover)
        yield IngestItem(
            path=os.path.normpath(full),
            source=source,
            metadata=meta,
            warnings=[warning] if warning else [],
        )


def is_manifest(path: str) -> bool:
    """A manifest is named by its suffix."""
    return path.lower().endswith(MANIFEST_SUFFIXES)


def iter_folder(folder: str, extensions: Iterable[str], follow_symlinks: bool = False) -> Iterator[IngestItem]:
    """Media files under ``folder``, recursively, in a stable (sorted) order."""
    exts = tuple(e.lower() for e in extensions)
    for root, dirs, files in os.walk(folder, followlinks=follow_symlinks):
        dirs.sort()
        for name in sorted(files):
            if name.lower().endswith(exts):
                yield IngestItem(path=os.path.join(root, name), source=display_path(folder))


def iter_items(
    paths: Iterable[str | os.PathLike], extensions: Iterable[str], follow_symlinks: bool = False
) -> Iterator[IngestItem]:
    """Expand user-given paths: folders are walked, manifests read, other files taken as they are."""
    exts = list(extensions)
    for given in paths:
        path = os.fspath(given)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if os.path.isdir(path):
            yield from iter_folder(path, exts, follow_symlinks)
        elif os.path.isfile(path) and is_manifest(path):
            yield from iter_manifest(Path(path))
        else:
            # Missing files and other oddities are reported when the item is opened.
            yield IngestItem(path=path, source=display_path(path))
