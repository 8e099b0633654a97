"""Frames sampled uniformly in time: :func:`sample_frames` and its streaming form :func:`iter_frames`.

Cost is bounded by ``max_frames`` whatever the file's length. For each target time the sampler either
seeks (to the keyframe before the target, then decodes up to it) or keeps decoding forward, whichever
decodes fewer frames: on short-GOP video (a keyframe every second or two, typical of short videos)
that means one seek per target; on long-GOP video it means decoding straight through. Keyframe positions
come from the container index (MP4/MOV/AVI list every frame, Matroska/WebM cues list keyframes); without
an index the keyframe interval from :func:`~vidlens.media.probe` stands in. Only the chosen frames are
converted to RGB, scaled by swscale during the conversion.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import av
import av.container
import av.stream
import numpy as np

from vidlens.errors import MediaError
from vidlens.media._container import (
    PathLike,
    frame_to_rgb,
    open_media,
    output_size,
    reading,
    seconds,
    stream_start,
    video_stream,
)
from vidlens.media.probe import MediaInfo, probe

log = logging.getLogger(__name__)

# A seek costs about as much as decoding this many frames (demuxer seek, decoder flush, thread restart).
_SEEK_COST_FRAMES = 4
# How far back from a target the index is walked to find its keyframe.
_MAX_INDEX_WALK = 2000


@dataclass(frozen=True)
class SampledFrames:
    """Frames sampled from a video.

    Attributes:
        times: ``float32 (N,)`` presentation time of each frame in seconds from the start of the video.
        frames: ``uint8 (N, H, W, 3)`` RGB, rotated for display and scaled to ``max_side``.
    """

    times: np.ndarray
    frames: np.ndarray

    def __len__(self) -> int:
        return len(self.times)


def target_times(
    duration: float, *, fps: float, max_frames: int, video_fps: float | None = None
) -> np.ndarray:
    """The times (seconds) at which to sample: every ``1/fps`` seconds from 0, or, when that would give
    more than ``max_frames``, ``max_frames`` times spread evenly over the whole duration.

    A target is only made where the video still has a frame (``duration - 1/video_fps``), so a 2 s clip
    at ``fps=1`` gives two frames (0 s and 1 s).
    """
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    last_frame = max(0.0, duration - (1.0 / video_fps if video_fps else 0.0))
    n = math.floor(last_frame * fps + 1e-6) + 1
    if n <= max_frames:
        return np.arange(n, dtype=np.float64) / fps
    return np.arange(max_frames, dtype=np.float64) * (duration / max_frames)


def sample_frames(
    path: PathLike,
    *,
    fps: float = 1.0,
    max_frames: int = 64,
    max_side: int | None = None,
    info: MediaInfo | None = None,
) -> SampledFrames:
    """Sample RGB frames uniformly in time.

    Arguments:
        path: a video file.
        fps: frames per second to sample.
        max_frames: at most this many frames; when ``duration * fps`` is more, ``max_frames`` frames are
            spread evenly over the whole video.
        max_side: scale frames down so their longer side is at most this (done inside the decoder's
            converter); None keeps the display size.
        info: the file's :class:`MediaInfo` if already probed (saves a probe).

    Returns:
        :class:`SampledFrames`, frames rotated for display.

    Raises:
        MediaError: the file cannot be read, has no video track ("no video track"), or no frame decodes.
    """
    times: list[float] = []
    frames: list[np.ndarray] = []
    for t, rgb in iter_frames(path, fps=fps, max_frames=max_frames, max_side=max_side, info=info):
        times.append(t)
        frames.append(rgb)
    return SampledFrames(times=np.asarray(times, dtype=np.float32), frames=np.stack(frames))


def iter_frames(
    path: PathLike,
    *,
    fps: float = 1.0,
    max_frames: int = 64,
    max_side: int | None = None,
    info: MediaInfo | None = None,
) -> Iterator[tuple[float, np.ndarray]]:
    """Streaming form of :func:`sample_frames`: yields ``(time_seconds, rgb_uint8_HxWx3)`` in time order.

    The file is probed (unless ``info`` is given) and the arguments checked when this is called; frames
    are decoded as the iterator is consumed. Undecodable packets in the middle are skipped.

    Raises:
        MediaError: as :func:`sample_frames`; also while iterating, if no frame at all decodes.
    """
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    info = info if info is not None else probe(path)
    if not info.has_video:
        raise MediaError(path, "no video track")
    return _sample(path, info, fps=fps, max_frames=max_frames, max_side=max_side)


def _sample(
    path: PathLike, info: MediaInfo, *, fps: float, max_frames: int, max_side: int | None
) -> Iterator[tuple[float, np.ndarray]]:
    with open_media(path) as container, reading(path):
        vs = video_stream(container)
        if vs is None:
            raise MediaError(path, "no video track")
        start = stream_start(vs)
        duration = seconds(vs.duration, vs.time_base) or info.duration
        targets = target_times(duration, fps=fps, max_frames=max_frames, video_fps=info.fps)
        step = float(targets[1] - targets[0]) if len(targets) > 1 else max(duration, 1.0 / fps)
        # A frame serves a target when it starts at most half a frame before it: the nearest frame.
        tol = 0.5 / info.fps if info.fps else 0.02
        planner = _SeekPlanner(container, vs, start, info.keyframe_interval, info.fps)
        # Frame threading pays off when decoding runs of frames; after every seek it would decode
        # frames past the target in parallel only to throw them away.
        vs.thread_type = "SLICE" if planner.mostly_seeking(targets) else "AUTO"

        size: tuple[int, int] | None = None
        position = -math.inf  # time of the last decoded frame; -inf: at the start of the stream
        decoder = _Decoder(container, vs, start)
        decoded = decoder.frames()
        last: av.VideoFrame | None = None
        last_time = -math.inf
        last_rgb: np.ndarray | None = None
        emitted_last = False
        i = 0
        while i < len(targets):
            target = float(targets[i])
            if planner.should_seek(position, target):
                try:
                    container.seek(planner.seek_offset(target), stream=vs, backward=True)
                    decoded.close()
                    decoded = decoder.frames()
                    position = -math.inf
                except (av.FFmpegError, OSError, ValueError) as exc:
                    log.debug("%s: seek failed (%s); decoding straight through", path, exc)
                    planner.disable()
            found = None
            decoder.useless_before = target - tol
            for frame in decoded:
                t = _frame_time(frame, start, position, info.fps)
                position = t
                last, last_time, emitted_last, last_rgb = frame, t, False, None
                if t >= target - tol:
                    found = frame
                    break
            if found is None:
                break  # end of stream
            while i < len(targets) and last_time >= targets[i] - tol:
                if last_rgb is None:
                    if size is None:
                        size = output_size(found.width, found.height, max_side)
                    last_rgb = frame_to_rgb(found, rotation=info.rotation, size=size)
                emitted_last = True
                yield last_time, last_rgb
                i += 1
        decoded.close()
        # Targets past the last frame (container duration a little longer than the video): the last
        # frame is what is on screen there, if it is at most one sampling step away.
        if last is not None and i < len(targets) and targets[i] - last_time <= step:
            if last_rgb is None:
                size = size or output_size(last.width, last.height, max_side)
                last_rgb = frame_to_rgb(last, rotation=info.rotation, size=size)
            if not emitted_last:
                yield last_time, last_rgb
        if last is None:
            raise MediaError(path, "truncated or corrupt: no decodable video frame")


def _frame_time(frame: av.VideoFrame, start: float, previous: float, video_fps: float | None) -> float:
    if frame.pts is not None and frame.time_base is not None:
        return float(frame.pts * frame.time_base) - start
    # No timestamp: assume it follows the previous frame at the nominal rate.
    base = previous if math.isfinite(previous) else 0.0
    return base + (1.0 / video_fps if video_fps else 0.04)


class _Decoder:
    """Decoded frames from the container's current position.

    Frames that start before ``useless_before`` (seconds) can no longer be chosen; the ones no other
    frame refers to are not decoded at all (``skip_frame="NONREF"``), which halves the cost of decoding
    through a long GOP. Packets that fail to decode are skipped, and a demuxer error (e.g. a truncated
    file) ends the stream rather than the sampling.
    """

    def __init__(self, container: av.container.InputContainer, vs: av.stream.Stream, start: float):
        self._container = container
        self._vs = vs
        self._ctx = vs.codec_context
        self._tb = vs.time_base
        self._start = start
        self._skip = "DEFAULT"
        self.useless_before = -math.inf

    def frames(self) -> Iterator[av.VideoFrame]:
        demux = self._container.demux(self._vs)
        skipped = 0
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                break
            except (av.FFmpegError, OSError, EOFError, ValueError) as exc:
                log.debug("demuxing stopped early: %s", exc)
                break
            useless = (
                packet.pts is not None and packet.size > 0
                and float(packet.pts * self._tb) - self._start < self.useless_before
            )
            skip = "NONREF" if useless else "DEFAULT"
            if skip != self._skip:
                self._ctx.skip_frame = skip
                self._skip = skip
            try:
                frames = packet.decode()
            except (av.FFmpegError, ValueError, EOFError):
                skipped += 1
                continue
            yield from frames
        if skipped:
            log.debug("skipped %d undecodable packets", skipped)


class _SeekPlanner:
    """Decides per target whether seeking decodes fewer frames than going on from where we are."""

    def __init__(self, container: av.container.InputContainer, vs: av.stream.Stream, start: float,
                 keyframe_interval: float | None, video_fps: float | None):
        self._tb = vs.time_base
        self._start = start
        self._frame = 1.0 / video_fps if video_fps else 0.04
        self._penalty = _SEEK_COST_FRAMES * self._frame
        self._interval = keyframe_interval
        self._enabled = True
        self._entries, self._n = self._load_index(container, vs)
        self._index_keyframes = self._n > 1 and self._has_keyframes()

    @staticmethod
    def _load_index(container: av.container.InputContainer, vs: av.stream.Stream):
        try:
            entries = vs.index_entries
            if len(entries) < 2:
                # Matroska/WebM read their cues (the keyframe index) only on the first seek; seeking to
                # the start, where decoding begins anyway, loads them.
                container.seek(vs.start_time or 0, stream=vs)
                entries = vs.index_entries
            return entries, len(entries)
        except (AttributeError, av.FFmpegError, OSError, ValueError):
            return None, 0

    def disable(self) -> None:
        self._enabled = False

    def seek_offset(self, target: float) -> int:
        return round((target + self._start) / self._tb)

    def should_seek(self, position: float, target: float) -> bool:
        if not self._enabled:
            return False
        if not math.isfinite(position):
            position = 0.0  # at the start of the stream, nothing decoded yet
        forward = target - position
        if forward <= self._penalty:
            return False
        if self._index_keyframes:
            keyframe = self._keyframe_before(target)
            if keyframe is None or keyframe <= position + self._frame:
                return False  # the keyframe is behind us: going on is never worse
            return (target - keyframe) + self._penalty < forward
        if self._interval is None:
            return False
        # Without an index the seek lands somewhere up to one interval before the target.
        return self._interval + self._penalty < forward

    def mostly_seeking(self, targets: np.ndarray) -> bool:
        """Whether most targets will be reached by a seek (judged from the previous target)."""
        seeks = sum(self.should_seek(float(a), float(b)) for a, b in itertools.pairwise(targets))
        return seeks * 2 > len(targets)

    def _has_keyframes(self) -> bool:
        return any(self._entries[i].is_keyframe for i in range(min(self._n, 500)))

    def _keyframe_before(self, target: float) -> float | None:
        ts = (target + self._start) / self._tb
        i = bisect.bisect_right(self._entries, ts, lo=0, hi=self._n, key=lambda e: e.timestamp) - 1
        stop = max(-1, i - _MAX_INDEX_WALK)
        while i > stop:
            entry = self._entries[i]
            if entry.is_keyframe:
                return float(entry.timestamp * self._tb) - self._start
            i -= 1
        return None
