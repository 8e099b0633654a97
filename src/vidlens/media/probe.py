"""What a media file holds: :class:`MediaInfo` from :func:`probe`.

``probe`` really validates a file: it opens it with PyAV and decodes its first video frame (or first
audio frame when there is no video), so random bytes, text, empty and truncated files fail here with a
:class:`~vidlens.errors.MediaError` instead of somewhere deep in feature extraction.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass

import av
import av.container
import av.stream
import numpy as np

from vidlens.errors import MediaError
from vidlens.media._container import (
    PathLike,
    audio_stream,
    describe,
    normalise_rotation,
    open_media,
    reading,
    seconds,
    stream_start,
    video_stream,
)

log = logging.getLogger(__name__)

# How much of a file probe demuxes (packets only, no decoding) to estimate the keyframe interval and
# frame-rate variability when the container has no complete index.
_SCAN_MAX_PACKETS = 300
_SCAN_MIN_PACKETS = 60
# How many index entries probe looks at; 5000 entries are 200 s of 25 fps video.
_INDEX_MAX_ENTRIES = 5000
# How many undecodable packets at the start are tolerated before the stream is called corrupt.
_FIRST_FRAME_MAX_PACKETS = 200


@dataclass(frozen=True)
class MediaInfo:
    """What :func:`probe` found in a media file.

    Attributes:
        container: the container format, e.g. ``"mp4"``, ``"matroska"``, ``"webm"``, ``"avi"``, ``"mp3"``.
        duration: length in seconds.
        size_bytes: file size.
        has_video, has_audio: which tracks exist (cover art attached to audio files is not video).
        width, height: the *display* size, i.e. after rotation; None without video.
        fps: average frame rate; None without video.
        rotation: display rotation in degrees counter-clockwise, one of 0/90/180/270 (from the display
            matrix); frames returned by :mod:`vidlens.media` are already rotated by it.
        video_codec, audio_codec: codec names (``"h264"``, ``"hevc"``, ``"vp9"``, ``"aac"``, ``"opus"`` ...).
        audio_sample_rate, audio_channels: of the first audio track.
        keyframe_interval: median seconds between keyframes, estimated from the container index or the
            first packets; None when unknown (e.g. a single keyframe).
        variable_frame_rate: whether frame intervals vary.
    """

    container: str
    duration: float
    size_bytes: int
    has_video: bool
    has_audio: bool
    width: int | None
    height: int | None
    fps: float | None
    rotation: int
    video_codec: str | None
    audio_codec: str | None
    audio_sample_rate: int | None
    audio_channels: int | None
    keyframe_interval: float | None
    variable_frame_rate: bool

    def to_dict(self) -> dict:
        """A JSON-ready dict of the fields."""
        return dataclasses.asdict(self)


def probe(path: PathLike) -> MediaInfo:
    """Open a media file, check that it decodes, and describe it.

    Cheap: it decodes one frame and demuxes at most a few hundred packets, whatever the file's length.

    Arguments:
        path: the file (``str``, ``bytes`` or path-like; non-UTF-8 names work).

    Returns:
        A :class:`MediaInfo`.

    Raises:
        MediaError: with reason "file not found", "is a directory", "empty file (0 bytes)",
            "not a media file PyAV/FFmpeg can read: ...", "no video or audio stream",
            "truncated or corrupt: ..." or "a still image, not a video or audio file".
    """
    with open_media(path) as container, reading(path):
        fmt = container.format.name
        vs = video_stream(container)
        aus = audio_stream(container)
        if vs is None and aus is None:
            raise MediaError(path, "no video or audio stream")

        width = height = None
        fps = None
        rotation = 0
        keyframe_interval = None
        vfr = False
        scanned_end = None
        if vs is not None:
            scan = _scan_video(path, container, vs)
            rotation = scan.rotation
            width, height = scan.width, scan.height
            if rotation in (90, 270):
                width, height = height, width
            rate = vs.average_rate or vs.guessed_rate or vs.base_rate
            fps = float(rate) if rate else None
            keyframe_interval = scan.keyframe_interval
            vfr = scan.variable_frame_rate
            scanned_end = scan.end_time
        else:
            _check_first_audio_frame(path, container, aus)

        duration = _duration(container, vs, aus, scanned_end)
        sample_rate = channels = None
        if aus is not None:
            sample_rate = aus.codec_context.sample_rate or None
            channels = aus.codec_context.layout.nb_channels if aus.codec_context.layout else None
        return MediaInfo(
            container=_container_name(fmt, path),
            duration=duration,
            size_bytes=os.stat(os.fsdecode(os.fspath(path))).st_size,
            has_video=vs is not None,
            has_audio=aus is not None,
            width=width,
            height=height,
            fps=fps,
            rotation=rotation,
            video_codec=_codec_name(vs),
            audio_codec=_codec_name(aus),
            audio_sample_rate=sample_rate,
            audio_channels=channels,
            keyframe_interval=keyframe_interval,
            variable_frame_rate=vfr,
        )


@dataclass
class _VideoScan:
    rotation: int
    width: int
    height: int
    keyframe_interval: float | None
    variable_frame_rate: bool
    end_time: float | None  # time of the last packet, when the scan reached the end of the stream


def _scan_video(path: PathLike, container: av.container.InputContainer, vs: av.stream.Stream) -> _VideoScan:
    """Decode the first frame; read keyframe spacing and frame timing from the index or first packets."""
    tb = vs.time_base
    index_keys, index_times, index_complete = _index_timestamps(vs, container)
    need_packets = not index_complete or len(index_keys) < 2

    first: av.VideoFrame | None = None
    failures = 0
    last_error: BaseException | None = None
    pts: list[int] = []
    keys: list[int] = []
    end_time = None
    n_packets = 0
    demux = container.demux(vs)
    while True:
        try:
            packet = next(demux)
        except StopIteration:
            break
        except (av.FFmpegError, OSError, EOFError, ValueError) as exc:
            if first is None:
                raise
            # The start decodes; damage further in is the sampler's business (it skips it).
            log.debug("probe: demuxing stopped early: %s", exc)
            break
        if packet.size == 0:  # end of stream: flush the decoder
            end_time = seconds(max(pts), tb) if pts else None
            if first is None:
                first = _decode_first(packet, first)
            break
        n_packets += 1
        if packet.pts is not None:
            pts.append(packet.pts)
            if packet.is_keyframe:
                keys.append(packet.pts)
        if first is None:
            try:
                first = _decode_first(packet, first)
            except (av.FFmpegError, ValueError, EOFError) as exc:
                failures += 1
                last_error = exc
                if failures > _FIRST_FRAME_MAX_PACKETS:
                    break
            continue
        if not need_packets or n_packets >= _SCAN_MAX_PACKETS:
            break
        if n_packets >= _SCAN_MIN_PACKETS and len(keys) >= 3:
            break
    if first is None:
        detail = f": {describe(last_error)}" if last_error else ""
        raise MediaError(path, f"truncated or corrupt: no decodable video frame{detail}")

    if len(index_keys) >= 2:
        keyframe_interval = _median_gap(index_keys, tb)
    elif len(keys) >= 2:
        keyframe_interval = _median_gap(keys, tb)
    else:
        keyframe_interval = None
    timing = index_times if index_complete and len(index_times) > len(pts) else pts
    return _VideoScan(
        rotation=normalise_rotation(first.rotation),
        width=first.width,
        height=first.height,
        keyframe_interval=keyframe_interval,
        variable_frame_rate=_is_variable(timing),
        end_time=end_time,
    )


def _decode_first(packet: av.Packet, first: av.VideoFrame | None) -> av.VideoFrame | None:
    frames = packet.decode()
    return frames[0] if frames else first


def _index_timestamps(
    vs: av.stream.Stream, container: av.container.InputContainer
) -> tuple[list[int], list[int], bool]:
    """Keyframe timestamps and all timestamps from the first index entries, and whether the index lists
    every frame (MP4/MOV/AVI do; Matroska cues list only some keyframes)."""
    try:
        entries = vs.index_entries
        n = len(entries)
    except (AttributeError, av.FFmpegError):
        return [], [], False
    keys: list[int] = []
    times: list[int] = []
    for i in range(min(n, _INDEX_MAX_ENTRIES)):
        entry = entries[i]
        times.append(entry.timestamp)
        if entry.is_keyframe:
            keys.append(entry.timestamp)
    expected = None
    if vs.frames:
        expected = vs.frames
    else:
        duration = seconds(vs.duration, vs.time_base) or (container.duration or 0) / av.time_base
        rate = vs.average_rate or vs.guessed_rate
        if duration and rate:
            expected = duration * float(rate)
    complete = bool(expected) and n >= 0.9 * expected and len(keys) < n
    return keys, times, complete


def _median_gap(timestamps: list[int], tb) -> float | None:
    ts = np.unique(np.asarray(timestamps, dtype=np.int64))
    if len(ts) < 2:
        return None
    return float(np.median(np.diff(ts)) * tb)


def _is_variable(timestamps: list[int]) -> bool:
    """Whether frame intervals vary: more than 5% of them differ from the median by over 20%
    (and by more than 2 ticks, which absorbs the rounding of 1/1000 time bases)."""
    ts = np.unique(np.asarray(timestamps, dtype=np.int64))
    if len(ts) < 4:
        return False
    gaps = np.diff(ts)
    median = float(np.median(gaps))
    off = np.abs(gaps - median) > max(2.0, 0.2 * median)
    return bool(off.mean() > 0.05)


def _check_first_audio_frame(
    path: PathLike, container: av.container.InputContainer, aus: av.stream.Stream
) -> None:
    failures = 0
    last_error: BaseException | None = None
    for packet in container.demux(aus):
        try:
            if packet.decode():
                return
        except (av.FFmpegError, ValueError, EOFError) as exc:
            failures += 1
            last_error = exc
            if failures > _FIRST_FRAME_MAX_PACKETS:
                break
        if packet.size == 0:
            break
    detail = f": {describe(last_error)}" if last_error else ""
    raise MediaError(path, f"truncated or corrupt: no decodable audio frame{detail}")


def _duration(
    container: av.container.InputContainer,
    vs: av.stream.Stream | None,
    aus: av.stream.Stream | None,
    scanned_end: float | None,
) -> float:
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    ends = []
    for stream in (vs, aus):
        if stream is not None:
            length = seconds(stream.duration, stream.time_base)
            if length:
                ends.append(length)
    if ends:
        return max(ends)
    if scanned_end is not None and vs is not None:
        return max(0.0, scanned_end - stream_start(vs))
    return 0.0


def _codec_name(stream: av.stream.Stream | None) -> str | None:
    if stream is None:
        return None
    # The codec's own name ("mp3"), not the decoder's ("mp3float", "libdav1d").
    codec = stream.codec_context.codec
    return getattr(codec, "canonical_name", None) or codec.name


def _container_name(fmt: str, path: PathLike) -> str:
    """One name for FFmpeg's demuxer family names: "mov,mp4,m4a,3gp,3g2,mj2" → the one that matches the
    file extension, else the first."""
    names = fmt.split(",")
    if len(names) == 1:
        return fmt
    ext = os.path.splitext(os.fsdecode(os.fspath(path)))[1].lstrip(".").lower()
    return ext if ext in names else names[0]
