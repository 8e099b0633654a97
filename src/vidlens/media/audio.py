"""The audio track as 16 kHz mono float32: :func:`read_audio`."""

from __future__ import annotations

import logging

import av
import numpy as np

from vidlens.errors import MediaError
from vidlens.media._container import PathLike, audio_stream, open_media, reading

log = logging.getLogger(__name__)


def read_audio(path: PathLike, *, sample_rate: int = 16000, max_seconds: float | None = None) -> np.ndarray:
    """Decode the first audio track, mixed down to mono and resampled.

    Arguments:
        path: a video or audio file.
        sample_rate: output rate in Hz.
        max_seconds: stop after this many seconds of audio (None: the whole track).

    Returns:
        ``float32 (N,)`` samples in [-1, 1].

    Raises:
        MediaError: the file cannot be read, or "no audio track".
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be > 0, got {sample_rate}")
    limit = None if max_seconds is None else max(0, round(max_seconds * sample_rate))
    with open_media(path) as container, reading(path):
        stream = audio_stream(container)
        if stream is None:
            raise MediaError(path, "no audio track")
        # Output in one-second frames: the resampler's cost is mostly per output frame.
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate, frame_size=sample_rate)
        chunks: list[np.ndarray] = []
        total = 0
        skipped = 0
        demux = container.demux(stream)
        while limit is None or total < limit:
            try:
                packet = next(demux)
            except StopIteration:
                break
            except (av.FFmpegError, OSError, EOFError, ValueError) as exc:
                log.debug("%s: audio demuxing stopped early: %s", path, exc)
                break
            try:
                frames = packet.decode()
            except (av.FFmpegError, ValueError, EOFError):
                skipped += 1  # a corrupt packet costs its few milliseconds of sound, not the track
                continue
            for frame in frames:
                total += _collect(resampler.resample(frame), chunks)
        if limit is None or total < limit:
            total += _collect(resampler.resample(None), chunks)
        if skipped:
            log.debug("%s: skipped %d undecodable audio packets", path, skipped)
        if not chunks:
            if skipped:
                raise MediaError(path, "truncated or corrupt: no decodable audio frame")
            return np.zeros(0, dtype=np.float32)
        samples = np.concatenate(chunks)
        if limit is not None:
            samples = samples[:limit]
        # Resampling filters can overshoot full scale a little on clipped input.
        np.clip(samples, -1.0, 1.0, out=samples)
        return samples


def _collect(frames: list[av.AudioFrame], chunks: list[np.ndarray]) -> int:
    """Append the samples of packed mono float frames to ``chunks``; return how many there were."""
    n = 0
    for frame in frames:
        # A view of the frame's buffer (kept alive by the array); cheaper than to_ndarray's vstack.
        chunks.append(np.frombuffer(frame.planes[0], dtype=np.float32, count=frame.samples))
        n += frame.samples
    return n
