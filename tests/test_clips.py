"""vidlens.testing.clips: the synthetic clips every other test relies on are what they claim to be."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from vidlens.media import probe, read_audio, sample_frames
from vidlens.testing import clips, make_clip, require_tools


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


@pytest.mark.parametrize(
    ("lang", "sentence"), [("zh", "今天我们来做红烧肉"), ("en", "hello world, this is a test")]
)
def test_speech_clip_has_voice(clip_factory, lang, sentence):
    path = clip_factory(duration=2.5, size=(160, 120), speech=sentence, lang=lang)
    audio = read_audio(path)
    assert len(audio) == pytest.approx(2.5 * 16000, abs=800)
    assert rms(audio[: 16000]) > 0.02  # espeak-ng starts speaking at once
    silent = read_audio(clip_factory(duration=2.5, size=(160, 120), tone_hz=0))
    assert rms(silent) < 1e-4


def test_text_is_drawn_only_in_its_interval(clip_factory):
    path = clip_factory(duration=2.0, size=(320, 240), color="black", text="红烧肉 ABC", text_from=1.0,
                        text_to=2.0, audio=False)
    sampled = sample_frames(path, fps=2)
    before, during = sampled.frames[1], sampled.frames[2]  # 0.5 s and 1.0 s
    assert (before > 200).mean() < 0.001
    bright = (during.min(axis=2) > 200).mean()
    assert bright > 0.01  # white glyphs, large
    rows = np.nonzero((during.min(axis=2) > 200).any(axis=1))[0]
    assert rows.max() - rows.min() > 20  # glyphs at least 20 px tall


def test_tone_frequency_and_silent_track(clip_factory):
    audio = read_audio(clip_factory(".m4a", duration=1.0, video=False, tone_hz=1000.0))
    segment = audio[2000:14000]
    peak = np.argmax(np.abs(np.fft.rfft(segment))) * 16000 / len(segment)
    assert peak == pytest.approx(1000, abs=5)


def test_container_defaults_and_checks(clip_factory, tmp_path):
    webm = probe(clip_factory(".webm", duration=0.5, size=(64, 48)))
    assert (webm.video_codec, webm.audio_codec) == ("vp9", "opus")
    mp3 = probe(clip_factory(".mp3", duration=0.5, video=False))
    assert (mp3.has_video, mp3.audio_codec) == (False, "mp3")
    with pytest.raises(ValueError, match="cannot hold"):
        make_clip(tmp_path / "a.webm", vcodec="mpeg4")
    with pytest.raises(ValueError, match="rotation"):
        make_clip(tmp_path / "a.mkv", rotate=90)
    with pytest.raises(ValueError, match="audio-only"):
        make_clip(tmp_path / "a.mp3")
    with pytest.raises(ValueError, match="extension"):
        make_clip(tmp_path / "a.xyz")


def test_gop_and_duration(clip_factory):
    info = probe(clip_factory(duration=1.5, size=(64, 48), fps=20, gop=4, audio=False))
    assert info.duration == pytest.approx(1.5, abs=0.06)
    assert info.fps == pytest.approx(20)
    assert info.keyframe_interval == pytest.approx(0.2, abs=0.01)


def test_factory_caches(clip_factory):
    a = clip_factory(duration=0.5, size=(64, 48))
    mtime = os.stat(a).st_mtime_ns
    assert clip_factory(duration=0.5, size=(64, 48)) == a
    assert os.stat(a).st_mtime_ns == mtime
    assert clip_factory(duration=0.5, size=(64, 48), tone_hz=300.0) != a


def test_sample_set(sample_set):
    assert len(sample_set) == 6
    for row in sample_set:
        assert set(row) == {"path", "title", "summary", "labels"}
        assert os.path.isfile(row["path"]) and row["title"] and len(row["labels"]) == 2
    infos = [probe(row["path"]) for row in sample_set]
    assert any(not i.has_video for i in infos)  # audio-only
    assert any(not i.has_audio for i in infos)  # silent
    assert {i.container for i in infos} >= {"mp4", "matroska"}
    assert all(i.duration == pytest.approx(4.0, abs=0.1) for i in infos)


def test_require_tools(monkeypatch):
    require_tools()
    monkeypatch.setattr(shutil, "which", lambda name: None)
    clips.cjk_font.cache_clear()
    monkeypatch.setattr(clips, "_CJK_FONT_CANDIDATES", ())
    try:
        with pytest.raises(RuntimeError, match="apt-get install ffmpeg espeak-ng fonts-noto-cjk"):
            require_tools()
    finally:
        clips.cjk_font.cache_clear()
