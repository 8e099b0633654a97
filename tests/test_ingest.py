"""Ingest through the library API: idempotence, metadata updates, the bad-input suite, kill -9."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

import vidlens
from vidlens.errors import NotFoundError, VidlensError


@pytest.fixture
def lib(tmp_path, database_url):
    """A new library on each metadata backend (on SQLite, the default file inside the folder)."""
    overrides = {"database_url": database_url} if database_url.startswith("postgresql") else None
    with vidlens.open(tmp_path / "lib", overrides=overrides) as library:
        yield library


@pytest.fixture
def good_clip(clip_factory):
    return clip_factory(duration=1.0, size=(160, 120), tone_hz=440)


def _copy(src, dst):
    shutil.copyfile(src, dst)
    return dst


def test_ingest_file_then_again_is_a_noop(lib, good_clip):
    first = lib.ingest(good_clip)
    assert first.counts["added"] == 1
    vid = first.results[0].video_id
    again = lib.ingest(good_clip)
    assert again.counts == {"added": 0, "updated": 0, "unchanged": 1, "failed": 0}
    assert len(lib) == 1
    rec = lib.get(vid[:8])
    assert rec["has_audio"] and rec["has_video"]
    assert rec["duration"] == pytest.approx(1.0, abs=0.1)
    assert rec["paths"] == [os.fsdecode(good_clip)]


def test_same_content_at_two_paths_is_one_video(lib, good_clip, tmp_path):
    copy = _copy(good_clip, tmp_path / "copy.mp4")
    report = lib.ingest([good_clip, copy])
    assert report.counts["added"] == 1 and report.counts["updated"] == 1
    assert len(lib) == 1
    assert len(lib.get(report.results[0].video_id)["paths"]) == 2


def test_manifest_metadata_update_is_applied(lib, good_clip, tmp_path):
    clip = _copy(good_clip, tmp_path / "v.mp4")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"path": "v.mp4", "title": "first", "labels": ["美食"]}) + "\n")
    vid = lib.ingest(manifest).results[0].video_id
    manifest.write_text(json.dumps({"path": "v.mp4", "title": "second", "shop": "x"}) + "\n")
    report = lib.ingest(manifest)
    assert report.counts["updated"] == 1
    rec = lib.get(vid)
    assert rec["title"] == "second" and rec["labels"] == ["美食"] and rec["extra"]["shop"] == "x"
    assert clip.exists()


def test_folder_ingest_recursive(lib, clip_factory, tmp_path):
    folder = tmp_path / "videos" / "sub"
    folder.mkdir(parents=True)
    _copy(clip_factory(duration=0.5, size=(64, 48), color="red"), folder / "a.mp4")
    _copy(clip_factory(duration=0.5, size=(64, 48), color="blue", suffix=".mkv"), folder / "b.mkv")
    report = lib.ingest(tmp_path / "videos")
    assert report.counts["added"] == 2


def _bad_inputs(tmp_path, clip_factory):
    """(name, path, expected words in the error) for every bad input of the issue."""
    real = clip_factory(duration=2.0, size=(160, 120), tone_hz=300)
    cases = []
    zero = tmp_path / "zero.mp4"
    zero.write_bytes(b"")
    cases.append(("zero-byte", zero, "empty file"))
    trunc = tmp_path / "truncated.mp4"
    data = real.read_bytes()
    trunc.write_bytes(data[: len(data) // 2])
    cases.append(("truncated", trunc, ""))
    rnd = tmp_path / "random.mp4"
    rnd.write_bytes(os.urandom(20_000))
    cases.append(("random bytes", rnd, ""))
    txt = tmp_path / "notes.txt"
    txt.write_text("hello, I am not a video\n" * 50)
    cases.append(("text file", txt, ""))
    d = tmp_path / "x.mp4"
    d.mkdir()
    cases.append(("directory", d, "directory"))
    cases.append(("missing", tmp_path / "does-not-exist.mp4", "not found"))
    return cases


def test_bad_inputs_fail_per_item_and_batch_goes_on(lib, good_clip, clip_factory, tmp_path):
    kept = lib.ingest(good_clip).results[0].video_id
    cases = _bad_inputs(tmp_path, clip_factory)
    manifest = tmp_path / "bad.jsonl"
    rows = [{"path": os.fspath(p)} for _, p, _ in cases if p.name != "x.mp4"]
    rows.append({"path": os.fspath(tmp_path / "x.mp4")})
    manifest.write_text("\n".join(json.dumps(r) for r in rows) + '\n{"title": "no path"}\n')
    good2 = clip_factory(duration=0.6, size=(64, 48), color="green")
    report = lib.ingest([manifest, good2])
    statuses = [r.status for r in report.results]
    assert statuses.count("failed") == len(cases) + 1
    assert report.results[-1].status == "added"  # the batch went on after the failures
    by_item = {r.item: r.message for r in report.failed}
    for name, path, words in cases:
        msg = by_item[os.fspath(path)]
        assert msg, name
        assert words in msg, (name, msg)
    # errors are recorded, shown by status, and nothing stored before is lost
    status = lib.status()
    assert status["errors"] == len(cases) + 1
    assert lib.get(kept)["id"] == kept
    assert len(lib) == 2


def test_error_cleared_when_item_later_succeeds(lib, good_clip, tmp_path):
    path = tmp_path / "later.mp4"
    path.write_bytes(b"")
    lib.ingest(path)
    assert lib.status()["errors"] == 1
    _copy(good_clip, path)
    assert lib.ingest(path).counts["added"] == 1
    assert lib.status()["errors"] == 0


def test_degraded_media_are_ingested(lib, clip_factory):
    short = clip_factory(duration=0.1, size=(64, 48), color="white")
    silent = clip_factory(duration=1.0, size=(64, 48), audio=False)
    audio_only = clip_factory(duration=1.0, video=False, tone_hz=500, suffix=".m4a")
    big = clip_factory(duration=0.2, size=(3840, 2160), fps=5, color="gray", audio=False)
    report = lib.ingest([short, silent, audio_only, big])
    assert report.counts["added"] == 4, [r.to_dict() for r in report.results]
    recs = [lib.get(r.video_id) for r in report.results]
    assert recs[0]["duration"] == pytest.approx(0.1, abs=0.08)
    assert not recs[1]["has_audio"] and recs[1]["has_video"]
    assert recs[2]["has_audio"] and not recs[2]["has_video"] and recs[2]["width"] is None
    assert (recs[3]["width"], recs[3]["height"]) == (3840, 2160)


def test_non_utf8_file_name(lib, good_clip, tmp_path):
    raw = os.path.join(os.fsencode(tmp_path), b"clip_\xff\xfe.mp4")
    shutil.copyfile(good_clip, raw)
    report = lib.ingest(os.fsdecode(raw))
    assert report.counts["added"] == 1
    rec = lib.get(report.results[0].video_id)
    assert "\\xff" in rec["paths"][0]
    assert lib.ingest(tmp_path).counts["unchanged"] == 1  # found again by walking, same row


def test_unknown_id_and_non_library_folder(lib, tmp_path):
    with pytest.raises(NotFoundError):
        lib.get("abcdef")
    other = tmp_path / "other"
    other.mkdir()
    (other / "something.txt").write_text("x")
    with pytest.raises(VidlensError, match="not empty"):
        vidlens.open(other)
    with pytest.raises(VidlensError, match="not a vidlens library"):
        vidlens.open(tmp_path / "missing", create=False)


def test_export_jsonl(lib, good_clip, tmp_path):
    import io

    lib.ingest(good_clip)
    buf = io.StringIO()
    assert lib.export(buf) == 1
    assert json.loads(buf.getvalue())["has_audio"] is True


def test_kill_9_mid_ingest_then_rerun(clip_factory, tmp_path):
    folder = tmp_path / "fifty"
    folder.mkdir()
    colors = ["red", "green", "blue", "white", "yellow", "cyan", "magenta", "orange", "purple", "gray"]
    for i in range(50):
        src = clip_factory(duration=0.4, size=(64, 48), color=colors[i % 10], tone_hz=200 + 40 * (i // 10))
        _copy(src, folder / f"c{i:02d}.mp4")
    lib_dir = tmp_path / "lib"
    vidlens.open(lib_dir).close()
    db = lib_dir / "library.db"
    cmd = [sys.executable, "-m", "vidlens.cli", "-L", str(lib_dir), "ingest", "-q", str(folder)]

    def count(sql="select count(*) from videos"):
        with sqlite3.connect(db) as con:
            return con.execute(sql).fetchone()[0]

    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and count() < 5:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    at_kill = count()
    assert at_kill < 50, "ingest finished before it could be killed"
    rerun = subprocess.run(cmd, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert count() == 50
    assert count("select count(*) from video_paths") == 50
    assert count("select count(distinct video_id) from video_paths") == 50
