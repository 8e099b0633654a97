"""Decoding: what a media file holds, frames, audio and cover, with PyAV (never the ffmpeg CLI).

- :func:`probe` → :class:`MediaInfo`: validates a file (decodes its first frame) and describes it.
- :func:`sample_frames` / :func:`iter_frames`: RGB frames uniformly in time, cost bounded by
  ``max_frames``; seeks or decodes straight through per file, whichever decodes less.
- :func:`read_audio`: the audio track as 16 kHz mono float32.
- :func:`cover_image`: a shipped cover file, or the most informative early keyframe.
- :func:`first_readable`: the first of a video's known paths that can be opened.

Every failure on a bad file is a :class:`vidlens.errors.MediaError` naming the file and the reason.
"""

from vidlens.media._container import first_readable
from vidlens.media.audio import read_audio
from vidlens.media.cover import cover_image
from vidlens.media.frames import SampledFrames, iter_frames, sample_frames, target_times
from vidlens.media.probe import MediaInfo, probe

__all__ = [
    "MediaInfo",
    "SampledFrames",
    "cover_image",
    "first_readable",
    "iter_frames",
    "probe",
    "read_audio",
    "sample_frames",
    "target_times",
]
