"""vidlens.media: probe, frame sampling, audio and cover on synthetic clips and on bad input."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess

import av
import numpy as np
import pytest

from vidlens.errors import MediaError
from vidlens.media import (
    MediaInfo,
    cover_image,
    iter_frames,
    probe,
    read_audio,
    sample_frames,
    target_times,
)
from vidlens.testing import make_image

SMALL = (160, 120)


def reference_frames(path, targets, fps: float) -> list[tuple[float, np.ndarray]]:
    """Brute force: decode every frame, take the first one at or after each target (half a frame early
    allowed), unrotated. What the sampler's seek/skip strategy must reproduce exactly."""
    tol = 0.5 / fps
    picked = []
    with av.open(os.fsdecode(path)) as container:
        stream = container.streams.video[0]
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        k = 0
        for frame in container.decode(stream):
            t = frame.time - start
            while k < len(targets) and t >= targets[k] - tol:
                picked.append((t, frame.to_ndarray(format="rgb24")))
                k += 1
    return picked


# ------------------------------------------------------------------------------------ probe: formats

FORMATS = [
    # suffix, vcodec, acodec, expected video codec, expected audio codec, container
    (".mp4", "libx264", "aac", "h264", "aac", "mp4"),
    (".mkv", "libx265", "libopus", "hevc", "opus", "matroska"),
    (".webm", "libvpx-vp9", "libopus", "vp9", "opus", "webm"),
    (".avi", "mpeg4", "libmp3lame", "mpeg4", "mp3", "avi"),
    (".mov", "libx264", "ac3", "h264", "ac3", "mov"),
    (".mp4", "libx265", "libmp3lame", "hevc", "mp3", "mp4"),
    (".mkv", "libvpx-vp9", "ac3", "vp9", "ac3", "matroska"),
]


@pytest.mark.parametrize(("suffix", "vcodec", "acodec", "vname", "aname", "container"), FORMATS)
def test_probe_sample_and_audio_across_formats(clip_factory, suffix, vcodec, acodec, vname, aname, container):
    path = clip_factory(suffix, duration=1.0, size=SMALL, vcodec=vcodec, acodec=acodec, gop=10)
    info = probe(path)
    assert isinstance(info, MediaInfo)
    assert (info.container, info.video_codec, info.audio_codec) == (container, vname, aname)
    assert info.has_video and info.has_audio
    assert (info.width, info.height) == SMALL
    assert info.fps == pytest.approx(25, rel=0.02)
    assert info.duration == pytest.approx(1.0, abs=0.15)
    assert info.size_bytes == os.path.getsize(path)
    assert info.audio_sample_rate == 48000 and info.audio_channels == 2
    assert info.rotation == 0 and not info.variable_frame_rate
    json.dumps(info.to_dict())

    sampled = sample_frames(path, fps=4, info=info)
    # 4 frames; AVI muxing with MP3 adds a (dropped) 26th frame slot, making the video 1.04 s long.
    n = 5 if suffix == ".avi" else 4
    assert sampled.frames.shape == (n, SMALL[1], SMALL[0], 3) and sampled.frames.dtype == np.uint8
    reference = reference_frames(path, target_times(info.duration, fps=4, max_frames=64, video_fps=25), 25)
    np.testing.assert_allclose(sampled.times, [t for t, _ in reference], atol=1e-3)
    for got, (_, want) in zip(sampled.frames, reference, strict=True):
        np.testing.assert_array_equal(got, want)

    audio = read_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) == pytest.approx(16000, abs=0.1 * 16000)
    assert 0.05 < np.abs(audio).max() <= 1.0


def test_probe_keyframe_interval(clip_factory):
    info = probe(clip_factory(duration=2.0, size=SMALL, gop=10))
    assert info.keyframe_interval == pytest.approx(0.4, abs=0.01)


# --------------------------------------------------------------------------------- tracks and shapes


def test_clip_without_audio(clip_factory):
    path = clip_factory(duration=1.0, size=SMALL, audio=False)
    info = probe(path)
    assert info.has_video and not info.has_audio
    assert info.audio_codec is None and info.audio_sample_rate is None
    with pytest.raises(MediaError, match="no audio track"):
        read_audio(path)
    assert len(sample_frames(path, fps=2, info=info)) == 2


@pytest.mark.parametrize(("suffix", "codec"), [(".m4a", "aac"), (".mp3", "mp3"), (".wav", "pcm_s16le")])
def test_audio_only(clip_factory, suffix, codec):
    path = clip_factory(suffix, duration=1.0, video=False, tone_hz=440.0)
    info = probe(path)
    assert not info.has_video and info.has_audio
    assert info.audio_codec == codec
    assert info.width is None and info.height is None and info.fps is None
    assert info.duration == pytest.approx(1.0, abs=0.1)
    with pytest.raises(MediaError, match="no video track"):
        sample_frames(path)
    with pytest.raises(MediaError, match="no video track: no cover"):
        cover_image(path)
    with pytest.raises(MediaError, match="no video track: no cover"):
        cover_image(path, info=info)
    assert len(read_audio(path)) == pytest.approx(16000, abs=1600)


@pytest.mark.parametrize("rotate", [90, 180, 270])
def test_rotation(clip_factory, rotate):
    path = clip_factory(duration=1.0, size=SMALL, rotate=rotate, audio=False)
    info = probe(path)
    assert info.rotation == rotate
    expected_size = SMALL[::-1] if rotate in (90, 270) else SMALL
    assert (info.width, info.height) == expected_size

    sampled = sample_frames(path, fps=1, info=info)
    assert sampled.frames.shape == (1, expected_size[1], expected_size[0], 3)
    raw = reference_frames(path, [0.0], 25)[0][1]
    np.testing.assert_array_equal(sampled.frames[0], np.rot90(raw, k=rotate // 90))
    # Same orientation as the ffmpeg CLI's autorotation.
    cli = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24",
         "-"],
        capture_output=True, check=True,
    ).stdout
    cli_frame = np.frombuffer(cli, np.uint8).reshape(expected_size[1], expected_size[0], 3)
    np.testing.assert_array_equal(sampled.frames[0], cli_frame)
    assert cover_image(path).shape == (expected_size[1], expected_size[0], 3)


def test_variable_frame_rate(clip_factory):
    vfr = clip_factory(duration=2.0, size=SMALL, vfr=True, audio=False)
    info = probe(vfr)
    assert info.variable_frame_rate
    assert not probe(clip_factory(duration=2.0, size=SMALL, audio=False)).variable_frame_rate
    sampled = sample_frames(vfr, fps=10, info=info)
    targets = target_times(info.duration, fps=10, max_frames=64, video_fps=info.fps)
    reference = reference_frames(vfr, targets, info.fps)
    np.testing.assert_allclose(sampled.times, [t for t, _ in reference], atol=1e-3)
    assert np.all(np.diff(sampled.times) >= 0)
    # In the sparse second half frames are 0.12 s apart: a target gets the next frame within that.
    for t, target in zip(sampled.times, targets, strict=True):
        assert target - 0.03 <= t <= target + 0.125


def test_tenth_of_a_second(clip_factory):
    path = clip_factory(duration=0.1, size=SMALL)
    info = probe(path)
    assert info.duration == pytest.approx(0.1, abs=0.05)
    sampled = sample_frames(path, fps=1, info=info)
    assert len(sampled) == 1 and sampled.times[0] == 0.0
    assert len(read_audio(path)) == pytest.approx(1600, abs=800)
    assert cover_image(path).shape == (SMALL[1], SMALL[0], 3)


def test_4k_frames_are_scaled_in_the_decoder(clip_factory):
    path = clip_factory(duration=0.2, size=(3840, 2160), audio=False)
    info = probe(path)
    assert (info.width, info.height) == (3840, 2160)
    sampled = sample_frames(path, fps=10, max_side=224, info=info)
    assert sampled.frames.shape == (2, 126, 224, 3)
    assert cover_image(path, max_side=224, info=info).shape == (126, 224, 3)


# ---------------------------------------------------------------------------------------- sampling


def test_sampling_counts_and_uniform_times(clip_factory):
    path = clip_factory(duration=2.0, size=SMALL)
    info = probe(path)
    assert len(sample_frames(path, fps=1, info=info)) == 2
    five = sample_frames(path, fps=5, info=info)
    assert len(five) == 10
    np.testing.assert_allclose(five.times, np.arange(10) / 5, atol=1e-3)
    capped = sample_frames(path, fps=25, max_frames=3, info=info)
    assert len(capped) == 3
    # Spread over the whole clip: 0, 2/3, 4/3 s, each the nearest frame (25 fps).
    np.testing.assert_allclose(capped.times, [0.0, 2 / 3, 4 / 3], atol=0.5 / 25 + 1e-6)
    assert capped.frames.shape == (3, SMALL[1], SMALL[0], 3)
    assert capped.times.dtype == np.float32
    half = sample_frames(path, fps=5, max_side=80, info=info)
    assert half.frames.shape == (10, 60, 80, 3)


def test_iter_frames_streams_the_same_frames(clip_factory):
    path = clip_factory(duration=2.0, size=SMALL, gop=5)
    sampled = sample_frames(path, fps=3)
    streamed = list(iter_frames(path, fps=3))
    assert [t for t, _ in streamed] == pytest.approx(sampled.times.tolist(), abs=1e-6)
    for (_, frame), expected in zip(streamed, sampled.frames, strict=True):
        np.testing.assert_array_equal(frame, expected)


@pytest.mark.parametrize(
    ("suffix", "vcodec", "gop"),
    [
        (".mp4", "libx264", 5),
        (".mp4", "libx264", 250),
        (".mkv", "libx265", 5),
        (".webm", "libvpx-vp9", 5),
        (".avi", "mpeg4", 5),
    ],
)
def test_seeking_and_straight_decoding_agree_with_brute_force(clip_factory, suffix, vcodec, gop):
    """Whatever mix of seeks, straight decoding and skipped non-reference frames the sampler uses, it
    returns exactly the frames a full decode would pick."""
    path = clip_factory(suffix, duration=3.0, size=SMALL, vcodec=vcodec, gop=gop, audio=False)
    info = probe(path)
    duration = info.duration
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.duration:  # the sampler spreads targets over the video stream's own length
            duration = float(stream.duration * stream.time_base)
    for fps, max_frames in ((1.0, 64), (3.3, 64), (25.0, 7)):
        targets = target_times(duration, fps=fps, max_frames=max_frames, video_fps=info.fps)
        sampled = sample_frames(path, fps=fps, max_frames=max_frames, info=info)
        reference = reference_frames(path, targets, 25)
        assert len(sampled) == len(reference) == len(targets)
        np.testing.assert_allclose(sampled.times, [t for t, _ in reference], atol=1e-3)
        for got, (_, want) in zip(sampled.frames, reference, strict=True):
            np.testing.assert_array_equal(got, want)


def test_bad_sampling_arguments(clip_factory):
    path = clip_factory(duration=1.0, size=SMALL)
    with pytest.raises(ValueError):
        sample_frames(path, fps=0)
    with pytest.raises(ValueError):
        sample_frames(path, max_frames=0)
    with pytest.raises(ValueError):
        sample_frames(path, max_side=0)


def test_corrupt_middle_does_not_stop_sampling(clip_factory, tmp_path):
    good = clip_factory(duration=2.0, size=SMALL, gop=5, audio=False)
    data = bytearray(good.read_bytes())
    rng = np.random.default_rng(0)
    start, stop = int(len(data) * 0.4), int(len(data) * 0.5)
    data[start:stop] = rng.integers(0, 256, stop - start, dtype=np.uint8).tobytes()
    bad = tmp_path / "corrupt_middle.mp4"
    bad.write_bytes(bytes(data))
    sampled = sample_frames(bad, fps=5)
    assert len(sampled) >= 8  # a few may be lost or damaged, the rest come through
    assert sampled.frames.shape[1:] == (SMALL[1], SMALL[0], 3)


# ------------------------------------------------------------------------------------------- audio


def test_read_audio_is_16k_mono_float(clip_factory):
    path = clip_factory(duration=2.0, size=SMALL, tone_hz=440.0)
    audio = read_audio(path)
    assert audio.dtype == np.float32
    assert len(audio) == pytest.approx(32000, abs=800)
    assert np.abs(audio).max() <= 1.0
    segment = audio[4000:20000]
    peak_hz = np.argmax(np.abs(np.fft.rfft(segment))) * 16000 / len(segment)
    assert peak_hz == pytest.approx(440, abs=5)
    assert len(read_audio(path, max_seconds=0.5)) == 8000
    assert len(read_audio(path, sample_rate=8000)) == pytest.approx(16000, abs=400)


# ------------------------------------------------------------------------------------------- cover


def test_cover_skips_black_opening(clip_factory):
    path = clip_factory(duration=2.0, size=SMALL, black_until=1.0, gop=12, audio=False)
    first = reference_frames(path, [0.0], 25)[0][1]
    assert first.mean() < 20  # the clip really opens black
    cover = cover_image(path)
    assert cover.shape == (SMALL[1], SMALL[0], 3) and cover.dtype == np.uint8
    assert cover.mean() > 50 and cover.std() > 30


def test_cover_of_flat_video_falls_back_to_first_frame(clip_factory):
    path = clip_factory(duration=1.0, size=SMALL, color="black", audio=False)
    cover = cover_image(path)
    assert cover.shape == (SMALL[1], SMALL[0], 3) and cover.mean() < 20


def test_cover_file(clip_factory, tmp_path):
    video = clip_factory(duration=1.0, size=SMALL)
    image = make_image(tmp_path / "cover.png", size=(64, 48), color="red")
    cover = cover_image(video, cover_file=image)
    assert cover.shape == (48, 64, 3)
    assert cover[..., 0].mean() > 200 and cover[..., 1].mean() < 30
    assert cover_image(video, cover_file=image, max_side=32).shape == (24, 32, 3)
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not a picture at all" * 10)
    with pytest.raises(MediaError, match="cover image is not readable") as err:
        cover_image(video, cover_file=junk)
    assert err.value.path == junk
    with pytest.raises(MediaError, match="file not found"):
        cover_image(video, cover_file=tmp_path / "missing.jpg")


# --------------------------------------------------------------------------------------- bad input

READERS = {
    "probe": probe,
    "sample_frames": sample_frames,
    "read_audio": read_audio,
    "cover_image": cover_image,
}


@pytest.fixture
def bad_files(clip_factory, tmp_path) -> dict[str, tuple[str, str]]:
    """name → (path, expected reason prefix)."""
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    good = clip_factory(duration=2.0, size=SMALL)  # ffmpeg's default mp4 has its index at the end
    truncated = tmp_path / "truncated.mp4"
    data = good.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    random_bytes = tmp_path / "random.mp4"
    random_bytes.write_bytes(np.random.default_rng(1).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    text = tmp_path / "notes.txt"
    text.write_text("just some text\n" * 100, encoding="utf-8")
    text_mp4 = tmp_path / "text.mp4"
    text_mp4.write_text("<html>not a video</html>\n" * 50, encoding="utf-8")
    directory = tmp_path / "x.mp4"
    directory.mkdir()
    return {
        "empty": (empty, "empty file (0 bytes)"),
        "truncated": (truncated, "truncated or corrupt: "),
        "random": (random_bytes, "not a media file PyAV/FFmpeg can read: "),
        "text": (text, "not a media file PyAV/FFmpeg can read: "),
        "text_mp4": (text_mp4, "not a media file PyAV/FFmpeg can read: "),
        "directory": (directory, "is a directory"),
        "missing": (tmp_path / "nope.mp4", "file not found"),
    }


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize("case", ["empty", "truncated", "random", "text", "text_mp4", "directory", "missing"])
def test_bad_input_raises_media_error(bad_files, reader, case):
    path, reason = bad_files[case]
    with pytest.raises(MediaError) as err:
        READERS[reader](path)
    assert err.value.reason.startswith(reason), err.value.reason
    assert str(path) in str(err.value)


def test_no_stream_at_all(tmp_path):
    # A valid Matroska file holding only a subtitle track.
    path = tmp_path / "subs_only.mkv"
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n", encoding="utf-8")
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg missing")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(srt), str(path)], check=True)
    with pytest.raises(MediaError, match="no video or audio stream"):
        probe(path)


def test_non_utf8_file_name(clip_factory, tmp_path):
    name = os.path.join(os.fsencode(tmp_path), b"clip_\xff.mp4")
    shutil.copyfile(clip_factory(duration=1.0, size=SMALL), name)
    info = probe(name)
    assert info.has_video and info.duration == pytest.approx(1.0, abs=0.1)
    assert len(sample_frames(name, fps=2, info=info)) == 2
    assert len(read_audio(os.fsdecode(name))) > 0
    assert cover_image(name).shape == (SMALL[1], SMALL[0], 3)

    broken = os.path.join(os.fsencode(tmp_path), b"broken_\xfe.mp4")
    with open(broken, "wb") as fh:
        fh.write(b"\x00" * 100)
    with pytest.raises(MediaError) as err:
        probe(broken)
    message = str(err.value)
    message.encode("utf-8")  # printable: no lone surrogates
    assert "broken_\\xfe.mp4" in message


def test_fuzzed_files_raise_only_media_error(clip_factory, tmp_path):
    good = clip_factory(duration=1.0, size=SMALL, gop=5).read_bytes()
    rng = np.random.default_rng(7)
    for i in range(12):
        data = bytearray(good)
        for _ in range(5):
            at = int(rng.integers(0, len(data) - 64))
            data[at: at + 64] = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
        path = tmp_path / f"fuzz{i}.mp4"
        path.write_bytes(bytes(data))
        for reader in READERS.values():
            with contextlib.suppress(MediaError):
                reader(path)
