"""End-to-end tests of the command line, run as a real subprocess."""

import json

import pytest
from _cli import run_vidlens

run = run_vidlens


@pytest.fixture
def library(tmp_path):
    return tmp_path / "lib"


def test_help_and_version():
    assert "ingest" in run("--help").stdout
    assert "vidlens" in run("--version").stdout


def test_ingest_status_show_export(library, clip_factory, tmp_path):
    clip = clip_factory(duration=1.0, size=(96, 64), speech="hello world", lang="en")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    proc = run("-L", library, "ingest", "--json", clip, bad, check=False)
    assert proc.returncode == 1  # some items failed
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [x["status"] for x in lines] == ["added", "failed"]
    vid = lines[0]["video_id"]

    status = json.loads(run("-L", library, "status", "--json").stdout)
    assert status["videos"] == 1 and status["errors"] == 1
    assert status["recent_errors"][0]["item"] == str(bad)

    human = run("-L", library, "status").stdout
    assert "bad.mp4" in human

    shown = json.loads(run("-L", library, "show", "--json", vid[:6]).stdout)
    assert shown["id"] == vid and shown["has_audio"] is True

    out = tmp_path / "export.jsonl"
    run("-L", library, "export", "-o", out)
    assert json.loads(out.read_text())["id"] == vid


def test_errors_are_one_clear_line(library):
    proc = run("-L", library, "status", check=False)
    assert proc.returncode == 2
    assert "not a vidlens library" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_config_names_key(library, tmp_path):
    run("-L", library, "init")
    cfg = tmp_path / "c.toml"
    cfg.write_text("[media]\nfps = 0\n")
    proc = run("-L", library, "-c", cfg, "status", check=False)
    assert proc.returncode == 2 and "media.fps" in proc.stderr


def test_config_prints_toml(library):
    run("-L", library, "init")
    assert "[media]" in run("-L", library, "config").stdout
