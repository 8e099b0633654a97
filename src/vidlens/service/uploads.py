"""Uploads: streamed to disk under a size limit, named by content, checked by decoding, never by name.

A request body is either the raw file (``Content-Type: application/octet-stream`` or ``video/*``) or
``multipart/form-data`` with one file part plus small text fields. Either way the bytes go straight to
``LIBRARY/uploads/.incoming/<random>.part`` as they arrive; the limit is enforced on the bytes actually
received (a ``Content-Length`` over the limit is refused before reading). The client's file name and
content type are never used: the file is probed (opened and decoded by FFmpeg), and only then moved to
``LIBRARY/uploads/<content id><extension of the probed container>``.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import HTTPException, Request, status
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from vidlens.ingest import content_id
from vidlens.media import MediaInfo, probe

INCOMING = ".incoming"
MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 32

# Probed container → (file extension, MIME type for serving it back).
CONTAINER_TYPES: dict[str, tuple[str, str]] = {
    "mov": (".mp4", "video/mp4"),
    "mp4": (".mp4", "video/mp4"),
    "m4a": (".m4a", "audio/mp4"),
    "3gp": (".3gp", "video/3gpp"),
    "matroska": (".mkv", "video/x-matroska"),
    "webm": (".webm", "video/webm"),
    "avi": (".avi", "video/x-msvideo"),
    "flv": (".flv", "video/x-flv"),
    "mpegts": (".ts", "video/mp2t"),
    "mpeg": (".mpg", "video/mpeg"),
    "asf": (".wmv", "video/x-ms-asf"),
    "mp3": (".mp3", "audio/mpeg"),
    "wav": (".wav", "audio/wav"),
    "ogg": (".ogg", "audio/ogg"),
    "flac": (".flac", "audio/flac"),
    "aac": (".aac", "audio/aac"),
}


def media_type_of(container: str | None, has_video: bool = True) -> str:
    """The MIME type to serve a stored file with, from its probed container."""
    ext_mime = CONTAINER_TYPES.get(container or "")
    if ext_mime is None:
        return "application/octet-stream"
    mime = ext_mime[1]
    if not has_video and mime == "video/mp4":
        return "audio/mp4"
    return mime


@dataclass
class ReceivedUpload:
    """A body written to disk: the temporary file, its size, and text form fields (multipart only)."""

    path: Path
    size: int
    fields: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        """Delete the temporary file."""
        self.path.unlink(missing_ok=True)


def _too_large(limit: int) -> HTTPException:
    return HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"upload is larger than {limit} bytes")


class _Sink:
    """The temporary file a body streams into, counting bytes against the limit."""

    def __init__(self, folder: Path, limit: int):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{uuid.uuid4().hex}.part"
        self.fh = open(self.path, "wb")
        self.limit = limit
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise _too_large(self.limit)
        self.fh.write(data)

    def close(self) -> None:
        self.fh.close()


async def receive_upload(request: Request, folder: Path, limit: int) -> ReceivedUpload:
    """Stream the request body (raw or multipart) into a new file under ``folder``.

    Raises:
        HTTPException: 413 over ``limit``; 400 for a malformed multipart body, a missing or second file
            part, or an empty body.
    """
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit + 1024 * 1024:
        raise _too_large(limit)
    content_type, options = parse_options_header(request.headers.get("content-type"))
    sink = _Sink(folder, limit)
    try:
        if content_type == b"multipart/form-data":
            fields = await _receive_multipart(request, sink, options.get(b"boundary"))
        else:
            fields = {}
            async for chunk in request.stream():
                sink.write(chunk)
        sink.close()
        if sink.size == 0:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "the upload is empty (0 bytes)")
        return ReceivedUpload(sink.path, sink.size, fields)
    except BaseException:
        sink.close()
        sink.path.unlink(missing_ok=True)
        raise


async def _receive_multipart(request: Request, sink: _Sink, boundary: bytes | None) -> dict[str, str]:
    if not boundary:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "multipart body without a boundary")
    fields: dict[str, str] = {}
    state = {"header": b"", "value": b"", "headers": {}, "kind": None, "name": "", "buf": bytearray(),
             "files": 0}

    def on_part_begin() -> None:
        state["headers"], state["kind"], state["buf"] = {}, None, bytearray()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["header"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["header"].lower()] = state["value"]
        state["header"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        _disp, opts = parse_options_header(state["headers"].get(b"content-disposition"))
        state["name"] = opts.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in opts or state["name"] == "file":
            state["files"] += 1
            if state["files"] > 1:
                raise HTTPException(status.HTTP_400_BAD_REQUEST, "send one file per upload")
            state["kind"] = "file"
        else:
            if len(fields) >= MAX_FIELDS:
                raise HTTPException(status.HTTP_400_BAD_REQUEST, "too many form fields")
            state["kind"] = "field"

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["kind"] == "file":
            sink.write(memoryview(data)[start:end])
        else:
            state["buf"] += data[start:end]
            if len(state["buf"]) > MAX_FIELD_BYTES:
                raise HTTPException(status.HTTP_400_BAD_REQUEST, f"form field {state['name']!r} is too long")

    def on_part_end() -> None:
        if state["kind"] == "field":
            fields[state["name"]] = bytes(state["buf"]).decode("utf-8", "replace")

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data, "on_part_end": on_part_end,
    })
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except (MultipartParseError, ValueError) as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"malformed multipart body: {exc}") from None
    if state["files"] == 0:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "multipart body has no file part (name it 'file')")
    return fields


def accept_media(upload: ReceivedUpload, folder: Path) -> tuple[Path, MediaInfo]:
    """Probe an upload and move it to its permanent name; the temporary file is gone afterwards.

    Returns:
        (the stored file, what probe found).

    Raises:
        vidlens.errors.MediaError: the bytes are not a readable video or audio file (the reason says why).
    """
    try:
        info = probe(upload.path)
        ext = CONTAINER_TYPES.get(info.container, (".bin", ""))[0]
        final = folder / f"{content_id(upload.path)}{ext}"
        if final.exists():
            upload.discard()  # the same content was uploaded before
        else:
            os.replace(upload.path, final)
        return final, info
    except BaseException:
        upload.discard()
        raise


__all__ = ["CONTAINER_TYPES", "ReceivedUpload", "accept_media", "media_type_of", "receive_upload"]

