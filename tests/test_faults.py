"""The fault suite, fast variants: after each fault and a re-run, every item is there once, as a clean run
made it. ``benchmarks/bench_faults.py`` runs the long version (20 kills each, real encoders).

Faults: ``kill -9`` of ``vidlens ingest`` and of an extraction process at random (seeded) moments; a full
disk (the library on a 20 MB tmpfs, filled up); the metadata DB moved away in the middle of a batch; a
damaged feature part (every byte of a small part flipped or cut; in a library, a flip in an id, a key, a
vector, the footer or the checksum), sequence file and index file; vectors of two sizes left by an
interrupted encoder change. Extraction runs with the deterministic stand-in
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
from vidlens.store.vectors import CHECKSUM_KEY, VectorStore
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

    def ingest(library: Path) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "vidlens", "-L", str(library), "ingest", "-q", str(clips)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    start = time.monotonic()  # kill moments are drawn over a clean run's duration, however fast this machine is
    assert ingest(tmp_path / "timing").wait(timeout=300) == 0
    duration = time.monotonic() - start
    killed = 0
    for _ in range(3):
        killed += _kill_at(ingest(root), rng.uniform(0.3, 0.95) * duration)
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


# -- pooled-vector parts: damage anywhere is caught or harmless; an interrupted encoder change ---------------

def _rows(n: int, dim: int, seed: int, key: str = "enc@1#p") -> list[tuple[str, str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [(f"{seed:02d}{i:02d}" + "ab" * 30, key, rng.normal(size=dim).astype(np.float32)) for i in range(n)]


def _matrix(store: VectorStore, feature: str) -> dict[str, tuple[str, np.ndarray]]:
    m = store.load_pooled(feature)
    assert len(set(m.ids)) == len(m.ids)
    return {vid: (key, vec) for vid, key, vec in zip(m.ids, m.keys, m.vectors, strict=True)}


def test_every_flipped_byte_or_cut_of_a_part_is_caught_or_harmless(tmp_path, caplog):
    """Flip each byte of a part (two ways) and cut it at each length: a read gives exactly what was written,
    or moves the part aside with a warning naming it; never other vectors, ids or keys, never an error."""
    store = VectorStore(tmp_path)
    path = store.write_pooled("f", _rows(8, 6, seed=1))
    original = path.read_bytes()
    expected = _matrix(store, "f")
    outcomes = {"same": 0, "moved aside": 0}
    damaged = [(f"flip {i} ^{mask:#x}", bytes(original[:i]) + bytes([original[i] ^ mask]) + original[i + 1:])
               for i in range(len(original)) for mask in (0x01, 0xFF)]
    damaged += [(f"cut at {n}", original[:n]) for n in range(len(original))]
    for what, data in damaged:
        for old in path.parent.glob("part-*"):
            old.unlink()
        path.write_bytes(data)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="vidlens.store.vectors"):
            got = _matrix(store, "f")
        if got:
            assert got.keys() == expected.keys(), what
            for vid, (key, vec) in got.items():
                assert key == expected[vid][0] and np.array_equal(vec, expected[vid][1]), what
            outcomes["same"] += 1
        else:
            assert path.with_suffix(".corrupt").exists() and not path.exists(), what
            assert path.name in caplog.text and "moved aside" in caplog.text, what
            outcomes["moved aside"] += 1
    assert outcomes["moved aside"] > outcomes["same"] > 0  # flips in padding or the unread header are harmless


def test_a_damaged_part_never_costs_the_other_parts(tmp_path):
    store = VectorStore(tmp_path)
    first, middle, last = _rows(3, 4, seed=1), _rows(3, 4, seed=2), _rows(3, 4, seed=3)
    store.write_pooled("f", first)
    bad = store.write_pooled("f", middle)
    store.write_pooled("f", last)
    data = bytearray(bad.read_bytes())
    data[data.find(middle[1][0].encode()) + 3] ^= 0xFF  # an id that is no longer UTF-8
    bad.write_bytes(bytes(data))
    kept = {vid: vec for vid, _key, vec in first + last}
    got = _matrix(store, "f")
    assert got.keys() == kept.keys() and all(np.array_equal(got[v][1], kept[v]) for v in kept)
    killed, fresh = tmp_path / "f" / ".part-1.arrow.dead.tmp", tmp_path / "f" / ".part-2.arrow.live.tmp"
    killed.write_bytes(b"half a part")
    fresh.write_bytes(b"being written")
    os.utime(killed, (time.time() - 7200, time.time() - 7200))
    assert store.compact("f") == len(kept) and len(store.parts("f")) == 1
    assert _matrix(store, "f").keys() == kept.keys() and bad.with_suffix(".corrupt").exists()
    assert not killed.exists() and fresh.exists()  # what a killed run left is cleaned up, a running write is not


def test_a_part_written_before_checksums_is_still_read(tmp_path):
    import pyarrow as pa
    from pyarrow import ipc

    rows = _rows(3, 4, seed=1)
    legacy = pa.table({"video_id": [r[0] for r in rows], "key": [r[1] for r in rows],
                       "vector": pa.FixedSizeListArray.from_arrays(pa.array(np.concatenate([r[2] for r in rows])), 4)})
    (tmp_path / "f").mkdir()
    with pa.OSFile(str(tmp_path / "f" / "part-1.arrow"), "wb") as sink, ipc.new_file(sink, legacy.schema) as writer:
        writer.write_table(legacy)
    got = _matrix(VectorStore(tmp_path), "f")
    assert list(got) == [r[0] for r in rows] and all(np.array_equal(got[vid][1], v) for vid, _k, v in rows)


def _flip_site(data: bytes, site: str, vid: str, key: str, vector: np.ndarray) -> bytes:
    """``data`` damaged at one place of a part: in an id, a key, a vector, the footer or the checksum."""
    import pyarrow as pa
    from pyarrow import ipc

    checksum = ipc.open_file(pa.BufferReader(data)).schema.metadata[CHECKSUM_KEY]
    out = bytearray(data)
    footer_size = int.from_bytes(data[-10:-6], "little")  # the file ends: footer, its size (int32), "ARROW1"
    at, mask = {
        "id, no longer UTF-8": (data.find(vid.encode()) + 5, 0xFF),
        "id, another valid id": (data.find(vid.encode()) + 5, 0x01),
        "key": (data.find(key.encode()) + len(key) // 2, 0x01),
        "vector": (data.find(vector.astype(np.float32).tobytes()) + 1, 0x01),
        "footer": (len(data) - 10 - footer_size, 0xFF),
        "checksum": (data.rfind(checksum) + 2, 0x01),  # the footer's copy, the one a reader uses
    }[site]
    assert at >= 0
    out[at] ^= mask
    return bytes(out)


@pytest.mark.parametrize("site", ["id, no longer UTF-8", "id, another valid id", "key", "vector", "footer",
                                  "checksum", "cut short"])
def test_damaged_part_is_moved_aside_and_its_videos_redone(tmp_path, template, clean, caplog, site):
    root = _copy(template, tmp_path / "lib")
    with vidlens.open(root, create=False) as lib:
        lib.extract(encoders=StandInEncoders())
        (part,) = lib.vectors.parts("frames")
        data = part.read_bytes()
        vid = sorted(clean["videos"])[3]
        if site == "cut short":
            part.write_bytes(data[: len(data) // 2])
        else:
            key = clean["rows"][(vid, "frames")][0]
            part.write_bytes(_flip_site(data, site, vid, key, clean["pooled"]["frames"][vid]))
    with vidlens.open(root, create=False) as lib, caplog.at_level(logging.WARNING):
        report = lib.extract(encoders=StandInEncoders())
    assert not report.errors
    if part.with_suffix(".corrupt").exists():  # every site but a harmless byte of the footer
        assert f"feature part {part}" in caplog.text and "moved aside" in caplog.text
        assert report.counts["frames"]["ok"] == N_CLIPS  # not counted as done: all redone
    else:
        assert site == "footer" and not report.counts
    state = library_state(root)
    assert state["duplicates"] == [] and compare_states(clean, state) == []


def test_vector_left_in_an_older_part_is_not_taken_for_the_lost_one(tmp_path, template, clean):
    """A run killed before merging leaves older parts; if the newest is then damaged, an older vector of
    the same video (made with other settings) must not pass for it: the video is redone."""
    root = _copy(template, tmp_path / "lib")
    with vidlens.open(root, create=False) as lib:
        lib.extract(encoders=StandInEncoders())
        (part,) = lib.vectors.parts("frames")
        vid = sorted(clean["videos"])[0]
        dim = len(clean["pooled"]["frames"][vid])
        older = lib.vectors.write_pooled("frames", [(vid, "stand-in-frames@0#older", np.full(dim, 7.0))])
        older.rename(older.with_name("part-00000000000000000001-00000000.arrow"))
        data = bytearray(part.read_bytes())
        data[data.find(sorted(clean["videos"])[1].encode())] ^= 0xFF
        part.write_bytes(bytes(data))
        report = lib.extract(encoders=StandInEncoders())
        assert report.counts["frames"]["ok"] == N_CLIPS
    assert compare_states(clean, library_state(root)) == []


class WiderText(StandInEncoders):
    """The stand-in encoders with a new text encoder: another version, 24-d instead of 16-d."""

    def key_of(self, feature: str) -> str:
        return "stand-in-text@2" if feature.startswith("text.") else super().key_of(feature)

    def text(self, texts: list[str]) -> np.ndarray:
        return np.concatenate([super().text(texts), np.ones((len(texts), 8), np.float32)], axis=1)


def test_vectors_of_two_sizes_after_an_interrupted_encoder_change(tmp_path, template, caplog):
    """Re-extracting with a new text encoder, stopped after 3 videos: the feature's vectors have two sizes.
    Reading gives the new encoder's, says which are left out, and merging keeps the others for later."""
    store = VectorStore(tmp_path / "unit")
    store.write_pooled("f", _rows(4, 16, seed=1, key="old@1#p"))
    new = _rows(2, 24, seed=2, key="new@2#p")
    store.write_pooled("f", new)
    with caplog.at_level(logging.WARNING, logger="vidlens.store.vectors"):
        got = store.load_pooled("f")
    assert got.ids == [r[0] for r in new] and got.vectors.shape == (2, 24) and got.keys == ["new@2#p"] * 2
    assert "f: stored vectors have sizes [16, 24]" in caplog.text and "new@2" in caplog.text
    assert "leaving out 4 video(s)" in caplog.text
    assert store.compact("f") == 6 and len(store.parts("f")) == 2 and len(store.ids("f")) == 6
    assert store.load_pooled("f").ids == got.ids

    root = _copy(template, tmp_path / "lib")
    with vidlens.open(root, create=False) as lib:
        lib.extract(encoders=StandInEncoders())
        ids = lib.store.video_ids()
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="vidlens.store.vectors"):
            lib.extract(ids=ids[:3], encoders=WiderText())
            m = lib.feature_matrix("text.ocr")
        assert sorted(m.ids) == sorted(ids[:3]) and m.vectors.shape == (3, 24)
        assert "text.ocr: stored vectors have sizes [16, 24]" in caplog.text
        assert len(lib.vectors.ids("text.ocr")) == N_CLIPS  # the 16-d vectors of the others are kept
        caplog.clear()
        report = lib.extract(encoders=WiderText())  # the change finishes: the other videos are redone
        assert report.counts["text.ocr"]["ok"] == N_CLIPS - 3
        m = lib.feature_matrix("text.ocr")
        assert sorted(m.ids) == sorted(ids) and m.vectors.shape == (N_CLIPS, 24)
        assert len(lib.vectors.parts("text.ocr")) == 1 and "sizes" not in caplog.text


def test_a_part_changed_after_it_was_checked_is_checked_again(tmp_path):
    store = VectorStore(tmp_path)
    rows = _rows(3, 4, seed=1)
    path = store.write_pooled("f", rows)
    hour_ago = time.time() - 3600
    os.utime(path, (hour_ago, hour_ago))
    assert len(_matrix(store, "f")) == 3  # checked once, and remembered
    data = bytearray(path.read_bytes())
    data[data.find(rows[0][2].tobytes())] ^= 0x01  # a vector's lowest bits: only the checksum can tell
    path.write_bytes(bytes(data))
    assert _matrix(store, "f") == {} and path.with_suffix(".corrupt").exists()
