"""A video's cover picture: :func:`cover_image`.

Platforms usually ship a cover with each video; when there is none, vidlens picks one itself from the
keyframes of the first seconds (keyframe-only decoding costs milliseconds), preferring a frame with
detail and light over the black or flat frames that videos often open with.
"""

from __future__ import annotations

import logging

import av
import numpy as np

from vidlens.errors import MediaError
from vidlens.media._container import (
    PathLike,
    describe,
    frame_to_rgb,
    normalise_rotation,
    open_media,
    output_size,
    reading,
    stream_start,
    video_stream,
)
from vidlens.media.probe import MediaInfo

log = logging.getLogger(__name__)

# Keyframes are looked at in this many first seconds of the video.
COVER_WINDOW_SECONDS = 10.0
# Side of the grey thumbnail a keyframe is scored on.
_SCORE_SIDE = 64


def cover_image(
    path: PathLike,
    *,
    cover_file: PathLike | None = None,
    max_side: int | None = None,
    info: MediaInfo | None = None,
) -> np.ndarray:
    """The cover picture of a video, as RGB ``uint8 (H, W, 3)``.

    Arguments:
        path: the video file.
        cover_file: an image file shipped with the video (JPEG, PNG, WebP ...); when given it is the
            cover and the video is not opened.
        max_side: scale down so the longer side is at most this.
        info: the video's :class:`MediaInfo` if already probed (lets an audio-only file fail at once).

    Returns:
        The cover file's picture, or else the most informative keyframe of the first
        :data:`COVER_WINDOW_SECONDS` seconds (score: luminance standard deviation, damped when the
        frame is dark), or the first frame when every keyframe is flat. Rotated for display.

    Raises:
        MediaError: ``cover_file`` is unreadable (the error names that file), the video cannot be read,
            or "no video track: no cover".
    """
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    if cover_file is not None:
        return _load_image(cover_file, max_side)
    if info is not None and not info.has_video:
        raise MediaError(path, "no video track: no cover")
    with open_media(path) as container, reading(path):
        vs = video_stream(container)
        if vs is None:
            raise MediaError(path, "no video track: no cover")
        frame = _best_keyframe(container, vs)
        if frame is None:
            frame = _first_frame(container, vs)
        if frame is None:
            raise MediaError(path, "truncated or corrupt: no decodable video frame")
        size = output_size(frame.width, frame.height, max_side)
        return frame_to_rgb(frame, rotation=normalise_rotation(frame.rotation), size=size)


def informativeness(frame: av.VideoFrame) -> float:
    """How much a frame shows: std of luminance, damped for dark frames (0 for black or flat ones)."""
    w, h = frame.width, frame.height
    scale = _SCORE_SIDE / max(w, h)
    thumb = frame.to_ndarray(
        format="gray", width=max(1, round(w * scale)), height=max(1, round(h * scale))
    ).astype(np.float32)
    mean = float(thumb.mean())
    return float(thumb.std()) * min(1.0, mean / 64.0)


def _best_keyframe(container, vs) -> av.VideoFrame | None:
    ctx = vs.codec_context
    ctx.skip_frame = "NONKEY"
    end = stream_start(vs) + COVER_WINDOW_SECONDS
    best, best_score, first = None, 0.0, None

    def consider(frames) -> None:
        nonlocal best, best_score, first
        for frame in frames:
            if first is None:
                first = frame
            score = informativeness(frame)
            if score > best_score:
                best, best_score = frame, score

    try:
        for packet in container.demux(vs):
            if packet.size == 0:
                break
            if not packet.is_keyframe:
                continue  # would be skipped by the decoder anyway; don't even hand it over
            past_window = (
                packet.pts is not None and packet.time_base is not None
                and float(packet.pts * packet.time_base) > end
            )
            if past_window and first is not None:
                break
            try:
                consider(packet.decode())
            except (av.FFmpegError, ValueError, EOFError) as exc:
                log.debug("cover: skipped an undecodable keyframe: %s", exc)
        consider(ctx.decode(None))  # frames the decoder still holds (reordering delay)
    except (av.FFmpegError, OSError, EOFError, ValueError) as exc:
        log.debug("cover: keyframe scan stopped early: %s", exc)
    finally:
        ctx.skip_frame = "DEFAULT"
    return best if best is not None else first


def _first_frame(container, vs) -> av.VideoFrame | None:
    """Fallback when keyframe-only decoding gave nothing (e.g. no keyframe flags in the file)."""
    try:
        container.seek(0)
        vs.codec_context.flush_buffers()
        for frame in container.decode(vs):
            return frame
    except (av.FFmpegError, OSError, EOFError, ValueError) as exc:
        log.debug("cover: first-frame fallback failed: %s", exc)
    return None


def _load_image(cover_file: PathLike, max_side: int | None) -> np.ndarray:
    try:
        with open_media(cover_file, images=True) as container:
            stream = container.streams.video[0] if container.streams.video else None
            if stream is None:
                raise MediaError(cover_file, "cover image is not readable: no picture in it")
            frame = next(container.decode(stream), None)
            if frame is None:
                raise MediaError(cover_file, "cover image is not readable: no picture decodes")
            size = output_size(frame.width, frame.height, max_side)
            return frame_to_rgb(frame, rotation=normalise_rotation(frame.rotation), size=size)
    except MediaError as exc:
        if exc.reason.startswith("cover image"):
            raise
        raise MediaError(cover_file, f"cover image is not readable: {exc.reason}") from None
    except Exception as exc:  # PyAV's exception types for bad input are open-ended
        raise MediaError(cover_file, f"cover image is not readable: {describe(exc)}") from None
