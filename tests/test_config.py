"""Configuration: defaults, TOML, env vars, and errors that name the key."""

import re

import pytest

from vidlens.config import config_to_toml, load_config
from vidlens.errors import ConfigError


def test_defaults():
    cfg = load_config(environ={})
    assert cfg.media.fps == 1.0
    assert cfg.media.audio_sample_rate == 16000
    assert ".mp4" in cfg.ingest.extensions


def test_toml_then_env_override(tmp_path):
    (tmp_path / "vidlens.toml").write_text("[media]\nfps = 2.0\nmax_frames = 10\n")
    cfg = load_config(tmp_path, environ={"VIDLENS_MEDIA__MAX_FRAMES": "7"})
    assert cfg.media.fps == 2.0
    assert cfg.media.max_frames == 7


def test_extra_config_file_wins_over_library_file(tmp_path):
    (tmp_path / "vidlens.toml").write_text("[media]\nfps = 2.0\n")
    extra = tmp_path / "extra.toml"
    extra.write_text("[media]\nfps = 4.0\n")
    assert load_config(tmp_path, config_file=extra, environ={}).media.fps == 4.0


def test_env_list_values():
    cfg = load_config(environ={"VIDLENS_EXTRACT__MODALITIES": "frames, audio"})
    assert cfg.extract.modalities == ["frames", "audio"]


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"VIDLENS_MEDIA__FPS": "-1"}, "media.fps"),
        ({"VIDLENS_MEDIA__FPS": "fast"}, "media.fps"),
        ({"VIDLENS_MEDIA__NOPE": "1"}, "media.nope"),
    ],
)
def test_invalid_values_name_the_key(env, key):
    with pytest.raises(ConfigError, match=re.escape(key)):
        load_config(environ=env)


def test_bad_toml_names_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[media\nfps=")
    with pytest.raises(ConfigError, match=r"bad\.toml"):
        load_config(config_file=bad, environ={})


def test_round_trip_through_toml(tmp_path):
    cfg = load_config(environ={"VIDLENS_MEDIA__FPS": "3"})
    f = tmp_path / "c.toml"
    f.write_text(config_to_toml(cfg))
    assert load_config(config_file=f, environ={}) == cfg
