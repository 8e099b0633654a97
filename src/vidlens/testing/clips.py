"""Synthetic test clips made with the ffmpeg CLI and espeak-ng.

Every test suite of vidlens and the demo use these clips, so nothing in the project needs real videos to
be tested. Pictures come from ffmpeg's lavfi sources (``testsrc2``, ``smptebars``, ``mandelbrot``, a solid
``color`` ...), on-screen text is drawn large and high-contrast with a CJK font (so OCR can read it back),
speech is synthesised by espeak-ng (Mandarin ``cmn`` or English ``en``) and tones are sine waves.

Only this module shells out to ffmpeg; the library itself decodes with PyAV (see :mod:`vidlens.media`).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

APT_LINE = "apt-get install ffmpeg espeak-ng fonts-noto-cjk"

PATTERNS = (
    "testsrc2",
    "testsrc",
    "smptebars",
    "smptehdbars",
    "rgbtestsrc",
    "mandelbrot",
    "cellauto",
    "life",
    "pal75bars",
    "yuvtestsrc",
    "color",
)

AUDIO_ONLY_EXTENSIONS = (".mp3", ".wav", ".m4a", ".ogg", ".opus", ".flac")

# Containers by extension: (default video codec, default audio codec, allowed video, allowed audio).
# None as an allowed set means "anything ffmpeg agrees to mux".
_CONTAINERS: dict[str, tuple[str | None, str, frozenset[str] | None, frozenset[str] | None]] = {
    ".mp4": ("libx264", "aac", None, frozenset({"aac", "libmp3lame", "libopus", "ac3", "mp2"})),
    ".mov": ("libx264", "aac", None, frozenset({"aac", "libmp3lame", "ac3", "pcm_s16le", "alac"})),
    ".mkv": ("libx264", "aac", None, None),
    ".webm": ("libvpx-vp9", "libopus", frozenset({"libvpx-vp9", "libvpx", "libaom-av1"}),
              frozenset({"libopus", "libvorbis"})),
    ".avi": ("mpeg4", "libmp3lame", frozenset({"mpeg4", "libx264", "libxvid", "mjpeg", "libx265"}),
             frozenset({"libmp3lame", "ac3", "aac", "pcm_s16le", "mp2"})),
    ".mp3": (None, "libmp3lame", frozenset(), frozenset({"libmp3lame"})),
    ".wav": (None, "pcm_s16le", frozenset(), frozenset({"pcm_s16le", "pcm_f32le"})),
    ".m4a": (None, "aac", frozenset(), frozenset({"aac", "alac"})),
    ".ogg": (None, "libopus", frozenset(), frozenset({"libopus", "libvorbis", "flac"})),
    ".opus": (None, "libopus", frozenset(), frozenset({"libopus"})),
    ".flac": (None, "flac", frozenset(), frozenset({"flac"})),
}

_DEFAULT_VCODEC = "libx264"
_DEFAULT_ACODEC = "aac"
_AUDIO_RATE = 48000  # every encoder used here (opus included) accepts 48 kHz
_ESPEAK_VOICES = {"en": "en", "zh": "cmn", "cmn": "cmn", "zh-cn": "cmn"}
_CJK_FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
)


# --------------------------------------------------------------------------------------------- tools


@functools.cache
def cjk_font() -> str | None:
    """Path of a font that draws both CJK and Latin text, or None when none is installed."""
    for candidate in _CJK_FONT_CANDIDATES:
        if os.path.isfile(candidate):
            return candidate
    if shutil.which("fc-match"):
        try:
            out = subprocess.run(
                ["fc-match", "-f", "%{file}", "Noto Sans CJK SC:bold"],
                capture_output=True, text=True, timeout=10, check=False,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out and os.path.isfile(out) and "cjk" in out.lower():
            return out
    return None


@functools.cache
def available_encoders() -> frozenset[str]:
    """Names of the encoders the installed ffmpeg CLI offers (empty when ffmpeg is missing)."""
    if not shutil.which("ffmpeg"):
        return frozenset()
    out = subprocess.run(
        ["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True, check=False
    ).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        # Lines look like " V....D libx264   libx264 H.264 ..."; the legend above them has "=" in it.
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] in "VAS" and "=" not in line:
            names.add(parts[1])
    return frozenset(names)


def has_encoder(name: str) -> bool:
    """Whether the installed ffmpeg CLI can encode with ``name`` (e.g. ``"libx265"``)."""
    return name in available_encoders()


def missing_tools(*, need_speech: bool = True, need_text: bool = True) -> list[str]:
    """What the clip generator lacks: ffmpeg always, espeak-ng for speech, a CJK font for text."""
    missing = []
    if not shutil.which("ffmpeg"):
        missing.append("ffmpeg")
    if need_speech and not shutil.which("espeak-ng"):
        missing.append("espeak-ng")
    if need_text and cjk_font() is None:
        missing.append("a CJK font (fonts-noto-cjk)")
    return missing


def require_tools() -> None:
    """Check that the command-line tools the clip generator needs are installed.

    Raises:
        RuntimeError: naming what is missing and the ``apt-get install`` line that provides it.
    """
    _raise_if_missing(missing_tools())


def _raise_if_missing(missing: list[str]) -> None:
    if missing:
        raise RuntimeError(
            f"the synthetic clip generator needs {', '.join(missing)}; install with: {APT_LINE}"
        )


# ---------------------------------------------------------------------------------------- make_clip


def make_clip(
    path: str | os.PathLike,
    *,
    duration: float = 2.0,
    size: tuple[int, int] = (320, 240),
    fps: float = 25,
    pattern: str = "testsrc2",
    color: str | None = None,
    text: str | None = None,
    text_from: float = 0.0,
    text_to: float | None = None,
    speech: str | None = None,
    lang: str = "en",
    tone_hz: float | None = None,
    audio: bool = True,
    video: bool = True,
    vcodec: str = _DEFAULT_VCODEC,
    acodec: str = _DEFAULT_ACODEC,
    rotate: int = 0,
    gop: int | None = None,
    vfr: bool = False,
    black_until: float = 0.0,
) -> Path:
    """Write a synthetic clip to ``path`` and return it.

    The container follows the extension: ``.mp4 .mov .mkv .webm .avi`` for video, ``.mp3 .wav .m4a .ogg
    .opus .flac`` for audio only (``video=False``). A codec left at its default that the container cannot
    hold is replaced by the container's usual one (``.webm`` → VP9/Opus, ``.avi`` → MPEG-4/MP3, ``.mp3`` →
    MP3 ...); a codec asked for explicitly that the container cannot hold raises ``ValueError``.

    Arguments:
        path: output file; its parent folder must exist. Written atomically (temporary name, then rename).
        duration: length in seconds.
        size: (width, height) of the coded picture.
        fps: frame rate (of the source; see ``vfr``).
        pattern: lavfi picture source, one of :data:`PATTERNS`.
        color: a solid colour (ffmpeg colour name or ``#RRGGBB``); when given it replaces ``pattern``.
        text: text drawn large, white on a black box, centred, during ``[text_from, text_to]``; may hold
            Chinese and several lines.
        text_from, text_to: when the text is on screen, in seconds (``text_to=None``: to the end).
        speech: a sentence spoken by espeak-ng, padded with silence or cut to ``duration``.
        lang: speech language, ``"en"`` or ``"zh"`` (Mandarin; ``"cmn"`` also accepted).
        tone_hz: a sine tone. ``None`` gives a 440 Hz tone when there is no speech, and no tone under
            speech; ``0`` gives a silent (all-zero) track. With speech the tone is mixed in quietly.
        audio: whether the clip has an audio track (stereo, 48 kHz).
        video: whether the clip has a video track; ``False`` makes an audio-only file.
        vcodec: ffmpeg video encoder: ``libx264``, ``libx265``, ``libvpx-vp9``, ``mpeg4`` ...
        acodec: ffmpeg audio encoder: ``aac``, ``libmp3lame``, ``libopus``, ``ac3`` ...
        rotate: display rotation in degrees counter-clockwise (0/90/180/270), written as a display
            matrix; only ``.mp4``/``.mov``. :func:`vidlens.media.probe` reports it back as ``rotation``.
        gop: keyframe interval in frames (scene-cut keyframes disabled); ``None``: encoder default.
        vfr: make the frame rate variable: full rate in the first half, every third frame in the second.
        black_until: the picture is black until this time (seconds), e.g. to test cover selection.

    Returns:
        ``Path(path)``.

    Raises:
        ValueError: a bad argument or a codec/container pair that cannot work.
        RuntimeError: a missing tool (naming the apt-get line) or an ffmpeg/espeak-ng failure.
    """
    out = Path(os.fsdecode(path))
    ext = out.suffix.lower()
    if ext not in _CONTAINERS:
        raise ValueError(f"unsupported clip extension {ext!r}; use one of {sorted(_CONTAINERS)}")
    default_v, default_a, allowed_v, allowed_a = _CONTAINERS[ext]
    if default_v is None and video:
        raise ValueError(f"{ext} is an audio-only container; pass video=False")
    if not video and not audio:
        raise ValueError("a clip needs video, audio or both")
    if duration <= 0:
        raise ValueError(f"duration must be > 0, got {duration}")
    if rotate % 360 not in (0, 90, 180, 270):
        raise ValueError(f"rotate must be 0, 90, 180 or 270, got {rotate}")
    rotate %= 360
    if rotate and ext not in (".mp4", ".mov"):
        raise ValueError("rotation metadata is written only to .mp4/.mov clips")
    if vfr and ext == ".avi":
        raise ValueError("AVI cannot hold variable frame rate video")
    if pattern not in PATTERNS:
        raise ValueError(f"unknown pattern {pattern!r}; use one of {PATTERNS}")
    vcodec = _pick_codec(vcodec, _DEFAULT_VCODEC, default_v, allowed_v, ext, "video") if video else ""
    acodec = _pick_codec(acodec, _DEFAULT_ACODEC, default_a, allowed_a, ext, "audio") if audio else ""
    _raise_if_missing(missing_tools(need_speech=bool(speech and audio), need_text=bool(text and video)))
    for codec in (vcodec, acodec):
        if codec and not has_encoder(codec):
            raise RuntimeError(f"this ffmpeg has no {codec!r} encoder")

    with tempfile.TemporaryDirectory(prefix="vidlens-clip-") as work:
        work_dir = Path(work)
        args: list[str] = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
        graph: list[str] = []
        maps: list[str] = []
        n_inputs = 0
        if video:
            args += ["-f", "lavfi", "-t", f"{duration}", "-i", _video_source(pattern, color, size, fps)]
            vfilters = _video_filters(
                work_dir, size=size, duration=duration, text=text, text_from=text_from, text_to=text_to,
                vfr=vfr, black_until=black_until,
            )
            graph.append(f"[{n_inputs}:v]{','.join(vfilters)}[vout]")
            maps += ["-map", "[vout]"]
            n_inputs += 1
        if audio:
            audio_inputs, audio_graph = _audio_parts(
                work_dir, first_input=n_inputs, duration=duration, speech=speech, lang=lang, tone_hz=tone_hz
            )
            args += audio_inputs
            graph.append(audio_graph)
            maps += ["-map", "[aout]"]
        args += ["-filter_complex", ";".join(graph), *maps, "-t", f"{duration}"]
        if video:
            args += _video_codec_args(vcodec, gop)
            if vfr:
                args += ["-fps_mode", "vfr"]
        else:
            args += ["-vn"]
        if audio:
            args += _audio_codec_args(acodec)
        encoded = work_dir / f"encoded{ext}"
        _run([*args, str(encoded)])
        if rotate:
            rotated = work_dir / f"rotated{ext}"
            # This ffmpeg writes a display matrix from the legacy "rotate" tag only when stream-copying.
            _run([
                "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(encoded),
                "-map", "0", "-c", "copy", "-metadata:s:v:0", f"rotate={rotate}", str(rotated),
            ])
            encoded = rotated
        out.parent.mkdir(parents=True, exist_ok=True)
        staged = out.with_name(f".{out.stem}.part-{os.getpid()}{ext}")
        shutil.move(str(encoded), staged)
        os.replace(staged, out)
    return out


def make_image(
    path: str | os.PathLike,
    *,
    size: tuple[int, int] = (320, 240),
    pattern: str = "testsrc2",
    color: str | None = None,
    text: str | None = None,
) -> Path:
    """Write a still picture (``.png``, ``.jpg``, ``.webp`` by extension), e.g. a cover file for a video.

    Arguments are those of :func:`make_clip`: the first frame of such a clip, text on it if given.
    """
    out = Path(os.fsdecode(path))
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp", ".bmp"):
        raise ValueError(f"unsupported image extension {out.suffix!r}")
    if pattern not in PATTERNS:
        raise ValueError(f"unknown pattern {pattern!r}; use one of {PATTERNS}")
    _raise_if_missing(missing_tools(need_speech=False, need_text=bool(text)))
    with tempfile.TemporaryDirectory(prefix="vidlens-image-") as work:
        filters = _video_filters(
            Path(work), size=size, duration=1.0, text=text, text_from=0.0, text_to=None, vfr=False,
            black_until=0.0,
        )
        filters[-1] = "format=rgb24"
        _run([
            "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
            "-i", _video_source(pattern, color, size, 25), "-vf", ",".join(filters), "-frames:v", "1",
            "-update", "1", str(out),
        ])
    return out


def _pick_codec(
    asked: str, signature_default: str, container_default: str | None,
    allowed: frozenset[str] | None, ext: str, kind: str,
) -> str:
    if allowed is None or asked in allowed:
        return asked
    if asked == signature_default and container_default:
        return container_default
    raise ValueError(f"a {ext} file cannot hold {kind} codec {asked!r}; use one of {sorted(allowed)}")


def _video_source(pattern: str, color: str | None, size: tuple[int, int], fps: float) -> str:
    w, h = size
    if color is not None or pattern == "color":
        return f"color=c={color or 'gray'}:s={w}x{h}:r={fps}"
    return f"{pattern}=s={w}x{h}:r={fps}"


def _video_filters(
    work_dir: Path, *, size: tuple[int, int], duration: float, text: str | None, text_from: float,
    text_to: float | None, vfr: bool, black_until: float,
) -> list[str]:
    filters = []
    if black_until > 0:
        filters.append(f"drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='lt(t,{black_until})'")
    if text:
        text_file = work_dir / "text.txt"
        text_file.write_text(text, encoding="utf-8")
        end = duration if text_to is None else text_to
        fontsize = _font_size(text, size)
        filters.append(
            "drawtext="
            f"fontfile='{_filter_escape(cjk_font() or '')}':textfile='{_filter_escape(str(text_file))}':"
            f"expansion=none:fontsize={fontsize}:fontcolor=white:box=1:boxcolor=black:"
            f"boxborderw={max(2, fontsize // 4)}:line_spacing={max(1, fontsize // 5)}:"
            "x=(w-text_w)/2:y=(h-text_h)/2:"
            f"enable='between(t,{text_from},{end})'"
        )
    if vfr:
        # Full rate in the first half, a third of it afterwards: frame intervals differ by 3x.
        filters.append(f"select='if(lt(t,{duration / 2}),1,not(mod(n,3)))'")
    filters.append("format=yuv420p")
    return filters


def _font_size(text: str, size: tuple[int, int]) -> int:
    """The largest font size (px) at which every line fits in 90% of the width and all lines in 80% of
    the height."""
    w, h = size
    lines = text.splitlines() or [text]
    # Width of a line in ems: CJK glyphs are square, Latin ones about 0.6 em.
    ems = max(sum(1.0 if ord(ch) >= 0x2E80 else 0.6 for ch in line) for line in lines) or 1.0
    by_width = 0.9 * w / ems
    by_height = 0.8 * h / (1.3 * len(lines))
    return max(10, int(min(by_width, by_height, 0.2 * h)))


def _filter_escape(value: str) -> str:
    # Inside a single-quoted filter option only the quote itself needs care.
    return value.replace("\\", "\\\\").replace("'", r"'\''")


def _audio_parts(
    work_dir: Path, *, first_input: int, duration: float, speech: str | None, lang: str,
    tone_hz: float | None,
) -> tuple[list[str], str]:
    """ffmpeg input arguments and the filter graph that ends in ``[aout]`` (stereo, 48 kHz)."""
    inputs: list[str] = []
    chains: list[str] = []
    labels: list[str] = []
    index = first_input
    if speech:
        wav = work_dir / "speech.wav"
        _speak(speech, lang, wav)
        inputs += ["-i", str(wav)]
        chains.append(
            f"[{index}:a]aresample={_AUDIO_RATE},aformat=channel_layouts=mono,"
            f"apad=whole_dur={duration},atrim=0:{duration}[speech]"
        )
        labels.append("[speech]")
        index += 1
    if tone_hz is None and not speech:
        tone_hz = 440.0
    if tone_hz:
        volume = 0.15 if speech else 0.5
        inputs += ["-f", "lavfi", "-t", f"{duration}", "-i",
                   f"sine=frequency={tone_hz}:sample_rate={_AUDIO_RATE}"]
        chains.append(f"[{index}:a]volume={volume}[tone]")
        labels.append("[tone]")
        index += 1
    if not labels:  # tone_hz == 0 and no speech: a silent track
        inputs += ["-f", "lavfi", "-t", f"{duration}", "-i", f"anullsrc=r={_AUDIO_RATE}:cl=mono"]
        chains.append(f"[{index}:a]anull[silence]")
        labels.append("[silence]")
    mix = f"amix=inputs={len(labels)}:duration=first:normalize=0," if len(labels) > 1 else ""
    chains.append(f"{''.join(labels)}{mix}aformat=sample_rates={_AUDIO_RATE}:channel_layouts=stereo[aout]")
    return inputs, ";".join(chains)


def _speak(sentence: str, lang: str, wav: Path) -> None:
    voice = _ESPEAK_VOICES.get(lang.lower(), lang)
    try:
        proc = subprocess.run(
            ["espeak-ng", "-v", voice, "-s", "150", "-w", str(wav), "--stdin"],
            input=sentence.encode("utf-8"), capture_output=True, timeout=60, check=False,
        )
    except FileNotFoundError as exc:
        raise RuntimeError(f"espeak-ng is not installed; install with: {APT_LINE}") from exc
    if proc.returncode != 0 or not wav.exists():
        raise RuntimeError(f"espeak-ng failed for voice {voice!r}: {proc.stderr.decode(errors='replace')}")


def _video_codec_args(vcodec: str, gop: int | None) -> list[str]:
    args = ["-c:v", vcodec]
    if vcodec == "libx264":
        args += ["-preset", "veryfast", "-crf", "23"]
        if gop:
            args += ["-g", str(gop), "-sc_threshold", "0"]
    elif vcodec == "libx265":
        params = "log-level=error"
        if gop:
            params += f":keyint={gop}:min-keyint={gop}:scenecut=0"
        args += ["-preset", "ultrafast", "-crf", "28", "-x265-params", params, "-tag:v", "hvc1"]
    elif vcodec in ("libvpx-vp9", "libvpx"):
        args += ["-deadline", "realtime", "-cpu-used", "8", "-b:v", "0", "-crf", "36"]
        if gop:
            args += ["-g", str(gop), "-keyint_min", str(gop)]
    else:
        args += ["-q:v", "5"]
        if gop:
            args += ["-g", str(gop)]
    return args


def _audio_codec_args(acodec: str) -> list[str]:
    args = ["-c:a", acodec]
    if acodec in ("aac", "libmp3lame", "libopus", "libvorbis"):
        args += ["-b:a", "96k"]
    return args


def _run(args: list[str]) -> None:
    proc = subprocess.run(args, capture_output=True, timeout=600, check=False)
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", errors="replace").strip()[-2000:]
        raise RuntimeError(f"ffmpeg failed ({proc.returncode}): {' '.join(args[:3])} ...\n{err}")


# ----------------------------------------------------------------------------------- make_sample_set

# (file name, make_clip keywords, title, summary, [level-1, level-2] labels)
_SAMPLES: tuple[tuple[str, dict, str, str, list[str]], ...] = (
    (
        "zh_cooking.mp4",
        {"color": "#b5651d", "text": "红烧肉 家常做法", "lang": "zh",
         "speech": "今天我们来做红烧肉，先把五花肉切成小块。"},
        "红烧肉的家常做法", "一步一步教你做一道好吃的红烧肉。", ["美食", "家常菜"],
    ),
    (
        "en_football.mp4",
        {"pattern": "smptebars", "text": "GOAL!", "lang": "en",
         "speech": "What a great goal in the second half of the football match."},
        "Football match highlights", "The best goals of the second half.", ["体育", "足球"],
    ),
    (
        "zh_phone_review.mkv",
        {"pattern": "testsrc2", "text": "手机测评\nPHONE REVIEW", "lang": "zh",
         "speech": "这款手机的拍照效果非常好，电池也很耐用。", "vcodec": "libx265", "acodec": "libopus"},
        "新款手机上手测评", "拍照、续航和屏幕全面评测。", ["科技", "数码"],
    ),
    (
        "fractal_tone.mp4",
        {"pattern": "mandelbrot", "tone_hz": 440.0},
        "Fractal zoom with a calm tone", "A mandelbrot animation with a steady sine tone.", ["艺术", "动画"],
    ),
    (
        "travel_silent.mp4",
        {"pattern": "testsrc", "text": "旅行 Vlog", "audio": False},
        "周末旅行 Vlog", "A silent travel vlog with captions only.", ["旅行", "旅行记录"],
    ),
    (
        "podcast_audio_only.m4a",
        {"video": False, "speech": "Welcome to our podcast about technology news and gadgets.", "lang": "en"},
        "Tech news podcast", "An audio-only episode about technology news.", ["科技", "播客"],
    ),
    (
        "en_news.webm",
        {"pattern": "rgbtestsrc", "text": "NEWS", "speech": "Breaking news from the city this morning.",
         "lang": "en", "vcodec": "libvpx-vp9", "acodec": "libopus"},
        "Morning city news", "Breaking news from the city.", ["资讯", "社会新闻"],
    ),
    (
        "zh_music.mp4",
        {"pattern": "pal75bars", "text": "音乐 MUSIC", "tone_hz": 660.0},
        "轻音乐片段", "一段带字幕的音乐片段。", ["音乐", "纯音乐"],
    ),
)


def make_sample_set(folder: str | os.PathLike, *, n: int = 6) -> list[dict]:
    """Write ``n`` varied clips into ``folder`` and return their manifest rows.

    The set is deterministic and mixes Chinese and English speech, drawn Chinese/English text, a pure
    tone, a silent clip (no audio track) and an audio-only file, in several containers. Each clip lasts
    4 seconds at 320×240.

    Arguments:
        folder: where to write; created if missing.
        n: how many clips, 1 to ``len(_SAMPLES)`` (8); the first six cover every kind listed above.

    Returns:
        One dict per clip: ``{"path": str (absolute), "title": str, "summary": str,
        "labels": [level-1 category, level-2 category]}``.
    """
    if not 1 <= n <= len(_SAMPLES):
        raise ValueError(f"n must be between 1 and {len(_SAMPLES)}, got {n}")
    root = Path(os.fsdecode(folder))
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, kwargs, title, summary, labels in _SAMPLES[:n]:
        path = make_clip(root / name, duration=4.0, **kwargs)
        rows.append({"path": str(path.resolve()), "title": title, "summary": summary, "labels": list(labels)})
    return rows


__all__ = [
    "APT_LINE",
    "AUDIO_ONLY_EXTENSIONS",
    "PATTERNS",
    "available_encoders",
    "cjk_font",
    "has_encoder",
    "make_clip",
    "make_image",
    "make_sample_set",
    "missing_tools",
    "require_tools",
]
