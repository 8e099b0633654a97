"""The fault suite, fast variants: after each fault and a re-run, every item is there once, as a clean run
made it. ``benchmarks/bench_faults.py`` runs the long version (20 kills each, real encoders).

Faults: ``kill -9`` of ``vidlens ingest`` and of an extraction process at random (seeded) moments; a full
disk (the library on a 20 MB tmpfs, filled up); the metadata DB moved away in the middle of a batch; a
damaged feature part, sequence file and index file. Extraction runs with the deterministic stand-in
encoders of :mod:`vidlens.testing.faults`, so a clean run's vectors are the exact reference.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import vidlens
from vidlens.errors import StorageError
from vidlens.testing.faults import (
    StandInEncoders,
    compare_states,
    fill_disk,
    library_state,
    run_extract_child,
    size_limited_folder,
)

N_CLIPS = 8
COLOURS = ("red", "blue", "green", "yellow", "white", "gray", "orange", "purple")


@pytest.fixture(scope="module")
def clips(tmp_path_factory, clip_factory) -> Path:
    folder = tmp_path_factory.mktemp("fault-clips")
    for i in range(N_CLIPS):
        kwargs = {"duration": 1.0, "size": (64, 48), "color": COLOURS[i], "tone_hz": 220 + 40 * i}
        if i == 0:
            kwargs.update(speech="hello", lang="en")
        shutil.copy(clip_factory(**kwargs), folder / f"clip{i}.mp4")
    return folder


@pytest.fixture(scope="module")
def template(tmp_path_factory, clips) -> Path:
    """A library with the clips ingested, nothing extracted (copy it before use)."""
    root = tmp_path_factory.mktemp("fault-template") / "lib"
    with vidlens.open(root) as lib:
        assert lib.ingest(clips).counts["added"] == N_CLIPS
    return root


@pytest.fixture(scope="module")
def clean(tmp_path_factory, template) -> dict:
    """What a run without faults stores."""
    root = tmp_path_factory.mktemp("fault-clean") / "lib"
    shutil.copytree(template, root)
    with vidlens.open(root, create=False) as lib:
        report = lib.extract(encoders=StandInEncoders())
        assert report.videos == N_CLIPS and not report.errors
    return library_state(root)


def _copy(template: Path, dest: Path) -> Path:
    shutil.copytree(template, dest)
    return dest


def _kill_at(proc: subprocess.Popen, seconds: float) -> bool:
    """kill -9 after ``seconds`` unless it finished first; True if it was killed."""
    try:
        proc.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return True


def _consistent(root: Path) -> None:
    """What must hold at any moment, also right after a kill."""
    state = library_state(root)
    assert state["duplicates"] == [] and state["rows_without_vector"] == []


def test_kill_9_ingest_then_rerun(tmp_path, clips, clean):
    rng = random.Random(8)
    root = tmp_path / "lib"
    killed = 0
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-m", "vidlens", "-L", str(root), "ingest", "-q", str(clips)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        killed += _kill_at(proc, rng.uniform(0.8, 3.0))
        if root.exists() and (root / "library.db").exists():
            _consistent(root)
    proc = subprocess.run([sys.executable, "-m", "vidlens", "-L", str(root), "ingest", "-q", str(clips)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    state = library_state(root)
    assert state["duplicates"] == []
    assert {v: sorted(map(os.path.basename, p)) for v, p in state["videos"].items()} == \
        {v: sorted(map(os.path.basename, p)) for v, p in clean["videos"].items()}
    assert killed >= 1


def test_kill_9_extract_then_rerun(tmp_path, template, clean):
    rng = random.Random(9)
    root = _copy(template, tmp_path / "lib")
    killed = 0
    for _ in range(3):
        proc = run_extract_child(root, delay=0.2, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        killed += _kill_at(proc, rng.uniform(1.5, 4.5))
        _consistent(root)
    proc = run_extract_child(root, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    assert compare_states(clean, library_state(root)) == []
    assert killed >= 1


@pytest.fixture
def small_disk(tmp_path):
    try:
        with size_limited_folder(tmp_path / "disk", 20) as folder:
            yield folder
    except PermissionError as exc:
        pytest.skip(f"a full disk needs a size-limited folder: {exc}")


def test_full_disk_stops_clearly_and_loses_nothing(small_disk, template, clean):
    root = _copy(template, small_disk / "lib")
    with vidlens.open(root, create=False) as lib:
        ids = lib.store.video_ids()
        lib.extract(ids=ids[:3], encoders=StandInEncoders())
        ballast = fill_disk(small_disk, leave_bytes=20_000)
        with pytest.raises(StorageError, match="no space left on the device"):
            lib.extract(encoders=StandInEncoders())
        before = library_state(root)
        assert before["duplicates"] == [] and before["rows_without_vector"] == []
        for vid in ids[:3]:  # what was stored before the disk filled up is intact
            for (v, f), row in clean["rows"].items():
                if v == vid:
                    assert before["rows"][(v, f)] == row
        ballast.unlink()
        report = lib.extract(encoders=StandInEncoders())
        assert not report.errors
    assert compare_states(clean, library_state(root)) == []


def test_database_moved_away_mid_batch(tmp_path, template, clean):
    root = _copy(template, tmp_path / "lib")
    proc = run_extract_child(root, delay=0.4, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    parts = root / "features" / "frames"
    deadline = time.monotonic() + 120
    while len(list(parts.glob("part-*.arrow"))) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    away = tmp_path / "away"
    away.mkdir()
    for f in root.glob("library.db*"):
        f.rename(away / f.name)
    assert proc.wait(timeout=300) == 2
    stderr = proc.stderr.read()
    assert "metadata DB" in stderr and "was removed or moved away during the run" in stderr
    assert "Traceback" not in stderr
    for f in away.iterdir():  # the file comes back: what was committed before is in it, once
        f.rename(root / f.name)
    partial = library_state(root)
    assert partial["duplicates"] == [] and partial["rows_without_vector"] == []
    assert 0 < len({v for v, _ in partial["rows"]}) < N_CLIPS
    proc = run_extract_child(root, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    assert compare_states(clean, library_state(root)) == []


def test_damaged_feature_files_are_found_and_redone(tmp_path, template, clean, caplog):
    root = _copy(template, tmp_path / "lib")
    with vidlens.open(root, create=False) as lib:
        lib.extract(encoders=StandInEncoders())
        (frames_part,) = lib.vectors.parts("frames")
        frames_part.write_bytes(frames_part.read_bytes()[:100])  # torn
        (ocr_part,) = lib.vectors.parts("text.ocr")
        ocr_part.write_bytes(b"\0" * ocr_part.stat().st_size)  # zeroed by a bad disk block
        vid = lib.store.video_ids()[2]
        seq = lib.vectors.seq_path("audio", vid)
        seq.write_bytes(seq.read_bytes()[:-4])  # one value short
        with caplog.at_level(logging.WARNING):
            report = lib.extract(encoders=StandInEncoders())
    text = caplog.text
    assert "unreadable" in text and ".corrupt" in text and "will be recomputed" in text
    assert report.counts["frames"]["ok"] == N_CLIPS
    assert report.counts["audio"]["ok"] == 1 and report.counts["text.ocr"]["ok"] == N_CLIPS
    assert compare_states(clean, library_state(root)) == []


def test_damaged_index_files_are_found_and_rebuilt(tmp_path, template):
    from vidlens.retrieval import open_library_index

    root = _copy(template, tmp_path / "lib")
    with vidlens.open(root, create=False) as lib:
        lib.extract(encoders=StandInEncoders())
        li = open_library_index(lib, "video", {"backend": "faiss"})
        ids = sorted(li.index.ids())
        expected = li.index.get_vectors(ids)
        li.close()
        folder = lib.root / "index" / "video"
        for damage in ("flip", "state"):
            if damage == "flip":  # a flipped byte inside the vectors: only the checksum can tell
                (path,) = folder.glob("gen-*/index.faiss")
                data = bytearray(path.read_bytes())
                data[len(data) // 2] ^= 0xFF
                path.write_bytes(bytes(data))
            else:
                state = folder / "state.json"
                state.write_text(state.read_text()[:50])
            li = open_library_index(lib, "video", {"backend": "faiss"})
            try:
                assert any("damaged" in m or "unreadable" in m for m in li.messages), li.messages
                assert any("rebuilding from stored features" in m for m in li.messages)
                np.testing.assert_array_equal(li.index.get_vectors(ids), expected)
            finally:
                li.close()
