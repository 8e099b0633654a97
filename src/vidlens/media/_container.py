"""Opening media files with PyAV and turning every failure into a :class:`MediaError`.

PyAV raises a zoo of exceptions for bad input (``av.InvalidDataError``, ``EOFError``, ``OSError``,
``ValueError``, ``UnicodeDecodeError`` from metadata ...). The media layer is the boundary where untrusted
files meet the library, so everything that goes wrong while reading is reported here as one
``MediaError(path, reason)`` with a sentence a user can act on.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from fractions import Fraction

import av
import av.container
import av.stream
import numpy as np

from vidlens.errors import MediaError

PathLike = str | bytes | os.PathLike

# First bytes of container formats: a file that starts like one of these but cannot be read is
# truncated or corrupt rather than "not a media file".
_SIGNATURES: tuple[tuple[int, bytes], ...] = (
    (4, b"ftyp"), (4, b"moov"), (4, b"mdat"), (4, b"free"), (4, b"wide"), (4, b"skip"),  # MP4 / MOV
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska / WebM
    (0, b"RIFF"),  # AVI / WAV
    (0, b"OggS"), (0, b"fLaC"), (0, b"ID3"), (0, b"FLV"),
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"),  # ASF / WMV
    (0, b"\x00\x00\x01\xba"),  # MPEG program stream
)
# Demuxers FFmpeg may pick (by extension) for files that are text, not audio or video.
_NOT_MEDIA_FORMATS = {"tty", "srt", "ass", "webvtt", "subviewer", "subviewer1", "microdvd", "lrc"}


def fs_path(path: PathLike) -> str:
    """The path as a ``str`` PyAV accepts; undecodable bytes survive as surrogate escapes."""
    return os.fsdecode(os.fspath(path))


def check_file(path: PathLike) -> str:
    """Validate that ``path`` is a non-empty readable file; return it as a ``str``.

    Raises:
        MediaError: "file not found", "is a directory", "empty file (0 bytes)" or "cannot read file: ...".
    """
    name = fs_path(path)
    try:
        st = os.stat(name)
    except FileNotFoundError:
        raise MediaError(path, "file not found") from None
    except OSError as exc:
        raise MediaError(path, f"cannot read file: {exc.strerror or exc}") from None
    if os.path.isdir(name):
        raise MediaError(path, "is a directory")
    if st.st_size == 0:
        raise MediaError(path, "empty file (0 bytes)")
    if not os.access(name, os.R_OK):
        raise MediaError(path, "cannot read file: permission denied")
    return name


def first_readable(paths: Iterable[PathLike]) -> str | None:
    """The first of ``paths`` (raw bytes or str) that is a file this process may read, or None."""
    for raw in paths:
        path = os.fsdecode(raw)
        if os.path.isfile(path) and os.access(path, os.R_OK):
            return path
    return None


def looks_like_media(name: str) -> bool:
    """Whether the file starts with the signature of a known container format."""
    try:
        with open(name, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return False
    return any(head[at: at + len(sig)] == sig for at, sig in _SIGNATURES)


def describe(exc: BaseException) -> str:
    """A short description of a PyAV/FFmpeg exception, without the file name FFmpeg appends."""
    if isinstance(exc, av.FFmpegError) and exc.strerror:
        return str(exc.strerror)
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:300]


@contextmanager
def open_media(path: PathLike, *, images: bool = False) -> Iterator[av.container.InputContainer]:
    """Open ``path`` for reading with PyAV, closing it afterwards.

    Arguments:
        path: the file.
        images: accept still images (for cover files); otherwise they are refused.

    Raises:
        MediaError: the file is missing/empty/a directory, or FFmpeg cannot open it ("not a media file
            PyAV/FFmpeg can read: ..." or, when it starts like a known container, "truncated or corrupt:
            ..."), or it is a still image ("a still image, not a video or audio file").
    """
    name = check_file(path)
    try:
        container = av.open(name, metadata_errors="replace")
    except Exception as exc:  # PyAV's exception types for bad input are open-ended
        if looks_like_media(name):
            raise MediaError(path, f"truncated or corrupt: {describe(exc)}") from None
        raise MediaError(path, f"not a media file PyAV/FFmpeg can read: {describe(exc)}") from None
    try:
        fmt = container.format.name
        if fmt in _NOT_MEDIA_FORMATS:
            raise MediaError(path, f"not a media file PyAV/FFmpeg can read: detected as {fmt!r}")
        if not images and (fmt == "image2" or fmt.endswith("_pipe")):
            raise MediaError(path, "a still image, not a video or audio file")
        yield container
    finally:
        container.close()


@contextmanager
def reading(path: PathLike, what: str = "truncated or corrupt") -> Iterator[None]:
    """Report any failure inside the block as ``MediaError(path, f"{what}: ...")``."""
    try:
        yield
    except MediaError:
        raise
    except Exception as exc:  # see the module docstring
        raise MediaError(path, f"{what}: {describe(exc)}") from None


def video_stream(container: av.container.InputContainer) -> av.stream.Stream | None:
    """The first real video stream (cover art attached to audio files does not count)."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def audio_stream(container: av.container.InputContainer) -> av.stream.Stream | None:
    """The first audio stream, if any."""
    return container.streams.audio[0] if container.streams.audio else None


def stream_start(stream: av.stream.Stream) -> float:
    """The stream's start time in seconds (0 when unknown)."""
    if stream.start_time is None or stream.time_base is None:
        return 0.0
    return float(stream.start_time * stream.time_base)


def seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def normalise_rotation(degrees: float | None) -> int:
    """A display-matrix angle snapped to 0/90/180/270 (counter-clockwise)."""
    if degrees is None or not np.isfinite(degrees):
        return 0
    return round(degrees / 90.0) % 4 * 90


def output_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(width, height) scaled down so the longer side is at most ``max_side``; never scaled up."""
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def frame_to_rgb(
    frame: av.VideoFrame, *, rotation: int, size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Convert one decoded frame to an RGB ``uint8`` (H, W, 3) array, rotated for display.

    ``size`` is the (width, height) to scale to *before* rotation; swscale does the scaling while
    converting, so a 4K frame is never materialised as full-size RGB.
    """
    width, height = size if size else (frame.width, frame.height)
    if (width, height) == (frame.width, frame.height):
        rgb = frame.to_ndarray(format="rgb24")
    else:
        rgb = frame.to_ndarray(format="rgb24", width=width, height=height, interpolation="AREA")
    if rotation:
        rgb = np.ascontiguousarray(np.rot90(rgb, k=rotation // 90))
    return rgb
