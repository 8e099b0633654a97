"""Fault injection for the fault suite (``tests/test_faults.py``, ``benchmarks/bench_faults.py``).

- :class:`StandInEncoders`: deterministic little encoders with the ``EncoderBank`` interface, optionally
  slowed down, so a child process has time to be killed in the middle of a batch;
- :func:`run_extract_child` / ``python -m vidlens.testing.faults extract LIBRARY``: extraction with them in
  a child process (what ``vidlens extract`` does, minus the pretrained models);
- :func:`library_state`, :func:`compare_states` and :func:`lost_videos`: everything a library stores per
  video, the differences between two libraries (a clean run and a run that went through faults), and the
  videos the second one lost;
- :func:`size_limited_folder`: a tmpfs of a few MB mounted on a folder (a disk that fills up).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select


class StandInEncoders:
    """Deterministic stand-ins for the pretrained encoders (same calls as ``EncoderBank``).

    Args:
        delay: seconds each frame-model call sleeps (to widen the window in which a kill lands).
    """

    def __init__(self, delay: float = 0.0):
        self.delay = delay

    def key_of(self, feature: str) -> str:
        """``name@version`` of the stand-in behind a feature."""
        role = "frames" if feature == "cover" else "text" if feature.startswith("text.") else feature
        return f"stand-in-{role}@1"

    def frames(self, frames: np.ndarray) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Mean and spread of each frame's colours, and one concept."""
        if self.delay:
            time.sleep(self.delay)
        x = frames.reshape(len(frames), -1, 3).astype(np.float32) / 255
        emb = np.concatenate([x.mean(1), x.std(1)], axis=1)
        return emb, [{"name": "colour", "score": round(float(emb[:, :3].mean()), 4)}]

    def audio(self, wave: np.ndarray) -> np.ndarray:
        """Loudness and spread per second."""
        n = max(1, len(wave) // 16000)
        return np.stack([np.array([np.abs(b).mean(), b.std()], np.float32) for b in np.array_split(wave, n)])

    def asr(self, wave: np.ndarray, language: str | None = None) -> dict[str, Any]:
        """A fixed transcript when there is sound."""
        text = "hello there" if float(np.abs(wave).mean()) > 0.01 else ""
        return {"language": "en", "language_probability": 0.9, "text": text,
                "segments": [{"start": 0.0, "end": 1.0, "text": text}] if text else []}

    def ocr(self, frames: np.ndarray, times: np.ndarray, max_frames: int) -> dict[str, Any]:
        """A fixed on-screen line."""
        return {"lines": [{"text": "SALE", "first_seen": float(times[0]), "last_seen": float(times[-1]),
                           "frames": len(times), "score": 0.9}], "text": "SALE", "frames_read": [float(times[0])]}

    def text(self, texts: list[str]) -> np.ndarray:
        """Character histograms, unit length."""
        out = np.zeros((len(texts), 16), np.float32)
        for i, t in enumerate(texts):
            for ch in t:
                out[i, ord(ch) % 16] += 1
            out[i] /= max(float(np.linalg.norm(out[i])), 1e-6)
        return out


def run_extract_child(library: str | os.PathLike, delay: float = 0.0, **popen: Any) -> subprocess.Popen:
    """Start ``python -m vidlens.testing.faults extract LIBRARY`` (stand-in encoders) and return it."""
    cmd = [sys.executable, "-m", "vidlens.testing.faults", "extract", str(library), "--delay", str(delay)]
    return subprocess.Popen(cmd, **popen)


def library_state(library: Any) -> dict[str, Any]:
    """What a library stores, per video: its paths, its extraction rows and its pooled vectors.

    ``library`` is a library folder (opened and closed here) or an open :class:`vidlens.Library`.

    Also what must hold at any moment, even right after a kill: ``duplicates`` lists any video id, path
    or (video, feature) row stored more than once, or a feature whose merged pooled vectors name a video
    twice; ``rows_without_vector`` lists rows that say ``ok`` for a vector feature whose vector is not
    there. ``vectors_without_row`` (vectors of videos whose row is missing or not ``ok``) is normal after
    a kill between writing a video's files and committing its rows, and must be empty once a run
    completes.
    """
    import vidlens
    from vidlens.features.featureset import VECTOR_FEATURES
    from vidlens.store.models import Extraction, Video, VideoPath

    state: dict[str, Any] = {"duplicates": [], "videos": {}, "rows": {}, "pooled": {}, "vectors_without_row": [],
                             "rows_without_vector": []}
    opened = library if isinstance(library, vidlens.Library) else vidlens.open(library, create=False)
    try:
        lib = opened
        with lib.store.session() as s:
            for vid, n in s.execute(select(Video.id, func.count()).group_by(Video.id).having(func.count() > 1)):
                state["duplicates"].append(f"video {vid} x{n}")
            for path, n in s.execute(select(VideoPath.path_raw, func.count()).group_by(VideoPath.path_raw)
                                     .having(func.count() > 1)):
                state["duplicates"].append(f"path {path!r} x{n}")
            for v in s.scalars(select(Video)):
                state["videos"][v.id] = sorted(os.fsdecode(p.path_raw) for p in v.paths)
            for r in s.scalars(select(Extraction)):
                key = (r.video_id, r.feature)
                if key in state["rows"]:
                    state["duplicates"].append(f"row {key}")
                state["rows"][key] = (r.key, r.status, r.result)
        for feature in lib.vectors.features():
            m = lib.feature_matrix(feature)
            if len(set(m.ids)) != len(m.ids):
                state["duplicates"].append(f"pooled {feature}")
            state["pooled"][feature] = dict(zip(m.ids, m.vectors, strict=True))
            for vid in m.ids:
                row = state["rows"].get((vid, feature))
                if row is None or row[1] != "ok":
                    state["vectors_without_row"].append((vid, feature))
        for (vid, feature), row in state["rows"].items():
            if row[1] == "ok" and feature in VECTOR_FEATURES and vid not in state["pooled"].get(feature, {}):
                state["rows_without_vector"].append((vid, feature))
    finally:
        if opened is not library:
            opened.close()
    return state


def compare_states(expected: dict[str, Any], got: dict[str, Any], atol: float = 0.0,
                   exact_results: bool = True) -> list[str]:
    """Differences between two :func:`library_state` results (empty: the same items, rows and vectors).

    Paths are compared by file name (the two libraries may sit in different folders). ``atol`` allows
    vectors to differ a little and ``exact_results=False`` compares rows by key and status only (real
    encoders on several threads may round the last digits differently from run to run).
    """
    problems = [f"duplicate {d}" for d in got["duplicates"]]
    names = {vid: sorted(os.path.basename(p) for p in paths) for vid, paths in expected["videos"].items()}
    got_names = {vid: sorted(os.path.basename(p) for p in paths) for vid, paths in got["videos"].items()}
    if names != got_names:
        problems.append(f"videos differ: missing {sorted(set(names) - set(got_names))}, "
                        f"extra {sorted(set(got_names) - set(names))}")
    for key, row in expected["rows"].items():
        other = got["rows"].get(key)
        if other is None:
            problems.append(f"row {key} missing")
        elif other[:2] != row[:2] or (exact_results and other != row):
            problems.append(f"row {key} differs: {other[:2]} vs {row[:2]}")
    problems += [f"row {key} unexpected" for key in set(got["rows"]) - set(expected["rows"])]
    for feature, vectors in expected["pooled"].items():
        other = got["pooled"].get(feature, {})
        if set(other) != set(vectors):
            problems.append(f"{feature}: vectors of {sorted(set(vectors) ^ set(other))} missing or extra")
        for vid, v in vectors.items():
            if vid in other and not np.allclose(v, other[vid], atol=atol, rtol=0):
                problems.append(f"{feature} of {vid}: vector differs")
    problems += [f"vector without an ok row: {x}" for x in got["vectors_without_row"]]
    problems += [f"ok row without its vector: {x}" for x in got["rows_without_vector"]]
    return problems


def lost_videos(expected: dict[str, Any], got: dict[str, Any], atol: float = 0.0,
                exact_results: bool = True) -> set[str]:
    """Videos of ``expected`` that ``got`` lacks, or whose rows or vectors are missing or different."""
    lost = set(expected["videos"]) - set(got["videos"])
    for (vid, _feature), row in expected["rows"].items():
        other = got["rows"].get((vid, _feature))
        if other is None or other[:2] != row[:2] or (exact_results and other != row):
            lost.add(vid)
    for feature, vectors in expected["pooled"].items():
        other = got["pooled"].get(feature, {})
        lost.update(vid for vid, v in vectors.items()
                    if vid not in other or not np.allclose(v, other[vid], atol=atol, rtol=0))
    return lost


@contextlib.contextmanager
def size_limited_folder(path: str | os.PathLike, size_mb: float) -> Iterator[Path]:
    """Mount a tmpfs of ``size_mb`` MB on ``path`` for the duration (needs root, or CAP_SYS_ADMIN).

    Raises:
        PermissionError: mounting is not permitted here (the message says why).
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={int(size_mb * 1024)}k", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        reason = proc.stderr.strip() or f"mount exited {proc.returncode}"
        raise PermissionError(f"cannot mount a size-limited tmpfs on {folder}: {reason}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill_disk(folder: str | os.PathLike, leave_bytes: int = 0) -> Path:
    """Fill the file system holding ``folder`` with a ballast file, leaving about ``leave_bytes`` free."""
    ballast = Path(folder) / "ballast.bin"
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    with open(ballast, "wb") as fh:
        remaining = max(0, free - leave_bytes)
        chunk = b"\0" * (1 << 20)
        while remaining > 0:
            n = min(remaining, len(chunk))
            try:
                fh.write(chunk[:n])
                fh.flush()
            except OSError:
                break
            remaining -= n
    return ballast


def _main(argv: list[str]) -> int:
    import argparse

    import vidlens

    parser = argparse.ArgumentParser(prog="python -m vidlens.testing.faults")
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("extract", help="extract every video of LIBRARY with the stand-in encoders")
    ex.add_argument("library")
    ex.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args(argv)
    try:
        with vidlens.open(args.library, create=False) as lib:
            report = lib.extract(encoders=StandInEncoders(delay=args.delay))
    except vidlens.VidlensError as exc:  # as the CLI reports it: one line, status 2
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    print(report.videos, flush=True)
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
