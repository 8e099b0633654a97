"""Session fixtures shared by every test suite: tiny synthetic clips, each made once per session.

``clip_factory(suffix=".mp4", **make_clip_kwargs)`` returns the path of a clip made by
:func:`vidlens.testing.make_clip`; a second call with the same arguments returns the same file.
Tests that need an encoder this ffmpeg lacks are skipped, as are all clip tests when ffmpeg,
espeak-ng or the CJK font is missing (the skip reason gives the apt-get line).

``database_url`` runs a storage test once on SQLite and once on a PostgreSQL server started for the
session (see ``_postgres.py``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from _postgres import database_url, postgres_server, postgres_url  # noqa: F401  (fixtures)

from vidlens.testing import clips


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-wide folder for generated media."""
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def clip_factory(clip_dir: Path) -> Callable[..., Path]:
    """Make (or reuse) a clip: ``clip_factory(".mkv", duration=1.0, vcodec="libx265")``.

    Takes the keyword arguments of :func:`vidlens.testing.make_clip`, plus the file suffix that picks
    the container.
    """
    made: dict[str, Path] = {}

    def make(suffix: str = ".mp4", **kwargs) -> Path:
        key = hashlib.sha1(
            json.dumps({"suffix": suffix, **kwargs}, sort_keys=True, default=str).encode()
        ).hexdigest()[:16]
        if key in made:
            return made[key]
        needs_speech = bool(kwargs.get("speech")) and kwargs.get("audio", True)
        needs_text = bool(kwargs.get("text")) and kwargs.get("video", True)
        missing = clips.missing_tools(need_speech=needs_speech, need_text=needs_text)
        if missing:
            pytest.skip(f"clip generator needs {', '.join(missing)} ({clips.APT_LINE})")
        for codec_key in ("vcodec", "acodec"):
            codec = kwargs.get(codec_key)
            if codec and not clips.has_encoder(codec):
                pytest.skip(f"this ffmpeg has no {codec} encoder")
        path = clips.make_clip(clip_dir / f"{key}{suffix}", **kwargs)
        made[key] = path
        return path

    return make


@pytest.fixture(scope="session")
def sample_set(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """The demo sample set (6 clips of 4 s: zh/en speech, drawn text, tone, silent, audio-only) with
    manifest rows ``{"path", "title", "summary", "labels"}``."""
    missing = clips.missing_tools()
    if missing:
        pytest.skip(f"clip generator needs {', '.join(missing)} ({clips.APT_LINE})")
    return clips.make_sample_set(tmp_path_factory.mktemp("samples"), n=6)
